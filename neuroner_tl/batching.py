"""Turning sentences into padded mini-batches, bucketed by length."""

from __future__ import annotations

import dataclasses
from typing import Iterator, List, Optional, Sequence

import numpy as np

from .vocabulary import UNK_ID, TokenEncoder


@dataclasses.dataclass
class Encoded:
    words: np.ndarray  # [T] int32
    chars: List[List[int]]  # T lists of char ids
    labels: Optional[np.ndarray] = None  # [T] int32
    # for the update's objectives (``objectives.py``): which labels each position may take
    # (a partial annotation), and a teacher's distribution to match (rows of zeros: none)
    allowed: Optional[np.ndarray] = None  # [T, C] bool
    soft: Optional[np.ndarray] = None  # [T, C] float32

    def __len__(self) -> int:
        return len(self.words)


def encode(tokens_list: Sequence[Sequence[str]], encoder: TokenEncoder,
           labels_list: Optional[Sequence[Sequence[str]]] = None,
           label_index: Optional[dict] = None) -> List[Encoded]:
    items = []
    for i, tokens in enumerate(tokens_list):
        words, chars = encoder.encode(tokens)
        labels = None
        if labels_list is not None:
            labels = np.array([label_index[label] for label in labels_list[i]], dtype=np.int32)
        items.append(Encoded(words, chars, labels))
    return items


@dataclasses.dataclass
class Batch:
    words: np.ndarray  # [B, T] word ids, 0 = padding
    chars: np.ndarray  # [U, W] the character ids of the batch's U distinct tokens
    char_index: np.ndarray  # [B, T] which row of ``chars`` each token is; -1 = padding
    labels: Optional[np.ndarray]  # [B, T]
    indices: np.ndarray  # positions of the sentences in the encoded list
    allowed: Optional[np.ndarray] = None  # [B, T, C] bool; padding allows every label
    soft: Optional[np.ndarray] = None  # [B, T, C] float32; padding is zeros

    def __len__(self) -> int:
        return len(self.indices)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# inference pads its shapes up to these multiples (time, distinct tokens, characters): a stream of
# sentences then meets a bounded set of shapes, and the kernels TensorFlow and oneDNN cache per
# shape stop growing (without it, tagging a large file grew by about 2.5 MiB per MB of input)
INFERENCE_SHAPE_MULTIPLES = (8, 64, 8)


def pad(items: Sequence[Encoded], indices: Sequence[int], multiples=(1, 1, 1)) -> Batch:
    """Pad a batch; each distinct token's characters appear once (the char BiLSTM runs on those).
    ``multiples`` round the time, distinct-token and character axes up (padding rows and columns)."""
    chosen = [items[i] for i in indices]
    length = _round_up(max(len(item) for item in chosen), multiples[0])
    words = np.zeros((len(chosen), length), dtype=np.int32)
    char_index = np.full((len(chosen), length), -1, dtype=np.int32)
    labels = np.zeros((len(chosen), length), dtype=np.int32) if chosen[0].labels is not None else None
    distinct: dict = {}
    for row, item in enumerate(chosen):
        words[row, : len(item)] = item.words
        for position, token_chars in enumerate(item.chars):
            char_index[row, position] = distinct.setdefault(tuple(token_chars), len(distinct))
        if labels is not None:
            labels[row, : len(item)] = item.labels
    width = _round_up(max(len(key) for key in distinct), multiples[2])
    chars = np.zeros((_round_up(len(distinct), multiples[1]), width), dtype=np.int32)
    for key, row in distinct.items():
        chars[row, : len(key)] = key
    allowed = _pad_rows([item.allowed for item in chosen], length, True) if chosen[0].allowed is not None else None
    soft = _pad_rows([item.soft for item in chosen], length, 0.0) if chosen[0].soft is not None else None
    return Batch(words, chars, char_index, labels, np.asarray(indices), allowed, soft)


def _pad_rows(arrays: Sequence[np.ndarray], length: int, fill) -> np.ndarray:
    padded = np.full((len(arrays), length, arrays[0].shape[1]), fill, dtype=arrays[0].dtype)
    for row, array in enumerate(arrays):
        padded[row, : len(array)] = array
    return padded


def training_batches(items: Sequence[Encoded], batch_size: int, rng: np.random.Generator,
                     pool_batches: int = 50) -> Iterator[Batch]:
    """Shuffled batches of sentences of similar length: shuffle, sort pools of
    ``pool_batches * batch_size`` sentences by length, cut them into batches, shuffle the batches."""
    order = rng.permutation(len(items))
    pool_size = batch_size * pool_batches
    groups = []
    for start in range(0, len(order), pool_size):
        pool = sorted(order[start: start + pool_size], key=lambda i: len(items[i]))
        groups.extend(pool[i: i + batch_size] for i in range(0, len(pool), batch_size))
    for group_index in rng.permutation(len(groups)):
        yield pad(items, groups[group_index])


def inference_batches(items: Sequence[Encoded], batch_size: int) -> Iterator[Batch]:
    """Batches sorted by length (least padding); ``Batch.indices`` restore the order. Empty items are
    left out: there is nothing to compute for them."""
    order = sorted((i for i in range(len(items)) if len(items[i])), key=lambda i: len(items[i]))
    for start in range(0, len(order), batch_size):
        yield pad(items, order[start: start + batch_size], INFERENCE_SHAPE_MULTIPLES)


def replace_singletons(words: np.ndarray, singleton_ids: np.ndarray, probability: float,
                       rng: np.random.Generator) -> np.ndarray:
    """NeuroNER's regularizer: each singleton word becomes UNK with ``probability``."""
    if probability <= 0 or singleton_ids.size == 0:
        return words
    hit = np.isin(words, singleton_ids) & (rng.random(words.shape) < probability)
    return np.where(hit, UNK_ID, words).astype(np.int32)

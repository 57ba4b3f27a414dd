"""Turning sentences into padded mini-batches, bucketed by length."""

from __future__ import annotations

import dataclasses
from typing import Iterator, List, Optional, Sequence

import numpy as np

from .errors import DataFormatError
from .tokenizer import surrogate_problem
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
    states: Optional[np.ndarray] = None  # [T, D] float32: a teacher's token states to match

    def __len__(self) -> int:
        return len(self.words)


def check_tokens(token_lists: Sequence[Sequence[str]]) -> None:
    """Tokens are non-empty strings (the SavedModel reads ``""`` as padding, so the two agree) of
    Unicode characters (``tokenizer.surrogate_problem``)."""
    for number, tokens in enumerate(token_lists, start=1):
        for position, token in enumerate(tokens, start=1):
            if not isinstance(token, str) or not token:
                raise DataFormatError(f"sentence {number}, token {position} is {token!r}: tokens must be non-empty "
                                      f"strings (drop empty tokens before tagging)")
            problem = surrogate_problem(token)
            if problem:
                raise DataFormatError(f"sentence {number}, token {position} {problem}")


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
    chars: np.ndarray  # [B, T, W] each position's character ids, 0 = padding
    labels: Optional[np.ndarray]  # [B, T]
    indices: np.ndarray  # positions of the sentences in the encoded list
    allowed: Optional[np.ndarray] = None  # [B, T, C] bool; padding allows every label
    soft: Optional[np.ndarray] = None  # [B, T, C] float32; padding is zeros
    states: Optional[np.ndarray] = None  # [B, T, D] float32; padding is zeros

    def __len__(self) -> int:
        return len(self.indices)

    def inputs(self) -> dict:
        """The network's inputs (``model.WORD_INPUT``, ``model.CHAR_INPUT``)."""
        return {"word_ids": self.words, "char_ids": self.chars}

    def targets(self) -> dict:
        """What ``training.TrainingModel.compute_loss`` reads: the labels, and an update's ``allowed``/``soft``."""
        targets = {"labels": self.labels}
        if self.allowed is not None or self.soft is not None:
            shape = self.words.shape + ((self.allowed if self.allowed is not None else self.soft).shape[2],)
            targets["allowed"] = self.allowed if self.allowed is not None else np.ones(shape, bool)
            targets["soft"] = self.soft if self.soft is not None else np.zeros(shape, np.float32)
        return targets


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# inference pads its shapes up to these multiples (time, characters): a stream of sentences then
# meets a bounded set of shapes, and the kernels TensorFlow and oneDNN cache per shape stop growing
# (without it, tagging a large file grew by about 2.5 MiB per MB of input)
INFERENCE_SHAPE_MULTIPLES = (8, 8)


def pad(items: Sequence[Encoded], indices: Sequence[int], multiples=(1, 1)) -> Batch:
    """Pad a batch; ``multiples`` round the time and character axes up."""
    chosen = [items[i] for i in indices]
    length = _round_up(max(len(item) for item in chosen), multiples[0])
    width = _round_up(max((len(token) for item in chosen for token in item.chars), default=1), multiples[1])
    words = np.zeros((len(chosen), length), dtype=np.int32)
    chars = np.zeros((len(chosen), length, max(width, 1)), dtype=np.int32)
    labels = np.zeros((len(chosen), length), dtype=np.int32) if chosen[0].labels is not None else None
    for row, item in enumerate(chosen):
        words[row, : len(item)] = item.words
        for position, token_chars in enumerate(item.chars):
            chars[row, position, : len(token_chars)] = token_chars
        if labels is not None:
            labels[row, : len(item)] = item.labels
    allowed = _pad_rows([item.allowed for item in chosen], length, True) if chosen[0].allowed is not None else None
    soft = _pad_rows([item.soft for item in chosen], length, 0.0) if chosen[0].soft is not None else None
    states = _pad_rows([item.states for item in chosen], length, 0.0) if chosen[0].states is not None else None
    return Batch(words, chars, labels, np.asarray(indices), allowed, soft, states)


def _pad_rows(arrays: Sequence[np.ndarray], length: int, fill) -> np.ndarray:
    padded = np.full((len(arrays), length, arrays[0].shape[1]), fill, dtype=arrays[0].dtype)
    for row, array in enumerate(arrays):
        padded[row, : len(array)] = array
    return padded


def training_groups(items: Sequence[Encoded], batch_size: int, rng: np.random.Generator,
                    pool_batches: int = 50) -> List[List[int]]:
    """Shuffled batches of sentences of similar length (their indices): shuffle, sort pools of
    ``pool_batches * batch_size`` sentences by length, cut them into batches, shuffle the batches."""
    order = rng.permutation(len(items))
    pool_size = batch_size * pool_batches
    groups = []
    for start in range(0, len(order), pool_size):
        pool = sorted(order[start: start + pool_size], key=lambda i: len(items[i]))
        groups.extend(pool[i: i + batch_size] for i in range(0, len(pool), batch_size))
    return [list(groups[g]) for g in rng.permutation(len(groups))]


def training_batches(items: Sequence[Encoded], batch_size: int, rng: np.random.Generator,
                     pool_batches: int = 50) -> Iterator[Batch]:
    for group in training_groups(items, batch_size, rng, pool_batches):
        yield pad(items, group)


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

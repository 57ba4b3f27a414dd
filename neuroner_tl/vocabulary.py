"""Vocabularies for words, characters and labels, and the paper's preprocessing."""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

PAD = "<PAD>"  # how ids 0 and 1 are shown (``Vocabulary.entries``); never looked up: real text may hold
UNK = "<UNK>"  # these very strings, and they are words like any other
PAD_ID = 0
UNK_ID = 1
RESERVED_IDS = 2
_DIGIT = re.compile(r"[0-9]")  # ASCII digits only: the SavedModel's RE2 rule must match this one


def replace_digits(token: str) -> str:
    return _DIGIT.sub("0", token)


class Vocabulary:
    """An indexed list of entries; ids 0 (padding) and 1 (unknown) are reserved by number, not by a
    string: no entry gets them, whatever its text (a literal ``<PAD>`` in the data is a word)."""

    def __init__(self, entries: Iterable[str]):
        self.entries: List[str] = [PAD, UNK]
        self.index: Dict[str, int] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: str) -> int:
        if entry not in self.index:
            self.index[entry] = len(self.entries)
            self.entries.append(entry)
        return self.index[entry]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, entry: str) -> bool:
        return entry in self.index

    def id(self, entry: str) -> int:
        return self.index.get(entry, UNK_ID)

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text("".join(e + "\n" for e in self.entries[RESERVED_IDS:]), encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Vocabulary":
        text = Path(path).read_text(encoding="utf-8")
        return cls(text.split("\n")[:-1] if text else [])


class TokenEncoder:
    """Maps tokens to word ids and character ids the way training did.

    A word is looked up as written (digits replaced by 0), then lowercased; else it is UNK.
    """

    def __init__(self, words: Vocabulary, chars: Vocabulary, *, lowercase_lookup: bool = True,
                 digits_to_zero: bool = True, max_word_length: int = 30):
        self.words = words
        self.chars = chars
        self.lowercase_lookup = lowercase_lookup
        self.digits_to_zero = digits_to_zero
        self.max_word_length = max_word_length

    def normalize(self, token: str) -> str:
        return replace_digits(token) if self.digits_to_zero else token

    def word_id(self, token: str) -> int:
        form = self.normalize(token)
        found = self.words.index.get(form)
        if found is None and self.lowercase_lookup:
            found = self.words.index.get(form.lower())
        return UNK_ID if found is None else found

    def char_ids(self, token: str) -> List[int]:
        return [self.chars.id(c) for c in self.normalize(token)[: self.max_word_length]]

    def encode(self, tokens: Sequence[str]):
        """(word ids [T], list of T char-id lists)."""
        return (np.array([self.word_id(t) for t in tokens], dtype=np.int32),
                [self.char_ids(t) for t in tokens])


def count_words(sentences_tokens: Iterable[Sequence[str]], normalize: Callable[[str], str]) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for tokens in sentences_tokens:
        counts.update(normalize(t) for t in tokens)
    return counts


def build_word_vocabulary(counts: collections.Counter, min_count: int,
                          has_vector: Optional[Callable[[str], bool]] = None,
                          extra_words: Iterable[str] = ()) -> Vocabulary:
    """Training words seen at least ``min_count`` times, plus any word that has a pretrained vector.

    ``extra_words`` (dev and test words, NeuroNER's choice) join only when they have a vector.
    Entries are ordered by frequency then alphabetically, so the same data give the same ids.
    """
    chosen = [w for w, c in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
              if c >= min_count or (has_vector is not None and has_vector(w))]
    vocabulary = Vocabulary(chosen)
    if has_vector is not None:
        for word in sorted(set(extra_words)):
            if word not in vocabulary and has_vector(word):
                vocabulary.add(word)
    return vocabulary


def build_char_vocabulary(sentences_tokens: Iterable[Sequence[str]], normalize: Callable[[str], str]) -> Vocabulary:
    counts: collections.Counter = collections.Counter()
    for tokens in sentences_tokens:
        for token in tokens:
            counts.update(normalize(token))
    return Vocabulary(c for c, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def singleton_words(counts: collections.Counter, vocabulary: Vocabulary) -> List[str]:
    """Words in the vocabulary seen once in training: candidates for NeuroNER's random UNK swap."""
    return [w for w, c in counts.items() if c == 1 and w in vocabulary]

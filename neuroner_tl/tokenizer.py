"""A tokenizer and sentence splitter that keep character offsets (for raw text and BRAT)."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import List, Tuple

Token = Tuple[str, int, int]  # text, start, end (exclusive)

JOINERS = "\u200c\u200d"  # zero-width non-joiner and joiner: part of the token they are in


def is_mark(character: str) -> bool:
    """A character that never starts a token: a combining mark (accents, Indic vowel signs and
    viramas, Arabic diacritics: Unicode categories M*) or a zero-width (non-)joiner."""
    return unicodedata.category(character).startswith("M") or character in JOINERS


@functools.lru_cache(maxsize=1)
def _class_ranges() -> dict:
    """``[(first, last), ...]`` of the code points (no surrogates) of each character class the
    patterns spell out: ``word`` (``isalnum()`` or ``_``), ``digit`` (``isdecimal()``), ``space``
    (``isspace()``), ``upper`` (``isupper()``) and ``mark`` (:func:`is_mark`). Computed with NumPy over
    one boolean per code point (a Python test per code point and class took seconds)."""
    import numpy as np

    codes = np.arange(0x110000)
    codes = codes[(codes < 0xD800) | (codes > 0xDFFF)]
    characters = list(map(chr, codes.tolist()))

    def where(method) -> np.ndarray:
        return np.fromiter(map(method, characters), bool, len(characters))

    marks = np.fromiter((category[0] == "M" for category in map(unicodedata.category, characters)), bool,
                        len(characters))
    inside = {"word": where(str.isalnum) | (codes == ord("_")), "digit": where(str.isdecimal),
              "space": where(str.isspace), "upper": where(str.isupper),
              "mark": marks | np.isin(codes, [ord(c) for c in JOINERS])}
    follows = np.diff(codes) == 1  # False across the surrogate gap, where a run must end
    ranges = {}
    for name, held in inside.items():
        starts = np.flatnonzero(held & ~np.concatenate([[False], held[:-1] & follows]))
        ends = np.flatnonzero(held & ~np.concatenate([held[1:] & follows, [False]]))
        ranges[name] = list(zip(codes[starts].tolist(), codes[ends].tolist()))
    return ranges


def _mark_ranges():
    return _class_ranges()["mark"]


@functools.lru_cache(maxsize=1)
def _token_pattern() -> "re.Pattern":
    """Grapheme-aware: a word is a word character followed by word characters and marks, and a mark
    (or a joiner) after any other character stays with it, so it never starts a token."""
    marks = "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in _mark_ranges())
    m = f"[{marks}]"
    return re.compile(
        rf"[\w{marks}.+\-]+@[\w{marks}\-]+(?:\.[\w{marks}\-]+)+"  # e-mail addresses
        r"|https?://\S+"  # links
        rf"|\w[\w{marks}]*['’](?=\w)"  # Italian and French elisions keep their apostrophe: l'|Istituto
        rf"|\+?\d+(?:[.,:/]\d+)*{m}*"  # numbers (international phone prefixes too), dates, times
        rf"|\w[\w{marks}]*(?:[\-]\w[\w{marks}]*)*"  # words, hyphenated words, with their marks
        rf"|[^\w\s]{m}*",  # any other symbol on its own (with its marks)
        re.UNICODE,
    )


_SENTENCE_END = re.compile(r"[.!?…]+$")


def tokenize(text: str, offset: int = 0) -> List[Token]:
    return [(m.group(), m.start() + offset, m.end() + offset) for m in _token_pattern().finditer(text)]


def split_sentences(text: str) -> List[List[Token]]:
    """Tokens grouped into sentences: a line break ends a sentence, and so does final punctuation
    followed by a token that starts with an uppercase letter."""
    sentences: List[List[Token]] = []
    position = 0
    for line in text.splitlines(keepends=True):
        tokens = tokenize(line, position)
        position += len(line)
        current: List[Token] = []
        for i, token in enumerate(tokens):
            current.append(token)
            following = tokens[i + 1][0] if i + 1 < len(tokens) else ""
            if _SENTENCE_END.search(token[0]) and following[:1].isupper():
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
    return sentences


# The same tokenizer for TensorFlow's RE2 (the SavedModel's raw-text signature, ``serving.py``) ------
# RE2 has no lookahead and its \w, \d, \s are ASCII, so the pattern is spelled with character classes
# built from this Python's own definitions (\w: isalnum() or "_", \d: isdecimal(), \s: isspace()),
# code point by code point, and the elision's lookahead becomes a mark put on the apostrophe first:
# an apostrophe with a word character on each side is rewritten to a private-use placeholder of the
# same length, which only the elision alternative accepts and every other alternative treats as the
# apostrophe it stands for. Tokens are then wrapped in two more placeholders, whose positions give
# the offsets. Placeholders already in the text become another private-use character first (one
# symbol token either way).
ELISION_MARKS = {"'": "\ue003", "’": "\ue004"}
TOKEN_START, TOKEN_END, RESERVED_STAND_IN = "\ue000", "\ue001", "\ue005"
RESERVED = "[\\x{e000}-\\x{e004}]"
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits on


def _ranges(name: str) -> str:
    """An RE2 class body for the code points of ``CLASSES[name]``."""
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}"
                   for a, b in _class_ranges()[name])


@functools.lru_cache(maxsize=1)
def re2_patterns() -> dict:
    """The RE2 patterns that tokenize and split text exactly as :func:`split_sentences` does."""
    word = _ranges("word")
    digit = _ranges("digit")
    space = _ranges("space")
    mark = _ranges("mark")
    w, d, m, elided = f"[{word}]", f"[{digit}]", f"[{mark}]", "".join(ELISION_MARKS.values())
    token = "|".join([
        f"[{word}{mark}.+\\-]+@[{word}{mark}\\-]+(?:\\.[{word}{mark}\\-]+)+",  # e-mail addresses
        f"https?://[^{space}]+",  # links
        f"{w}[{word}{mark}]*[{elided}]",  # elisions (their apostrophe marked beforehand)
        f"\\+?{d}+(?:[.,:/]{d}+)*{m}*",  # numbers, dates, times
        f"{w}[{word}{mark}]*(?:[\\-]{w}[{word}{mark}]*)*",  # words, hyphenated words, with their marks
        f"[^{word}{space}]{m}*",  # any other symbol on its own (with its marks)
    ])
    return {"token": token, "word": w, "word_or_mark": f"[{word}{mark}]", "upper": f"[{_ranges('upper')}]",
            "sentence_end": "[.!?…]", "line_break": "[" + "".join(f"\\x{{{ord(c):x}}}" for c in LINE_BREAKS) + "]"}

"""A tokenizer and sentence splitter that keep character offsets (for raw text and BRAT)."""

from __future__ import annotations

import re
from typing import List, Tuple

Token = Tuple[str, int, int]  # text, start, end (exclusive)

_TOKEN = re.compile(
    r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"  # e-mail addresses
    r"|https?://\S+"  # links
    r"|\w+['’](?=\w)"  # Italian and French elisions keep their apostrophe: l'|Istituto
    r"|\+?\d+(?:[.,:/]\d+)*"  # numbers (international phone prefixes too), dates, times
    r"|\w+(?:[\-]\w+)*"  # words, hyphenated words
    r"|[^\w\s]",  # any other symbol on its own
    re.UNICODE,
)
_SENTENCE_END = re.compile(r"[.!?…]+$")


def tokenize(text: str, offset: int = 0) -> List[Token]:
    return [(m.group(), m.start() + offset, m.end() + offset) for m in _TOKEN.finditer(text)]


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

"""A tokenizer and sentence splitter that keep character offsets (for raw text and BRAT).

Whitespace and invisible characters (``is_invisible``: control and format characters such as NUL
or a zero-width space) separate tokens and are never part of one; every offset counts the
original text's characters, those included. A lone surrogate is no character (``surrogate_problem``)."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import List, Optional, Tuple

Token = Tuple[str, int, int]  # text, start, end (exclusive)

JOINERS = "\u200c\u200d"  # zero-width non-joiner and joiner: part of the token they are in
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_problem(text: str) -> Optional[str]:
    """Why ``text`` is not Unicode text (None when it is): it holds a lone surrogate, which a JSON
    escape can write (``"\\ud800"``) but which is no character and has no UTF-8 to be written back in."""
    found = _LONE_SURROGATE.search(text)
    if found is None:
        return None
    return (f"holds a lone surrogate U+{ord(found.group()):04X} at character {found.start()}: not a Unicode "
            f"character (half of a broken \\u escape pair?)")


def is_invisible(character: str) -> bool:
    """A character that separates tokens like a space and is never part of one: a control
    character that is not whitespace (NUL, ESC, DEL, C1 controls: Unicode category Cc) or an
    invisible format character (Cc's neighbour Cf: zero-width space, soft hyphen, byte-order mark,
    bidirectional marks), the zero-width (non-)joiners excepted (``is_mark``). Offsets still count it."""
    category = unicodedata.category(character)
    return (category == "Cc" and not character.isspace()) or (category == "Cf" and character not in JOINERS)


def is_separator(character: str) -> bool:
    """Whitespace or an invisible character: what lies between tokens."""
    return character.isspace() or is_invisible(character)


def is_mark(character: str) -> bool:
    """A character that never starts a token: a combining mark (accents, Indic vowel signs and
    viramas, Arabic diacritics: Unicode categories M*) or a zero-width (non-)joiner."""
    return unicodedata.category(character).startswith("M") or character in JOINERS


@functools.lru_cache(maxsize=None)
def _code_point_ranges(predicate):
    """``[(first, last), ...]``: the code points (no surrogates) where ``predicate(chr(c))`` holds."""
    ranges, start = [], None
    for code in range(0x110001):
        inside = code < 0x110000 and not 0xD800 <= code <= 0xDFFF and predicate(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append((start, code - 1))
            start = None
    return ranges


def _python_class(ranges) -> str:
    """A Python ``re`` character class body for ``[(first, last), ...]``."""
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


@functools.lru_cache(maxsize=1)
def _token_pattern() -> "re.Pattern":
    """Grapheme-aware: a word is a word character followed by word characters and marks, and a mark
    (or a joiner) after any other character stays with it, so it never starts a token."""
    marks = _python_class(_code_point_ranges(is_mark))
    separators = _python_class(_code_point_ranges(is_separator))
    m = f"[{marks}]"
    return re.compile(
        rf"[\w{marks}.+\-]+@[\w{marks}\-]+(?:\.[\w{marks}\-]+)+"  # e-mail addresses
        rf"|https?://[^{separators}]+"  # links
        rf"|\w[\w{marks}]*['’](?=\w)"  # Italian and French elisions keep their apostrophe: l'|Istituto
        rf"|\+?\d+(?:[.,:/]\d+)*{m}*"  # numbers (international phone prefixes too), dates, times
        rf"|\w[\w{marks}]*(?:[\-]\w[\w{marks}]*)*"  # words, hyphenated words, with their marks
        rf"|[^\w{separators}]{m}*",  # any other visible symbol on its own (with its marks)
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
# built from this Python's own definitions (\w: isalnum() or "_", \d: isdecimal(), what separates
# tokens: is_separator()), code point by code point, and the elision's lookahead becomes a mark put
# on the apostrophe first: an apostrophe with a word character on each side is rewritten to a
# private-use placeholder of the same length, which only the elision alternative accepts and every
# other alternative treats as the apostrophe it stands for. Tokens are then wrapped in two more
# placeholders, whose positions give the offsets. Placeholders already in the text become another
# private-use character first (one symbol token either way).
ELISION_MARKS = {"'": "\ue003", "’": "\ue004"}
TOKEN_START, TOKEN_END, RESERVED_STAND_IN = "\ue000", "\ue001", "\ue005"
RESERVED = "[\\x{e000}-\\x{e004}]"
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits on


def _ranges(predicate) -> str:
    """An RE2 class body for the code points (no surrogates) where ``predicate(chr(c))`` holds."""
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}"
                   for a, b in _code_point_ranges(predicate))


@functools.lru_cache(maxsize=1)
def re2_patterns() -> dict:
    """The RE2 patterns that tokenize and split text exactly as :func:`split_sentences` does."""
    word = _ranges(lambda c: c.isalnum() or c == "_")
    digit = _ranges(str.isdecimal)
    separator = _ranges(is_separator)
    mark = _ranges(is_mark)
    w, d, m, elided = f"[{word}]", f"[{digit}]", f"[{mark}]", "".join(ELISION_MARKS.values())
    token = "|".join([
        f"[{word}{mark}.+\\-]+@[{word}{mark}\\-]+(?:\\.[{word}{mark}\\-]+)+",  # e-mail addresses
        f"https?://[^{separator}]+",  # links
        f"{w}[{word}{mark}]*[{elided}]",  # elisions (their apostrophe marked beforehand)
        f"\\+?{d}+(?:[.,:/]{d}+)*{m}*",  # numbers, dates, times
        f"{w}[{word}{mark}]*(?:[\\-]{w}[{word}{mark}]*)*",  # words, hyphenated words, with their marks
        f"[^{word}{separator}]{m}*",  # any other visible symbol on its own (with its marks)
    ])
    return {"token": token, "word": w, "word_or_mark": f"[{word}{mark}]", "upper": f"[{_ranges(str.isupper)}]",
            "sentence_end": "[.!?…]", "line_break": "[" + "".join(f"\\x{{{ord(c):x}}}" for c in LINE_BREAKS) + "]"}

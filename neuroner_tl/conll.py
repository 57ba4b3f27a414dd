"""Reading and writing CoNLL files: token first, label last, any columns between."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

from . import tags as tagging
from .atomic import atomic_write_text
from .corpus import Corpus, Sentence
from .errors import DataFormatError
from .lines import LineSource, split_lines

DOCSTART = "-DOCSTART-"
PathLike = Union[str, Path]


def read_conll(path: PathLike, scheme: Optional[str] = None, labelled: Optional[bool] = None) -> Corpus:
    """Read a CoNLL file.

    ``scheme`` names the tag scheme (IO, IOB1, IOB2/BIO, BIOES) or is detected when None.
    ``labelled`` says whether the last column is a label; None decides from the file: a file whose
    lines have one column is unlabelled text.
    """
    path = Path(path)
    if scheme is not None:
        try:
            scheme = tagging.canonical_scheme(scheme)
        except ValueError as error:
            raise DataFormatError(str(error), path) from None
    with LineSource(path) as lines:
        return corpus_from_lines(lines, path, scheme, labelled)


def parse_conll(text: str, path: Optional[PathLike] = None, scheme: Optional[str] = None,
                labelled: Optional[bool] = None) -> Corpus:
    """Parse CoNLL text; ``path`` only names the source in error messages. Lines are split as in a
    file (``lines.split_lines``)."""
    return corpus_from_lines(split_lines(text), path, scheme, labelled)


def corpus_from_lines(lines: Iterable[str], path: Optional[PathLike] = None, scheme: Optional[str] = None,
                      labelled: Optional[bool] = None) -> Corpus:
    """The corpus of CoNLL ``lines`` (``read_conll`` and ``parse_conll`` alike)."""
    where = path if path is not None else "<text>"
    if scheme is not None:
        scheme = tagging.canonical_scheme(scheme)
    rows: List[List[List[str]]] = []
    starts: List[int] = []
    width: Optional[int] = None
    for start, block in iter_conll_blocks(lines, where):
        rows.append(block)
        starts.append(start)
        width = len(block[0]) - 1
    if not rows:
        raise DataFormatError("no sentences (the file is empty or has only blank and -DOCSTART- lines)", where)
    if labelled is None:
        labelled = width is not None and width > 1
    if labelled and width == 1:
        raise DataFormatError("expected a label column after the token, found only one column", where, starts[0])

    sentences = [sentence_from_block(block, start, labelled) for block, start in zip(rows, starts)]
    if not labelled:
        return Corpus(sentences, None, None if path is None else str(path))

    for sentence in sentences:
        for offset, label in enumerate(sentence.labels):
            problem = tagging.tag_problem(label, scheme)
            if problem:
                raise DataFormatError(problem, where, sentence.line + offset)
    _reject_mixed_bare_and_prefixed(sentences, where)
    detected = tagging.detect_scheme(s.labels for s in sentences)
    if scheme is None:
        scheme = detected
    elif (scheme == "IO") != (detected == "IO"):
        raise DataFormatError(f"labels are written in {detected}, not {scheme}", where)
    elif scheme != detected:
        _reject_contradicted_scheme(sentences, scheme, detected, where)
    return Corpus(sentences, scheme, None if path is None else str(path))


def _reject_contradicted_scheme(sentences: List[Sentence], scheme: str, detected: str, where: PathLike) -> None:
    """The scheme given, when the whole file reads as another (IOB2 given as BIOES: no E- or S-
    anywhere), is an error naming the first label it does not allow; a file without entities
    contradicts no scheme."""
    for sentence in sentences:
        violation = tagging.scheme_violation(sentence.labels, scheme)
        if violation:
            position, what = violation
            raise DataFormatError(f"labels are written in {detected}, not {scheme}: {what} is not {scheme} "
                                  f"(without a scheme given they are read as {detected})", where,
                                  sentence.line + position)


def iter_conll_blocks(lines: Iterable[str], where, first_line: int = 1):
    """``(line of the first token, rows)`` for each sentence of CoNLL ``lines``, lazily: a row is the
    line's fields plus its line number. Every token line must have as many columns as the first."""
    current: List[list] = []
    start = 0
    width: Optional[int] = None
    for number, line in enumerate(lines, start=first_line):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            if current:
                yield start, current
                current = []
            continue
        if "\x00" in line:
            raise DataFormatError("contains a NUL character", where, number)
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise DataFormatError(f"expected {width} columns like the first token line, found {len(fields)}"
                                  f"{_unusual_space(line)}", where, number)
        if not current:
            start = number
        current.append(fields + [number])
    if current:
        yield start, current


def _unusual_space(line: str) -> str:
    """A note naming a space other than a blank or a tab, which separates columns too."""
    for character in line.rstrip("\r\n"):
        if character.isspace() and character not in " \t":
            name = unicodedata.name(character, "a space").lower()
            return f" (a {name}, U+{ord(character):04X}, separates columns like a blank)"
    return ""


def sentence_from_block(block: List[list], start: int, labelled: bool) -> Sentence:
    width = len(block[0]) - 1
    tokens = [fields[0] for fields in block]
    labels = [fields[width - 1] for fields in block] if labelled else None
    middle_end = width - 1 if labelled else width
    columns = [fields[1:middle_end] for fields in block]
    return Sentence(tokens, labels, columns if any(columns) else [], start)


def _reject_mixed_bare_and_prefixed(sentences: List[Sentence], where: PathLike) -> None:
    """IO labels (bare types) and prefixed tags in one file mean a typo, not a scheme."""
    first_bare = first_prefixed = None
    for sentence in sentences:
        for offset, label in enumerate(sentence.labels):
            if label == tagging.OUTSIDE:
                continue
            prefixed = tagging.tag_problem(label, "IO") is not None
            if prefixed and first_prefixed is None:
                first_prefixed = (label, sentence.line + offset)
            if not prefixed and first_bare is None:
                first_bare = (label, sentence.line + offset)
            if first_bare and first_prefixed:
                label, line = first_bare
                raise DataFormatError(f"label {label!r} has no B-/I- prefix, but {first_prefixed[0]!r} "
                                      f"on line {first_prefixed[1]} has one", where, line)


def format_conll(sentences: Iterable[Sentence], predictions: Optional[Iterable[Sequence[str]]] = None,
                 separator: str = " ") -> str:
    """CoNLL text: token, middle columns, gold label (if any), predicted label (if given)."""
    out = io.StringIO()
    prediction_iter = iter(predictions) if predictions is not None else None
    for sentence in sentences:
        predicted = next(prediction_iter) if prediction_iter is not None else None
        for i, token in enumerate(sentence.tokens):
            fields = [token]
            if sentence.columns:
                fields.extend(sentence.columns[i])
            if sentence.labels is not None:
                fields.append(sentence.labels[i])
            if predicted is not None:
                fields.append(predicted[i])
            out.write(separator.join(fields) + "\n")
        out.write("\n")
    return out.getvalue()


def write_conll(path: PathLike, sentences: Iterable[Sentence],
                predictions: Optional[Iterable[Sequence[str]]] = None, separator: str = " ") -> None:
    """Write CoNLL text atomically (a crash leaves the old file or none, never half a file)."""
    atomic_write_text(path, format_conll(sentences, predictions, separator))

"""Where data come from and go to: reading a corpus, telling CoNLL from raw text, and checking an
output before any work starts (never an input, never a file without ``force``, a writable place)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence, Union

from . import tags as tagging
from .brat import read_brat
from .conll import Corpus, Sentence, read_conll
from .errors import DataFormatError, NeuronerError
from .lines import LineSource
from .outputs import check_output

PathLike = Union[str, Path]
CorpusLike = Union[PathLike, Corpus]


def load_corpus(source: CorpusLike, scheme: Optional[str] = None) -> Corpus:
    """A ``Corpus`` from a CoNLL file or a BRAT folder (or a ``Corpus``, returned as is)."""
    if isinstance(source, Corpus):
        return source
    path = Path(source)
    if path.is_dir():
        return read_brat(path)
    return read_conll(path, scheme=scheme)


def require_labels(corpus: Corpus, role: str) -> Corpus:
    if not corpus.labelled:
        raise DataFormatError(f"the {role} data need a label column", corpus.path)
    return corpus


def path_of(source) -> Optional[str]:
    return None if source is None or isinstance(source, Corpus) else str(source)



def check_output_file(output: PathLike, force: bool, inputs: Sequence, folder: bool = False) -> None:
    """An output file (or, with ``folder``, a BRAT output folder): ``outputs.check_output``, the rule
    of every command (never an input, inside one or holding one; nothing replaced without ``force``)."""
    check_output(output, "brat" if folder else "file", force, inputs)


INPUT_FORMATS = ("conll", "text", "brat")
OUTPUT_FORMATS = ("conll", "brat", "json")


CONLL_SUFFIXES = (".conll", ".conllx", ".conll03", ".iob", ".iob1", ".iob2", ".bio", ".bioes", ".tsv", ".col")
SNIFFED_LINES = 200


def guess_input_format(path: Path) -> str:
    """brat for a folder; otherwise ``detect_input_format`` on the file's first lines."""
    if path.is_dir():
        return "brat"
    try:
        with LineSource(path) as lines:
            return detect_input_format(lines)
    except DataFormatError:
        return "conll"  # let the reader name the problem


def detect_input_format(lines: LineSource, input_format: Optional[str] = None) -> str:
    """The format of a file's or standard input's lines, the one rule of every command: as given;
    else conll for a file with a CoNLL extension; else decided by the first lines
    (``looks_like_conll``). Standard input is never a BRAT folder."""
    if input_format is None and not lines.from_stdin and Path(lines.name).suffix.lower() in CONLL_SUFFIXES:
        input_format = "conll"
    if input_format is None:
        input_format = "conll" if looks_like_conll(lines.peek(SNIFFED_LINES)) else "text"
    if input_format == "brat":
        raise NeuronerError(f"{lines.name} is one text, not a BRAT folder: give the folder, or --input-format "
                            f"text or conll")
    return input_format


def looks_like_conll(lines: Sequence[str]) -> bool:
    """Whether ``lines`` are CoNLL rather than prose. Prose can have the same number of words on every
    line (a one-line file always does), so the rule asks for what only CoNLL has:

    - one column: a token per line with blank lines between sentences;
    - several columns (the same number on every line, however many: CoNLL-2012 has more than ten): a
      last column of tags on every line (O, B-/I-/E-/S-TYPE, or an upper-case IO type) with at least
      one O.
    """
    rows = [line.split() for line in lines]
    filled = [row for row in rows if row and row[0] != "-DOCSTART-"]
    if not filled:
        return False
    widths = {len(row) for row in filled}
    if len(widths) != 1:
        return False
    width = widths.pop()
    if width == 1:
        blank_inside = any(not row for row in rows[1:-1])
        return blank_inside and len(filled) > 1
    last = [row[-1] for row in filled]
    return "O" in last and all(_looks_like_tag(tag) for tag in last)


def _looks_like_tag(tag: str) -> bool:
    if tag == "O":
        return True
    if tag[:2] in ("B-", "I-", "E-", "S-"):
        return tagging.tag_problem(tag, None) is None
    return tag.isupper() and tagging.tag_problem(tag, "IO") is None


def check_formats(source: Optional[Path], input_format: Optional[str], output_format: str):
    """The format names checked; an input format left None is guessed from ``source`` when given."""
    if input_format is None and source is not None:
        input_format = guess_input_format(source)
    if input_format is not None and input_format not in INPUT_FORMATS:
        raise NeuronerError(f"unknown input format {input_format!r} (expected {', '.join(INPUT_FORMATS)})")
    if output_format not in OUTPUT_FORMATS:
        raise NeuronerError(f"unknown output format {output_format!r} (expected {', '.join(OUTPUT_FORMATS)})")
    return input_format, output_format


def sentences_with_offsets(sentences: Sequence[Sentence], name: str):
    lines, placed, position = [], [], 0
    for sentence in sentences:
        offsets = []
        for token in sentence.tokens:
            offsets.append((position, position + len(token)))
            position += len(token) + 1
        lines.append(" ".join(sentence.tokens))
        placed.append(dataclasses.replace(sentence, offsets=offsets, document=name))
    return placed, {name: "\n".join(lines) + "\n"}

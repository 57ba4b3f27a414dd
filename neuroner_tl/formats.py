"""Where data come from and go to: reading a corpus, telling CoNLL from raw text, and checking an
output before any work starts (never an input, never a file without ``force``, a writable place)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from . import jsonl, labelstudio
from . import tags as tagging
from .brat import read_brat, read_brat_documents
from .conll import read_conll
from .corpus import Corpus, Sentence
from .errors import DataFormatError, NeuronerError
from .lines import LineSource
from .outputs import check_output
from .spans import SpanDocument, documents_corpus, documents_of_sentences, joined_offsets

PathLike = Union[str, Path]
CorpusLike = Union[PathLike, Corpus]


def load_corpus(source: CorpusLike, scheme: Optional[str] = None) -> Corpus:
    """A ``Corpus`` from a CoNLL file, a BRAT folder, span JSONL or a Label Studio export (or a
    ``Corpus``, returned as is). Span files are labelled when any document is annotated (the
    others are left out, ``spans.documents_corpus``); ``scheme`` is for CoNLL (spans have none)."""
    if isinstance(source, Corpus):
        return source
    path = Path(source)
    if path.is_dir():
        return read_brat(path)
    input_format = guess_input_format(path)
    if input_format in SPAN_FORMATS:
        return read_span_file(path, input_format)[0]
    return read_conll(path, scheme=scheme)


def load_documents(source: CorpusLike, scheme: Optional[str] = None) -> Tuple[Corpus, List[SpanDocument]]:
    """(``load_corpus``'s corpus, the documents its sentences come from): the documents of a span
    file or a BRAT folder, else one a sentence (``spans.documents_of_sentences``)."""
    if not isinstance(source, Corpus):
        path = Path(source)
        if path.is_dir():
            corpus, texts = read_brat_documents(path)
            return corpus, [SpanDocument(name, text, where=name, fields={"document": name})
                            for name, text in texts.items()]
        input_format = guess_input_format(path)
        if input_format in SPAN_FORMATS:
            return read_span_file(path, input_format)
    corpus = load_corpus(source, scheme)
    documents, sentences = documents_of_sentences(corpus.sentences)
    return dataclasses.replace(corpus, sentences=sentences), documents


def read_span_file(path: Path, input_format: str) -> Tuple[Corpus, List[SpanDocument]]:
    """(the corpus, the documents) of a span file: labelled when any document is annotated, and
    then only the annotated documents (and, of JSONL, not Prodigy's rejected answers)."""
    with LineSource(path) as lines:
        documents = read_span_documents(lines, input_format)
    if input_format == "jsonl":
        documents = jsonl.training_documents(documents, path)
    labelled = any(d.annotated for d in documents)
    corpus = documents_corpus(documents, path, labelled)
    return corpus, [d for d in documents if d.annotated or not labelled]


def read_span_documents(lines: LineSource, input_format: str) -> List[SpanDocument]:
    """The documents of span JSONL or a Label Studio export."""
    if input_format == "jsonl":
        return jsonl.read_documents(lines, lines.name)[0]
    return labelstudio.read_documents("".join(lines), lines.name)


def require_labels(corpus: Corpus, role: str) -> Corpus:
    if not corpus.labelled:
        raise DataFormatError(f"the {role} data need a label column (CoNLL) or annotated documents (JSONL spans, a "
                              f"Label Studio export)", corpus.path)
    return corpus


def path_of(source) -> Optional[str]:
    return None if source is None or isinstance(source, Corpus) else str(source)



def check_output_file(output: PathLike, force: bool, inputs: Sequence, folder: bool = False) -> None:
    """An output file (or, with ``folder``, a BRAT output folder): ``outputs.check_output``, the rule
    of every command (never an input, inside one or holding one; nothing replaced without ``force``)."""
    check_output(output, "brat" if folder else "file", force, inputs)


INPUT_FORMATS = ("conll", "text", "brat", "jsonl", "labelstudio")
OUTPUT_FORMATS = ("conll", "brat", "json", "jsonl", "labelstudio")
SPAN_FORMATS = ("jsonl", "labelstudio")  # documents with character-offset spans
ANNOTATION_FORMATS = ("conll", "jsonl", "labelstudio")  # what annotate writes


CONLL_SUFFIXES = (".conll", ".conllx", ".conll03", ".iob", ".iob1", ".iob2", ".bio", ".bioes", ".tsv", ".col")
SUFFIX_FORMATS = {**{suffix: "conll" for suffix in CONLL_SUFFIXES}, ".jsonl": "jsonl", ".ndjson": "jsonl",
                  ".json": "labelstudio"}
SNIFFED_LINES = 200
_JSON_LIST = re.compile(r"\s*\[\s*(\{|\]\s*$)")
_JSON_OBJECT = re.compile(r'\s*\{\s*("|\}\s*$)')


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
    else by the file's extension (CoNLL's, ``.jsonl``, ``.json`` for Label Studio); else decided by
    the first lines (``sniffed_json_format``, ``looks_like_conll``). Standard input is never a BRAT
    folder."""
    if input_format is None and not lines.from_stdin:
        input_format = SUFFIX_FORMATS.get(Path(lines.name).suffix.lower())
    if input_format is None:
        head = lines.peek(SNIFFED_LINES)
        input_format = sniffed_json_format(head) or ("conll" if looks_like_conll(head) else "text")
    if input_format == "brat":
        raise NeuronerError(f"{lines.name} is one text, not a BRAT folder: give the folder, or --input-format "
                            f"text or conll")
    return input_format


def sniffed_json_format(lines: Sequence[str]) -> Optional[str]:
    """jsonl when the first line that is not blank is a JSON object with a text; labelstudio when it
    is one Label Studio task, when the lines start a JSON object spread over several lines (one task,
    as Label Studio's import takes it) or a JSON list of objects; None for anything else (CoNLL or
    prose)."""
    filled = [line for line in lines if line.strip()]
    if not filled:
        return None
    if filled[0].lstrip().startswith("{"):
        try:
            record = json.loads(filled[0])
        except ValueError:
            return "labelstudio" if _JSON_OBJECT.match("".join(filled[:3])) else None
        if isinstance(record, dict) and jsonl.text_key(record):
            return "jsonl"
        return "labelstudio" if labelstudio.is_task(record) else None
    return "labelstudio" if _JSON_LIST.match("".join(filled[:3])) else None


def annotation_format(output: Optional[PathLike], output_format: Optional[str]) -> str:
    """What annotate writes: as given, else by the output's extension (``.jsonl``, ``.json`` for
    Label Studio), else CoNLL."""
    if output_format is None:
        guessed = SUFFIX_FORMATS.get(Path(output).suffix.lower()) if output is not None else None
        output_format = guessed if guessed in SPAN_FORMATS else "conll"
    if output_format not in ANNOTATION_FORMATS:
        raise NeuronerError(f"annotate writes {', '.join(ANNOTATION_FORMATS)}, not {output_format!r}")
    return output_format


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
        offsets = joined_offsets(sentence.tokens, position)
        position = offsets[-1][1] + 1 if offsets else position + 1
        lines.append(" ".join(sentence.tokens))
        placed.append(dataclasses.replace(sentence, offsets=offsets, document=name))
    return placed, {name: "\n".join(lines) + "\n"}

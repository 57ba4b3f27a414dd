"""BRAT standoff folders (``name.txt`` + ``name.ann``): read as labelled sentences, write predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Sequence, Tuple, Union

from . import tags as tagging
from .atomic import atomic_write_folder
from .corpus import Corpus, Sentence
from .lines import read_utf8_text
from .errors import DataFormatError
from .spans import char_spans, place_on_tokens, warn
from .tokenizer import split_sentences

Entity = Tuple[str, int, int]  # type, start, end (character offsets, end exclusive)


class Annotation(NamedTuple):
    """A text-bound entity of an ``.ann`` file, with its id for messages."""

    type: str
    start: int
    end: int
    id: str
    line: int


def read_ann(path: Path, text: str) -> List[Annotation]:
    """The text-bound entities (``T`` lines) of an ``.ann`` file; other annotations are ignored.

    A discontinuous entity (``start end;start end``) is taken from its first start to its last end.
    A text column that is not the document's text at the offsets is warned about (offsets off by some).
    """
    entities: List[Annotation] = []
    content = read_utf8_text(path)
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.startswith("T"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataFormatError("a T line needs ID<TAB>TYPE START END<TAB>TEXT", path, number)
        head = parts[1].split(" ", 1)
        if len(head) != 2:
            raise DataFormatError(f"expected 'TYPE START END', found {parts[1]!r}", path, number)
        kind, ranges = head
        try:
            pieces = [tuple(int(x) for x in piece.split()) for piece in ranges.split(";")]
            start, end = pieces[0][0], pieces[-1][1]
        except (ValueError, IndexError):
            raise DataFormatError(f"offsets {ranges!r} are not START END numbers", path, number) from None
        if not 0 <= start < end <= len(text):
            raise DataFormatError(f"offsets {start}-{end} fall outside the text ({len(text)} characters)",
                                  path, number)
        if tagging.tag_problem(kind, "IO"):
            raise DataFormatError(f"entity type {kind!r} cannot be used as a label", path, number)
        if len(parts) > 2 and all(len(piece) == 2 for piece in pieces):
            covered = " ".join(text[a:b] for a, b in pieces)
            if parts[2] != covered:
                warn(f"{path}:{number}: {parts[0]}'s text {parts[2][:40]!r} is not the document's "
                     f"{covered[:40]!r} at {ranges} (offsets off?)")
        entities.append(Annotation(kind, start, end, parts[0], number))
    return entities


def without_overlaps(entities: Sequence[Annotation], path) -> List[Annotation]:
    """The entities in text order, an entity that overlaps an earlier (or longer, at the same start)
    one left out with a warning naming both: a token carries one label."""
    kept: List[Annotation] = []
    for entity in sorted(entities, key=lambda e: (e.start, -e.end)):
        if kept and entity.start < kept[-1].end:
            other = kept[-1]
            warn(f"{path}: {entity.id} ({entity.type} {entity.start}-{entity.end}) overlaps {other.id} "
                 f"({other.type} {other.start}-{other.end}); {entity.id} is left out")
            continue
        kept.append(entity)
    return kept


def document_sentences(name: str, text: str, entities: Sequence[Entity], path=None) -> List[Sentence]:
    """Tokenize a document and label every token that overlaps an entity (IOB2); entities that overlap
    another are left out (``without_overlaps``). Linear in the text and the entities: one sweep."""
    ordered = without_overlaps([e if isinstance(e, Annotation) else Annotation(*e, id=f"#{i + 1}", line=0)
                                for i, e in enumerate(entities)], path or name)
    token_lists = split_sentences(text)
    sentences = []
    line, counted = 1, 0
    for tokens, pieces in zip(token_lists, place_on_tokens(token_lists, ordered)):
        labels = tagging.tags_from_spans([tagging.Span(e.type, a, b) for e, a, b in pieces], len(tokens), "IOB2")
        line += text.count("\n", counted, tokens[0][1])
        counted = tokens[0][1]
        sentences.append(Sentence(tokens=[t[0] for t in tokens], labels=labels,
                                  offsets=[(t[1], t[2]) for t in tokens], document=name, line=line))
    return sentences


def read_brat_documents(folder: Union[str, Path]) -> Tuple[Corpus, Dict[str, str]]:
    """(the sentences of every ``*.txt`` in ``folder``, labelled from its ``.ann``, and each document's
    text by name). A missing ``.ann`` means no entities; an ``.ann`` without its ``.txt`` and
    subfolders (not read) are warned about."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError("is not a BRAT folder", folder)
    sentences: List[Sentence] = []
    texts: Dict[str, str] = {}
    paths = sorted(folder.glob("*.txt"))
    for ann_path in sorted(folder.glob("*.ann")):
        if not ann_path.with_suffix(".txt").is_file():
            warn(f"{ann_path} has no {ann_path.stem}.txt beside it: its annotations are not read")
    for subfolder in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(subfolder.rglob("*.txt")):
            warn(f"{subfolder} is a subfolder: only the documents of {folder} itself are read")
    if not paths:
        raise DataFormatError("has no .txt files", folder)
    for text_path in paths:
        text = texts[text_path.stem] = read_utf8_text(text_path)
        ann_path = text_path.with_suffix(".ann")
        entities = read_ann(ann_path, text) if ann_path.exists() else []
        sentences.extend(document_sentences(text_path.stem, text, entities, ann_path))
    if not sentences:
        raise DataFormatError("has no tokens in its .txt files", folder)
    return Corpus(sentences, "IOB2", str(folder)), texts


def read_brat(folder: Union[str, Path]) -> Corpus:
    """The labelled sentences of a BRAT folder (see ``read_brat_documents``)."""
    return read_brat_documents(folder)[0]


def text_sentences(text: str, document: str = "text") -> List[Sentence]:
    """Raw text as unlabelled sentences with offsets."""
    return [Sentence(tokens=[t[0] for t in tokens], offsets=[(t[1], t[2]) for t in tokens], document=document)
            for tokens in split_sentences(text)]


def format_ann(text: str, sentences: Iterable[Sentence], predictions: Iterable[Sequence[str]]) -> str:
    lines = []
    for sentence, predicted in zip(sentences, predictions):
        for span in char_spans(sentence, tagging.spans(predicted)):
            lines.append(f"T{len(lines) + 1}\t{span.type} {span.start} {span.end}\t{text[span.start:span.end]}")
    return "".join(line + "\n" for line in lines)


def write_brat(folder: Union[str, Path], texts: Dict[str, str], sentences: Sequence[Sentence],
               predictions: Sequence[Sequence[str]]) -> None:
    """Write ``name.txt`` and ``name.ann`` for each document (``texts`` maps names to their text) as
    the folder ``folder``, replacing it whole (``atomic.atomic_write_folder``)."""
    by_document: Dict[str, Tuple[list, list]] = {name: ([], []) for name in texts}
    for sentence, predicted in zip(sentences, predictions):
        by_document[sentence.document][0].append(sentence)
        by_document[sentence.document][1].append(predicted)
    files = {}
    for name, text in texts.items():
        files[f"{name}.txt"] = text
        files[f"{name}.ann"] = format_ann(text, *by_document[name])
    atomic_write_folder(folder, files)

"""BRAT standoff folders (``name.txt`` + ``name.ann``): read as labelled sentences, write predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import tags as tagging
from .conll import Corpus, Sentence, atomic_write_folder, read_utf8_text
from .errors import DataFormatError
from .tokenizer import split_sentences

Entity = Tuple[str, int, int]  # type, start, end (character offsets, end exclusive)


def read_ann(path: Path, text: str) -> List[Entity]:
    """The text-bound entities (``T`` lines) of an ``.ann`` file; other annotations are ignored.

    A discontinuous entity (``start end;start end``) is taken from its first start to its last end.
    """
    entities: List[Entity] = []
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
        entities.append((kind, start, end))
    return entities


def document_sentences(name: str, text: str, entities: Sequence[Entity]) -> List[Sentence]:
    """Tokenize a document and label every token that overlaps an entity (IOB2)."""
    ordered = sorted(entities, key=lambda e: (e[1], -e[2]))
    sentences = []
    for tokens in split_sentences(text):
        labels = []
        previous: Optional[Entity] = None
        for _, start, end in tokens:
            entity = next((e for e in ordered if e[1] < end and start < e[2]), None)
            if entity is None:
                labels.append(tagging.OUTSIDE)
            else:
                labels.append(("I-" if entity is previous else "B-") + entity[0])
            previous = entity
        sentences.append(Sentence(tokens=[t[0] for t in tokens], labels=labels,
                                  offsets=[(t[1], t[2]) for t in tokens], document=name,
                                  line=text.count("\n", 0, tokens[0][1]) + 1))
    return sentences


def read_brat_documents(folder: Union[str, Path]) -> Tuple[Corpus, Dict[str, str]]:
    """(the sentences of every ``*.txt`` in ``folder``, labelled from its ``.ann``, and each document's
    text by name). A missing ``.ann`` means no entities."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError("is not a BRAT folder", folder)
    sentences: List[Sentence] = []
    texts: Dict[str, str] = {}
    paths = sorted(folder.glob("*.txt"))
    if not paths:
        raise DataFormatError("has no .txt files", folder)
    for text_path in paths:
        text = texts[text_path.stem] = read_utf8_text(text_path)
        ann_path = text_path.with_suffix(".ann")
        entities = read_ann(ann_path, text) if ann_path.exists() else []
        sentences.extend(document_sentences(text_path.stem, text, entities))
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
        for span in tagging.spans(predicted):
            start = sentence.offsets[span.start][0]
            end = sentence.offsets[span.end - 1][1]
            lines.append(f"T{len(lines) + 1}\t{span.type} {start} {end}\t{text[start:end]}")
    return "".join(line + "\n" for line in lines)


def write_brat(folder: Union[str, Path], texts: Dict[str, str], sentences: Sequence[Sentence],
               predictions: Sequence[Sequence[str]]) -> None:
    """Write ``name.txt`` and ``name.ann`` for each document (``texts`` maps names to their text) as
    the folder ``folder``, replacing it whole (``conll.atomic_write_folder``)."""
    by_document: Dict[str, Tuple[list, list]] = {name: ([], []) for name in texts}
    for sentence, predicted in zip(sentences, predictions):
        by_document[sentence.document][0].append(sentence)
        by_document[sentence.document][1].append(predicted)
    files = {}
    for name, text in texts.items():
        files[f"{name}.txt"] = text
        files[f"{name}.ann"] = format_ann(text, *by_document[name])
    atomic_write_folder(folder, files)

"""Character spans and token labels: the mapping that every span format shares (BRAT, span JSONL,
Label Studio). A document is a text and entity spans in character offsets; reading one splits the
text into sentences and tokens (``tokenizer.split_sentences``) and labels the tokens (IOB2);
writing one turns tagged tokens back into character spans of the same text.

Span JSONL and Label Studio are read strictly: a span must start and end on token boundaries and
may not overlap another (``DataFormatError`` naming the file, the document and the offsets: an
annotation is never moved or dropped); a span that gives its own text must be the document's text
at its offsets. Whitespace (and invisible characters, ``tokenizer.is_separator``) at either end of
a span is trimmed, with a warning: Label Studio users drag-select words and often take the space
after one.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

from . import tags as tagging
from .corpus import Corpus, Sentence
from .errors import DataFormatError
from .tokenizer import Token, is_separator, split_sentences, surrogate_problem

PathLike = Union[str, Path]
DETAILED_WARNINGS = 5  # per file and kind; the rest are counted on one line
IDENTITY_KEYS = ("id", "meta")  # a record's or task's own: Prodigy's and Label Studio's alike


class CharSpan(NamedTuple):
    """An entity in character offsets (end exclusive); ``score`` is a model's confidence, when known."""

    type: str
    start: int
    end: int
    score: Optional[float] = None


@dataclasses.dataclass
class SpanDocument:
    """One document of a span file.

    ``name`` keys its sentences (``Sentence.document``); ``line`` is its line in the file, when
    known, and ``where`` names it in messages beyond that ("id 7", "task 3 (id 42)"). ``spans`` is
    None for a document nobody annotated (not an annotated document without entities). ``fields``
    holds what a writer keeps from the input: a JSONL record's other keys, a Label Studio task's
    other ``data`` fields; ``identity``, what says which record or task it is (``IDENTITY_KEYS``: a
    JSONL record's or a Label Studio task's ``id`` and ``meta``), which every writer puts back at the
    top of the record or task; ``names``, the Label Studio names its regions used (``text_key``,
    ``from_name``, ``to_name``).
    """

    name: str
    text: str
    spans: Optional[List[CharSpan]] = None
    where: str = ""
    line: Optional[int] = None
    fields: Dict[str, object] = dataclasses.field(default_factory=dict)
    names: Dict[str, str] = dataclasses.field(default_factory=dict)
    identity: Dict[str, object] = dataclasses.field(default_factory=dict)

    @property
    def annotated(self) -> bool:
        return self.spans is not None

    def place(self, path: PathLike) -> str:
        """Where the document is, for a warning: ``file:line: id 7``, ``file: task 3 (id 42)``."""
        place = f"{path}:{self.line}" if self.line else str(path)
        return f"{place}: {self.where}" if self.where else place

    def label(self) -> str:
        """The document in a list: ``line 3 (id 7)``, ``task 3 (id 42)``."""
        if not self.line:
            return self.where
        return f"line {self.line}" + (f" ({self.where})" if self.where else "")


def identity_of(record: dict) -> Dict[str, object]:
    """The ``IDENTITY_KEYS`` a JSONL record or a Label Studio task has."""
    return {key: record[key] for key in IDENTITY_KEYS if key in record}


def json_kind(value) -> str:
    """What a JSON value is, for a message: "an object", "a string", "a number"..."""
    kinds = ((bool, "a boolean"), (dict, "an object"), (list, "a list"), (str, "a string"), ((int, float), "a number"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def check_characters(value, path: PathLike, line: Optional[int] = None, where: str = "") -> None:
    """Every string of a JSON value (keys too) is Unicode text (``tokenizer.surrogate_problem``):
    the text to tag, and every field a writer carries, can be written back as UTF-8."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            problem = surrogate_problem(item)
            if problem:
                raise DataFormatError(f"{where}a string {problem}", path, line)


def carried_fields(document: SpanDocument) -> Dict[str, object]:
    """The input fields a writer keeps: not Prodigy's ``answer`` and ``_``-hashes, which would make
    it skip new proposals as already seen."""
    return {k: v for k, v in document.fields.items() if k != "answer" and not k.startswith("_")}


@dataclasses.dataclass
class TaggedDocument:
    """A document with the spans to write and, for predictions, the document's confidence."""

    document: SpanDocument
    spans: List[CharSpan]
    score: Optional[float] = None


def warn(message: str) -> None:
    """A problem in the input that does not stop reading: said on stderr."""
    print(f"warning: {message}", file=sys.stderr)


class Warnings:
    """Warnings of one kind while reading one file: the first few in full, the rest counted."""

    def __init__(self, summary: str):
        self.summary = summary
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if self.count <= DETAILED_WARNINGS:
            warn(message)

    def close(self) -> None:
        if self.count > DETAILED_WARNINGS:
            warn(f"... and {self.count - DETAILED_WARNINGS} more: {self.summary}")


# Checking the spans of one document -------------------------------------------------------------
def whole_number(value) -> Optional[int]:
    """``value`` as an int when it is a whole number (JSON may write 5.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def make_span(start, end, label, document: SpanDocument, path: PathLike) -> CharSpan:
    """A ``CharSpan`` from a file's values, or a ``DataFormatError`` naming the document."""
    first, last = whole_number(start), whole_number(end)
    if first is None or last is None:
        raise document_error(document, path, f"span offsets must be whole numbers, not {start!r} and {end!r}")
    if not isinstance(label, str) or not label.strip():
        raise document_error(document, path, f"span {first}-{last} has no label (found {label!r})")
    if tagging.tag_problem(label, "IO"):
        raise document_error(document, path, f"span {first}-{last}: entity type {label!r} cannot be used as a label")
    if not 0 <= first < last <= len(document.text):
        raise document_error(document, path, f"span {first}-{last} ({label}) falls outside the text "
                                             f"({len(document.text)} characters) or is empty")
    return CharSpan(label, first, last)


def document_error(document: SpanDocument, path: PathLike, message: str) -> DataFormatError:
    return DataFormatError(f"{document.where}: {message}" if document.where else message, path, document.line)


def check_span_text(span: CharSpan, selected, document: SpanDocument, path: PathLike, noun: str = "span",
                    whose: str = "document's") -> None:
    """A span that says its text (``selected``, when a string) says the document's text at its offsets."""
    if isinstance(selected, str) and document.text[span.start:span.end] != selected:
        raise document_error(document, path, f"{noun} {span.start}-{span.end} ({span.type}) says its text is "
                                             f"{selected[:40]!r}, but the {whose} text there is "
                                             f"{shown(document.text, span.start, span.end)}")


def shown(text: str, start: int, end: int) -> str:
    piece = text[start:end]
    return repr(piece if len(piece) <= 40 else piece[:37] + "...")


def trimmed(span: CharSpan, document: SpanDocument, path: PathLike, notes: Warnings) -> CharSpan:
    """``span`` without whitespace or invisible characters at either end (noted), or an error when it
    is only those."""
    text = document.text
    start, end = span.start, span.end
    while start < end and is_separator(text[start]):
        start += 1
    while end > start and is_separator(text[end - 1]):
        end -= 1
    if start == end:
        raise document_error(document, path, f"span {span.start}-{span.end} ({span.type}) covers only whitespace")
    if (start, end) != (span.start, span.end):
        notes.add(f"{document.place(path)}: span {span.start}-{span.end} ({span.type}) "
                  f"{shown(text, span.start, span.end)} has whitespace at its ends: read as {start}-{end}")
    return span._replace(start=start, end=end)


def ordered_spans(spans: Iterable[CharSpan], document: SpanDocument, path: PathLike) -> List[CharSpan]:
    """The spans in text order; an exact duplicate counts once, any other overlap is an error (a
    token carries one label)."""
    kept: List[CharSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end, s.type)):
        if kept and span[:3] == kept[-1][:3]:
            continue
        if kept and span.start < kept[-1].end:
            other = kept[-1]
            raise document_error(document, path, f"span {span.start}-{span.end} ({span.type}) "
                                                 f"{shown(document.text, span.start, span.end)} overlaps span "
                                                 f"{other.start}-{other.end} ({other.type}) "
                                                 f"{shown(document.text, other.start, other.end)}: entities are flat, a "
                                                 f"token carries one label")
        kept.append(span)
    return kept


# Spans onto tokens ------------------------------------------------------------------------------
S = TypeVar("S")


def place_on_tokens(sentences: Sequence[Sequence[Token]], spans: Sequence[S]) -> List[List[Tuple[S, int, int]]]:
    """For each sentence, ``(span, first token, last token + 1)`` for the spans that overlap its
    tokens: a token belongs to the first span (in text order) that overlaps it. ``spans`` have
    ``start`` and ``end`` and are in text order without overlaps. One sweep over tokens and spans."""
    placed: List[List[Tuple[S, int, int]]] = []
    index = 0
    for tokens in sentences:
        pieces: List[Tuple[S, int, int]] = []
        for position, (_, start, end) in enumerate(tokens):
            while index < len(spans) and spans[index].end <= start:
                index += 1
            if index == len(spans) or spans[index].start >= end:
                continue
            span = spans[index]
            if pieces and pieces[-1][0] is span and pieces[-1][2] == position:
                pieces[-1] = (span, pieces[-1][1], position + 1)
            else:
                pieces.append((span, position, position + 1))
        placed.append(pieces)
    return placed


def joined_across_spans(sentences: List[List[Token]], spans: Sequence[CharSpan]) -> List[List[Token]]:
    """The sentences, two neighbours joined where an annotated span runs from one into the next: the
    splitter guesses, the annotation is the truth ("Mr. Smith" is one entity, not two sentences)."""
    joined: List[List[Token]] = []
    index = 0
    for tokens in sentences:
        if joined:
            previous_end = joined[-1][-1][2]
            while index < len(spans) and spans[index].end <= previous_end:
                index += 1
            if index < len(spans) and spans[index].start < previous_end:
                joined[-1] = joined[-1] + tokens
                continue
        joined.append(list(tokens))
    return joined


def check_on_boundaries(document: SpanDocument, path: PathLike, tokens: Sequence[Token], span: CharSpan,
                        first: int, end: int) -> None:
    """A span covers whole tokens: it starts where its first token starts and ends where its last ends."""
    head, tail = tokens[first], tokens[end - 1]
    if head[1] == span.start and tail[2] == span.end:
        return
    if head[1] != span.start:
        where, token = "starts inside", head
    else:
        where, token = "ends inside", tail
    raise document_error(document, path, f"span {span.start}-{span.end} ({span.type}) "
                                         f"{shown(document.text, span.start, span.end)} {where} the token "
                                         f"{token[0]!r} ({token[1]}-{token[2]}): spans must start and end on token "
                                         f"boundaries; correct the span in the annotation tool")


def token_sentence(tokens: Sequence[Token], document: SpanDocument, labels: Optional[List[str]] = None) -> Sentence:
    return Sentence(tokens=[t[0] for t in tokens], labels=labels, offsets=[(t[1], t[2]) for t in tokens],
                    document=document.name, line=document.line or 0)


def labelled_sentences(document: SpanDocument, path: PathLike, notes: Warnings) -> List[Sentence]:
    """The document's sentences labelled from its spans (IOB2), strictly: trimmed, ordered, each on
    token boundaries and inside one sentence."""
    spans = ordered_spans([trimmed(s, document, path, notes) for s in document.spans], document, path)
    sentences = joined_across_spans(split_sentences(document.text), spans)
    placed = place_on_tokens(sentences, spans)
    covered = set()
    result = []
    for tokens, pieces in zip(sentences, placed):
        for span, first, end in pieces:
            check_on_boundaries(document, path, tokens, span, first, end)
            covered.add(span)
        labels = tagging.tags_from_spans([tagging.Span(s.type, a, b) for s, a, b in pieces], len(tokens), "IOB2")
        result.append(token_sentence(tokens, document, labels))
    for span in spans:
        if span not in covered:
            raise document_error(document, path, f"span {span.start}-{span.end} ({span.type}) covers no token")
    return result


def unlabelled_sentences(document: SpanDocument) -> List[Sentence]:
    return [token_sentence(tokens, document) for tokens in split_sentences(document.text)]


def documents_corpus(documents: Sequence[SpanDocument], path: PathLike, labelled: bool) -> Corpus:
    """The sentences of ``documents``: with ``labelled``, those of the annotated documents, labelled
    (IOB2); the others are left out with a warning, since training on a document nobody annotated
    would teach that its entities are O. Without, every document's sentences, unlabelled."""
    if not labelled:
        return Corpus([s for d in documents for s in unlabelled_sentences(d)], None, str(path))
    notes = Warnings("spans read without the whitespace at their ends")
    sentences = [s for d in documents if d.annotated for s in labelled_sentences(d, path, notes)]
    notes.close()
    left_out = [d.label() for d in documents if not d.annotated]
    if left_out:
        warn(f"{path}: {len(left_out)} of {len(documents)} documents are not annotated and are left out "
             f"({', '.join(left_out[:3])}{', ...' if len(left_out) > 3 else ''})")
    return Corpus(sentences, "IOB2", str(path))


def check_has_documents(documents: Sequence[SpanDocument], path: PathLike) -> None:
    if not any(d.text.strip() for d in documents):
        raise DataFormatError("has no documents with text", path)


# Tokens back to spans ---------------------------------------------------------------------------
def char_spans(sentence: Sentence, entities: Iterable) -> List[CharSpan]:
    """Token spans (``type``, ``start``, ``end`` and optionally ``confidence``) of a sentence with
    offsets as character spans of its document."""
    return [CharSpan(e.type, sentence.offsets[e.start][0], sentence.offsets[e.end - 1][1],
                     getattr(e, "confidence", None)) for e in entities]


def joined_offsets(tokens: Sequence[str], start: int = 0) -> List[Tuple[int, int]]:
    """Each token's character offsets in the tokens joined by single spaces, from ``start`` (the text
    of a sentence that came as tokens: CoNLL, ``POST /tag/tokens``)."""
    offsets, position = [], start
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return offsets


def documents_of_sentences(sentences: Sequence[Sentence], prefix: str = "sentence") -> Tuple[List[SpanDocument],
                                                                                             List[Sentence]]:
    """Sentences without a text of their own (CoNLL) as documents, one a sentence: the text is the
    tokens joined by spaces, and each sentence gets those offsets."""
    documents, placed = [], []
    for number, sentence in enumerate(sentences, start=1):
        offsets = joined_offsets(sentence.tokens)
        document = SpanDocument(f"{prefix} {number}", " ".join(sentence.tokens), where=f"{prefix} {number}",
                                line=sentence.line or None)
        documents.append(document)
        placed.append(dataclasses.replace(sentence, offsets=offsets, document=document.name))
    return documents, placed


def tagged_documents(documents: Sequence[SpanDocument], sentences: Sequence[Sentence], entity_lists: Sequence,
                     token_confidences: Optional[Sequence[Optional[Sequence[float]]]] = None) -> List[TaggedDocument]:
    """Each document with the character spans of its sentences' entities (``entity_lists``, one list
    a sentence, as ``Prediction.entities()`` gives them). The document's score, when token
    confidences are given, is its least confident token's: the one place the model most doubts,
    whether it marked an entity there or not, so sorting by it puts the documents to check first."""
    spans: Dict[str, List[CharSpan]] = {d.name: [] for d in documents}
    lowest: Dict[str, float] = {}
    for index, (sentence, entities) in enumerate(zip(sentences, entity_lists)):
        spans[sentence.document].extend(char_spans(sentence, entities))
        confidences = token_confidences[index] if token_confidences is not None else None
        if confidences:
            lowest[sentence.document] = min(lowest.get(sentence.document, 1.0), min(confidences))
    scored = token_confidences is not None
    return [TaggedDocument(d, spans[d.name], lowest.get(d.name, 1.0) if scored else None) for d in documents]

"""Span JSONL: one document a line, its text and its entities in character offsets, the shape that
doccano, Prodigy, spaCy and flair export.

A file's layout is recognised from the first document that has entities, and every other document
must use the same key:

- ``"spans": [{"start", "end", "label"}, ...]``: Prodigy and spaCy (Prodigy's ``token_start`` and
  ``token_end`` are accepted and not needed);
- ``"ents": [{"start", "end", "label"}, ...]``: spaCy's ``Doc.to_json()``;
- ``"label"`` (or ``"labels"``): ``[[start, end, "TYPE"], ...]``: doccano's sequence-labelling
  export and flair's ``JsonlDataset``;
- ``"entities"``: ``[[start, end, "TYPE"], ...]`` (spaCy's training tuples) or
  ``[{"start_offset", "end_offset", "label"}, ...]`` (doccano with relations).

The text is ``"text"``, or ``"data"`` when that is a string (flair, older doccano). A document with
none of these keys is not annotated (text to tag); ``[]`` is a document without entities. Prodigy
answers ``"reject"`` and ``"ignore"`` are not training data and are left out of labelled corpora.
What is ambiguous is an error naming the line, never settled by dropping something: two keys with
entities (or two texts), a span key that holds no list, a span object with two start (end, label)
keys that disagree, a span whose ``"text"`` is not the document's text at its offsets.

Written, every document is ``{"id"?, "meta"?, ..., "text", "spans": [{"start", "end", "label",
"score"?}], "score"?}``: the input's ``id`` and ``meta`` (a Label Studio task's too) and its other
fields (not Prodigy's ``answer`` and ``_``-hashes), in the input's order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, TextIO, Tuple, Union

from .errors import DataFormatError
from .spans import (CharSpan, SpanDocument, TaggedDocument, carried_fields, check_characters, check_span_text,
                    document_error, identity_of, json_kind, make_span, warn)

PathLike = Union[str, Path]
SPAN_KEYS = ("spans", "ents", "label", "labels", "entities")
SPAN_GROUPS_KEY = "spans"  # spaCy's Doc.to_json() writes span groups there: {"name": [...], ...}
TEXT_KEYS = ("text", "data")
REJECTED_ANSWERS = ("reject", "ignore")
START_KEYS = ("start", "start_offset", "start_char")
END_KEYS = ("end", "end_offset", "end_char")
LABEL_KEYS = ("label", "type", "entity")


def span_key(record: dict, number: int, path: PathLike) -> Optional[str]:
    """The key that holds ``record``'s entities (None: not annotated). A span key that is there (and
    not null) holds a list, except spaCy's ``"spans"`` of ``Doc.to_json``, a mapping of span groups
    (lists), which are not entities; two keys with entities are an error, not one of them dropped."""
    found = [key for key in SPAN_KEYS if holds_entities(record, key, number, path)]
    if len(found) > 1:
        raise DataFormatError(f"entities under both {found[0]!r} and {found[1]!r}: a document has them under "
                              f"one key (which is meant?)", path, number)
    return found[0] if found else None


def holds_entities(record: dict, key: str, number: int, path: PathLike) -> bool:
    value = record.get(key)
    if value is None:
        return False
    if isinstance(value, list):
        return True
    if key == SPAN_GROUPS_KEY and isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return False
    raise DataFormatError(f"{key!r} holds {json_kind(value)}, not a list of entities ([[start, end, \"TYPE\"], ...] "
                          f"or [{{\"start\", \"end\", \"label\"}}, ...])", path, number)


def text_key(record: dict) -> Optional[str]:
    """The key of ``record``'s text: the first of ``TEXT_KEYS`` that holds a string."""
    for key in TEXT_KEYS:
        if isinstance(record.get(key), str):
            return key
    return None


def checked_text_key(record: dict, number: int, path: PathLike) -> str:
    """``text_key``, or an error naming what the record holds instead; two texts are an error too."""
    texts = [key for key in TEXT_KEYS if isinstance(record.get(key), str)]
    if len(texts) > 1:
        raise DataFormatError(f"both {texts[0]!r} and {texts[1]!r} hold a string: which is the text?", path, number)
    if texts:
        return texts[0]
    found = [f"{key!r} holds {json_kind(record[key])}" for key in TEXT_KEYS if key in record]
    raise DataFormatError("a document needs its text as \"text\" (a string)" + (f"; {found[0]}" if found else ""),
                          path, number)


def parse_record(line: str, number: int, path: PathLike) -> Optional[dict]:
    """The JSON object on a line (None for a blank line)."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"not a JSON object ({error.msg} at column {error.colno}): span JSONL has one "
                              f"document a line", path, number) from None
    if not isinstance(record, dict):
        raise DataFormatError(f"expected a JSON object {{\"text\": ..., \"spans\": [...]}}, found a "
                              f"{type(record).__name__}", path, number)
    check_characters(record, path, number)
    return record


def read_span(item, document: SpanDocument, path: PathLike) -> CharSpan:
    """One entity: ``[start, end, "TYPE"]`` or an object with start, end and label keys (and, when it
    says its text, that text at its offsets)."""
    if isinstance(item, (list, tuple)) and len(item) == 3:
        return make_span(item[0], item[1], item[2], document, path)
    if isinstance(item, dict):
        span = make_span(*(span_value(item, keys, document, path) for keys in (START_KEYS, END_KEYS, LABEL_KEYS)),
                         document, path)
        check_span_text(span, item.get("text"), document, path)
        return span
    raise document_error(document, path, f"an entity is [start, end, \"TYPE\"] or {{\"start\", \"end\", \"label\"}}, "
                                         f"not {json.dumps(item)[:60]}")


def span_value(item: dict, keys: Sequence[str], document: SpanDocument, path: PathLike):
    """The value of the first of ``keys`` in a span object; two of them that disagree are an error."""
    present = [key for key in keys if key in item]
    if not present:
        return None
    first = present[0]
    for other in present[1:]:
        if item[other] != item[first]:
            raise document_error(document, path, f"a span has {first!r} {json.dumps(item[first])} and {other!r} "
                                                 f"{json.dumps(item[other])}: which is meant?")
    return item[first]


def document_of_record(record: dict, number: int, path: PathLike, found: Optional[str],
                       layout: Optional[str]) -> SpanDocument:
    """A ``SpanDocument`` of one line's record, its entities under ``found`` (``span_key``);
    ``layout`` is the file's span key (None: not known yet)."""
    key = checked_text_key(record, number, path)
    if layout is not None and found is not None and found != layout:
        raise DataFormatError(f"entities under {found!r}, but the file's first annotated document has them under "
                              f"{layout!r}: one layout a file", path, number)
    identifier = record.get("id")
    where = f"id {identifier}" if isinstance(identifier, (str, int)) else ""
    identity = identity_of(record)
    fields = {k: v for k, v in record.items() if k != key and k not in SPAN_KEYS and k not in identity}
    document = SpanDocument(str(number), record[key], None, where, number, fields, identity=identity)
    if found is not None:
        document.spans = [read_span(item, document, path) for item in record[found]]
    return document


def read_documents(lines: Iterable[str], path: PathLike) -> Tuple[List[SpanDocument], Optional[str]]:
    """(the documents of span JSONL lines, the file's layout: its span key, None when no document has
    entities). Blank lines are skipped."""
    documents: List[SpanDocument] = []
    layout: Optional[str] = None
    for number, line in enumerate(lines, start=1):
        record = parse_record(line, number, path)
        if record is None:
            continue
        found = span_key(record, number, path)
        documents.append(document_of_record(record, number, path, found, layout))
        layout = layout or found
    if not documents:
        raise DataFormatError("has no documents (span JSONL has one JSON object a line)", path)
    return documents, layout


def training_documents(documents: Sequence[SpanDocument], path: PathLike) -> List[SpanDocument]:
    """The documents that are training data: Prodigy's rejected and ignored answers are left out (said once)."""
    rejected = [d for d in documents if d.fields.get("answer") in REJECTED_ANSWERS]
    if rejected:
        warn(f"{path}: {len(rejected)} documents answered 'reject' or 'ignore' (Prodigy) are left out")
    return [d for d in documents if d not in rejected]


def span_record(span: CharSpan) -> dict:
    record = {"start": span.start, "end": span.end, "label": span.type}
    if span.score is not None:
        record["score"] = round(span.score, 6)
    return record


def document_record(tagged: TaggedDocument) -> dict:
    """A document as written: its ``id`` and ``meta``, the input's other fields
    (``spans.carried_fields``), ``text``, ``spans`` and the document's ``score``."""
    record = {**tagged.document.identity, **carried_fields(tagged.document)}
    record["text"] = tagged.document.text
    record["spans"] = [span_record(span) for span in tagged.spans]
    if tagged.score is not None:
        record["score"] = round(tagged.score, 6)
    return record


def write_documents(documents: Iterable[TaggedDocument], stream: TextIO) -> int:
    """Write one JSON object a line; returns the number of documents."""
    count = 0
    for count, tagged in enumerate(documents, start=1):
        stream.write(json.dumps(document_record(tagged), ensure_ascii=False) + "\n")
    return count

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

Written, every document is ``{"text", "spans": [{"start", "end", "label", "score"?}], "score"?}``
plus the input's other fields (``id``, ``meta``...; not Prodigy's ``answer`` and ``_``-hashes), in
the input's order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, TextIO, Tuple, Union

from .errors import DataFormatError
from .spans import (CharSpan, SpanDocument, TaggedDocument, carried_fields, check_characters, document_error,
                    make_span, warn)

PathLike = Union[str, Path]
SPAN_KEYS = ("spans", "ents", "label", "labels", "entities")
TEXT_KEYS = ("text", "data")
REJECTED_ANSWERS = ("reject", "ignore")
START_KEYS = ("start", "start_offset", "start_char")
END_KEYS = ("end", "end_offset", "end_char")
LABEL_KEYS = ("label", "type", "entity")


def span_key(record: dict) -> Optional[str]:
    """The key that holds ``record``'s entities: the first of ``SPAN_KEYS`` whose value is a list
    (spaCy's ``"spans"`` of ``Doc.to_json`` is a mapping of span groups, not entities)."""
    for key in SPAN_KEYS:
        if isinstance(record.get(key), list):
            return key
    return None


def text_key(record: dict) -> Optional[str]:
    for key in TEXT_KEYS:
        if isinstance(record.get(key), str):
            return key
    return None


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
    """One entity: ``[start, end, "TYPE"]`` or an object with start, end and label keys."""
    if isinstance(item, (list, tuple)) and len(item) == 3:
        return make_span(item[0], item[1], item[2], document, path)
    if isinstance(item, dict):
        found = [next((item[k] for k in keys if k in item), None) for keys in (START_KEYS, END_KEYS, LABEL_KEYS)]
        return make_span(*found, document, path)
    raise document_error(document, path, f"an entity is [start, end, \"TYPE\"] or {{\"start\", \"end\", \"label\"}}, "
                                         f"not {json.dumps(item)[:60]}")


def document_of_record(record: dict, number: int, path: PathLike, layout: Optional[str]) -> SpanDocument:
    """A ``SpanDocument`` of one line's record; ``layout`` is the file's span key (None: not known yet)."""
    key = text_key(record)
    if key is None:
        raise DataFormatError("a document needs its text as \"text\" (a string)", path, number)
    found = span_key(record)
    if layout is not None and found is not None and found != layout:
        raise DataFormatError(f"entities under {found!r}, but the file's first annotated document has them under "
                              f"{layout!r}: one layout a file", path, number)
    identifier = record.get("id")
    where = f"id {identifier}" if isinstance(identifier, (str, int)) else ""
    fields = {k: v for k, v in record.items() if k != key and k not in SPAN_KEYS}
    document = SpanDocument(str(number), record[key], None, where, number, fields)
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
        documents.append(document_of_record(record, number, path, layout))
        layout = layout or span_key(record)
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
    """A document as written: the input's other fields (``spans.carried_fields``), ``text``,
    ``spans`` and the document's ``score``."""
    record = carried_fields(tagged.document)
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

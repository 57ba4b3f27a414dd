"""Label Studio: its JSON export of a labelling project read as documents, and the model's
proposals written as pre-annotations (tasks with ``predictions``) to import and correct there.

Read: a JSON list of tasks ``{"id", "data": {"text": ...}, "annotations": [{"result": [...],
"was_cancelled", ...}]}`` (JSON-MIN, the flat export, too; one task object instead of a list is one
task, as Label Studio's import takes it). Of a task's annotations the cancelled
ones are skipped; of the rest the one marked ``ground_truth`` wins, else the most recently updated
(``updated_at``, else ``created_at``, else the last in the list), and a task with several is
counted in a warning. A task without one is not annotated (its text can be tagged, not trained
on). Only ``labels`` regions (``<Labels>`` on ``<Text>``) are entities; choices, text areas and
relations are ignored, and regions on HTML or paragraphs are an error. (JSON-MIN cannot tell an
annotation without entities from none: its records without regions are read as not annotated.) The text is the ``data``
field the regions' ``to_name`` names, else ``text``, else the task's only string field. A field of
the wrong shape is an error naming the task, never read as nothing: ``data`` that is not an object
beside annotations, an annotation or a region that is not an object, regions of one annotation on
two texts, JSON-MIN regions under two controls.

Offsets are Python's (code points). Browsers count a character beyond U+FFFF (an emoji) twice,
and some Label Studio versions store those offsets: a region whose ``text`` is not the task's text
at its offsets but is at the offsets read in UTF-16 units is read that way, with a warning; any
other disagreement is an error naming the task and the offsets.

Written: ``{"id", "meta", "data": {...}, "predictions": [...]}``, the task's ``id`` and ``meta`` and
its ``data`` fields kept (a JSONL record's too; an id that is not a whole number, or a meta that is
not an object, among the data fields), region ids made of the task's id, so the proposals stay with
the tasks they were made for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List, Optional, TextIO, Tuple, Union

from .errors import DataFormatError
from .spans import (CharSpan, SpanDocument, TaggedDocument, Warnings, carried_fields, check_characters,
                    check_span_text, document_error, identity_of, json_kind, make_span, whole_number)

PathLike = Union[str, Path]
DEFAULT_FROM_NAME, DEFAULT_TO_NAME, DEFAULT_TEXT_KEY = "label", "text", "text"
MIN_EXPORT_KEYS = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time")
FULL_TASK_KEYS = ("annotations", "completions", "predictions")  # a task that has one keeps its fields in "data"


def is_task(value) -> bool:
    """Whether a JSON value is one Label Studio task (``{"data": {...}, ...}``), as Label Studio's
    import takes one instead of a list."""
    return isinstance(value, dict) and isinstance(value.get("data"), dict)


def read_documents(content: str, path: PathLike) -> List[SpanDocument]:
    """The tasks of a Label Studio JSON export (or JSON-MIN export) as documents; one task object
    instead of a list is one task, as Label Studio's import reads it."""
    try:
        tasks = json.loads(content)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"not valid JSON ({error.msg} at column {error.colno})", path, error.lineno) from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise DataFormatError(f"a Label Studio export is a JSON list of tasks, not a {type(tasks).__name__}", path)
    if not tasks:
        raise DataFormatError("has no tasks", path)
    several = Warnings("tasks with several annotations: the ground truth, else the latest, is read")
    shifted = Warnings("regions with offsets in UTF-16 units, read as characters")
    documents = [task_document(task, number, path, several, shifted) for number, task in enumerate(tasks, start=1)]
    several.close()
    shifted.close()
    return documents


def task_document(task, number: int, path: PathLike, several: Warnings, shifted: Warnings) -> SpanDocument:
    if not isinstance(task, dict):
        raise DataFormatError(f"task {number}: expected an object {{\"data\": ...}}, found a "
                              f"{type(task).__name__}", path)
    identifier = task.get("id")
    where = f"task {number}" + (f" (id {identifier})" if isinstance(identifier, (str, int)) else "")
    check_characters(task, path, where=f"{where}: ")
    if isinstance(task.get("data"), dict):
        regions = chosen_regions(task, where, path, several)
        data = task["data"]
        identity = identity_of(task)
    elif any(key in task for key in FULL_TASK_KEYS):
        raise DataFormatError(f"{where}: \"data\" holds {json_kind(task.get('data'))}, not an object of the task's "
                              f"fields {{\"text\": ...}}", path)
    else:  # JSON-MIN: the data fields and the regions, under the control's name, in one object
        regions, data = min_export_regions(task, where, path)
        identity = {"id": identifier} if "id" in task else {}
    key = text_field(data, regions, where, path)
    names = {"text_key": key, "from_name": DEFAULT_FROM_NAME, "to_name": DEFAULT_TO_NAME}
    if regions:
        names.update(from_name=regions[0].get("from_name", DEFAULT_FROM_NAME),
                     to_name=regions[0].get("to_name", DEFAULT_TO_NAME))
    fields = {k: v for k, v in data.items() if k != key}
    document = SpanDocument(str(number), data[key], None, where, None, fields, names, identity)
    if regions is not None:
        document.spans = [region_span(region, document, path, shifted) for region in regions]
    return document


def chosen_regions(task: dict, where: str, path: PathLike, several: Warnings) -> Optional[List[dict]]:
    """The ``labels`` regions of the annotation read (see the module's docstring); None when no
    annotation counts."""
    annotations = task.get("annotations", task.get("completions")) or []
    if not isinstance(annotations, list):
        raise DataFormatError(f"{where}: \"annotations\" must be a list", path)
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise DataFormatError(f"{where}: an annotation holds {json_kind(annotation)}, not an object "
                                  f"{{\"result\": [...]}}", path)
    live = [(position, a) for position, a in enumerate(annotations) if not a.get("was_cancelled")]
    if not live:
        return None
    if len(live) > 1:
        several.add(f"{path}: {where} has {len(live)} annotations: the ground truth, else the latest, is read")
    _, annotation = max(live, key=lambda pair: (bool(pair[1].get("ground_truth")),
                                                str(pair[1].get("updated_at") or pair[1].get("created_at") or ""),
                                                pair[0]))
    result = annotation.get("result", [])
    if not isinstance(result, list):
        raise DataFormatError(f"{where}: an annotation's \"result\" must be a list", path)
    regions = [region for region in result if is_text_span(region, where, path)]
    check_one_text(regions, where, path)
    return regions


def is_text_span(region, where: str, path: PathLike) -> bool:
    """Whether a result is a ``labels`` region (one without a ``type`` is when its value has
    ``labels``); other labelled regions (HTML, paragraphs, images) are not spans of the text and are
    an error rather than silently nothing, and so is a result that is not an object."""
    if not isinstance(region, dict):
        raise DataFormatError(f"{where}: a result holds {json_kind(region)}, not a region object", path)
    value = region.get("value")
    untyped_labels = "type" not in region and isinstance(value, dict) and "labels" in value
    kind = "labels" if untyped_labels else str(region.get("type", "")).lower()
    if kind == "labels":
        return True
    if kind.endswith("labels"):
        raise DataFormatError(f"{where}: a {region['type']!r} region is not a span of plain text: only <Labels> "
                              f"on <Text> is read", path)
    return False


def check_one_text(regions: List[dict], where: str, path: PathLike) -> None:
    """The regions of one annotation mark one text (one ``to_name``): the task's text is read as one."""
    names = list(dict.fromkeys(region.get("to_name", DEFAULT_TO_NAME) for region in regions))
    if len(names) > 1:
        raise DataFormatError(f"{where}: regions on two texts ({names[0]!r} and {names[1]!r}): one <Text> a "
                              f"task is read", path)


def min_export_regions(record: dict, where: str, path: PathLike):
    """(the regions, the data fields) of a JSON-MIN record: regions are the list of objects with
    ``labels``; a record without one is not annotated, and one with two such lists (two
    ``<Labels>`` controls) is an error."""
    regions = None
    data = {}
    for key, value in record.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) and "labels" in v for v in value):
            if regions is not None:
                raise DataFormatError(f"{where}: regions under both {regions[0]['from_name']!r} and {key!r}: one "
                                      f"<Labels> control a task is read", path)
            regions = [{"value": v, "from_name": key, "type": "labels"} for v in value]
        elif key not in MIN_EXPORT_KEYS:
            data[key] = value
    return regions, data


def text_field(data: dict, regions: Optional[List[dict]], where: str, path: PathLike) -> str:
    """The data field that holds the text: the regions' ``to_name``, else ``text``, else the only
    string field."""
    named = regions[0].get("to_name") if regions else None
    for key in (named, DEFAULT_TEXT_KEY):
        if key is not None and isinstance(data.get(key), str):
            return key
    strings = [k for k, v in data.items() if isinstance(v, str)]
    if len(strings) == 1:
        return strings[0]
    raise DataFormatError(f"{where}: which data field is the text? expected \"text\" or a single string field, "
                          f"found {', '.join(map(repr, strings)) or 'none'}", path)


def region_span(region: dict, document: SpanDocument, path: PathLike, shifted: Warnings) -> CharSpan:
    value = region.get("value")
    if not isinstance(value, dict):
        raise document_error(document, path, "a labels region needs a \"value\" object")
    labels = value.get("labels")
    if not isinstance(labels, list) or len(labels) != 1:
        raise document_error(document, path, f"region {value.get('start')}-{value.get('end')} has labels {labels!r}: "
                                             f"one label a region (entities are flat)")
    start, end, selected = value.get("start"), value.get("end"), value.get("text")
    if isinstance(selected, str) and whole_number(start) is not None and whole_number(end) is not None:
        start, end = in_characters(document, path, whole_number(start), whole_number(end), labels[0], selected, shifted)
    span = make_span(start, end, labels[0], document, path)
    check_span_text(span, selected, document, path, noun="region", whose="task's")
    return span


def in_characters(document: SpanDocument, path: PathLike, start: int, end: int, kind: str, selected: str,
                  shifted: Warnings):
    """A region's offsets in characters: as written when its text is there, else read as UTF-16
    units when its text is there (warned about), else as written (for ``make_span`` to judge)."""
    if document.text[start:end] == selected:
        return start, end
    first, last = code_point_offset(document.text, start), code_point_offset(document.text, end)
    if first is not None and last is not None and document.text[first:last] == selected:
        shifted.add(f"{document.place(path)}: region {start}-{end} ({kind}) {selected!r} counts UTF-16 units (a "
                    f"browser's): read as characters {first}-{last}")
        return first, last
    return start, end


def code_point_offset(text: str, units: int) -> Optional[int]:
    """The character offset in ``text`` of UTF-16 offset ``units`` (None inside a surrogate pair)."""
    counted = 0
    for index, character in enumerate(text):
        if counted >= units:
            return index if counted == units else None
        counted += 2 if ord(character) > 0xFFFF else 1
    return len(text) if counted == units else None


# Writing pre-annotations ------------------------------------------------------------------------
def task_identity(document: SpanDocument) -> Tuple[dict, dict]:
    """(the task's own ``id`` and ``meta``, the identity fields kept in its ``data`` instead): a Label
    Studio task id is a whole number and its meta an object, so a JSONL record's ``"id": "a1"`` is
    kept as a data field."""
    own, kept = {}, {}
    for key, value in document.identity.items():
        fits = isinstance(value, dict) if key == "meta" else isinstance(value, int) and not isinstance(value, bool)
        (own if fits else kept)[key] = value
    return own, kept


def task_record(tagged: TaggedDocument, number: int, model_version: str) -> dict:
    """A task with the model's proposals as its one prediction: the input's task ``id`` and ``meta``
    (``task_identity``) and data fields, each region with the entity's confidence as ``score`` and an
    id made of the task's id (else its position) and the region's, the prediction with the
    document's (``spans.tagged_documents``); a span without a confidence (an annotated one, kept by
    ``annotate``) has no score."""
    document = tagged.document
    names = {"text_key": DEFAULT_TEXT_KEY, "from_name": DEFAULT_FROM_NAME, "to_name": DEFAULT_TO_NAME,
             **document.names}
    own, kept = task_identity(document)
    data = {**kept, **carried_fields(document)}
    data[names["text_key"]] = document.text
    identifier = document.identity.get("id")
    task_key = identifier if isinstance(identifier, (str, int)) and not isinstance(identifier, bool) else number
    result = []
    for index, span in enumerate(tagged.spans, start=1):
        region = {"id": f"{task_key}_{index}", "from_name": names["from_name"], "to_name": names["to_name"],
                  "type": "labels", "value": {"start": span.start, "end": span.end,
                                              "text": document.text[span.start:span.end], "labels": [span.type]}}
        if span.score is not None:
            region["score"] = round(span.score, 6)
        result.append(region)
    prediction = {"model_version": model_version, "result": result}
    if tagged.score is not None:
        prediction["score"] = round(tagged.score, 6)
    return {**own, "data": data, "predictions": [prediction]}


def write_tasks(documents: Iterable[TaggedDocument], stream: TextIO, model_version: str) -> int:
    """Write a JSON list of tasks, one a line; returns the number of tasks."""
    count = 0
    stream.write("[")
    for count, tagged in enumerate(documents, start=1):
        stream.write(("," if count > 1 else "") + "\n" + json.dumps(task_record(tagged, count, model_version),
                                                                     ensure_ascii=False))
    stream.write("\n]\n")
    return count

"""What each JSON file of a model folder must hold, checked whenever one is read (``model_io``,
``api.info``): one message per problem, naming the file and the field. Keys a schema does not name
are allowed (later versions add some), so a folder written by a newer release still loads when it
has what this one needs. Files are added the same way, within a format version: ``checksums.json``
(``checksums``) is in every folder written since it exists and absent from older format-2 folders,
which load unverified.

A schema is a small value: ``INT``/``NUMBER``/``TEXT``/``ANY`` and ``Integer(low, high)``,
``Optional(schema)`` (null allowed), ``ListOf(schema)``, ``MapOf(schema)`` (an object with any keys)
and ``Object(required={...}, optional={...})``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, List, Optional as Maybe

from .config import MAX_DIMENSION


@dataclasses.dataclass(frozen=True)
class Integer:
    low: Maybe[int] = None
    high: Maybe[int] = None


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str  # "number", "text", "bool", "any"


@dataclasses.dataclass(frozen=True)
class Optional:
    schema: Any


@dataclasses.dataclass(frozen=True)
class ListOf:
    item: Any


@dataclasses.dataclass(frozen=True)
class MapOf:
    value: Any


@dataclasses.dataclass(frozen=True)
class Object:
    required: Dict[str, Any] = dataclasses.field(default_factory=dict)
    optional: Dict[str, Any] = dataclasses.field(default_factory=dict)


INT, NUMBER, TEXT, BOOL, ANY = Integer(), Kind("number"), Kind("text"), Kind("bool"), Kind("any")
COUNT = Integer(0)

CORPUS_RECORD = Object(required={"role": TEXT, "sentences": COUNT, "entities": MapOf(COUNT)},
                       optional={"tokens": COUNT, "scheme": Optional(TEXT), "path": TEXT, "sha256": TEXT})
UPDATE_DEV = Object(required={"target_f1": NUMBER, "retention_f1": NUMBER})
UPDATE_RECORD = Object(required={"target": Object(optional={"sentences": COUNT, "path": TEXT})},
                       optional={"entity_types": ListOf(TEXT), "settings": MapOf(ANY), "best_epoch": Optional(INT),
                                 "dev": Optional(UPDATE_DEV), "epochs": COUNT, "history": ListOf(MapOf(ANY))})
REPORT = Object(required={"overall": Object(required={"f1": NUMBER})})
CALIBRATION = Object(required={"temperature": NUMBER}, optional={"sentences": COUNT})

SCHEMAS = {
    "model.json": Object(required={"format_version": INT, "labels": ListOf(TEXT), "num_words": Integer(2),
                                   "num_chars": Integer(2), "word_dim": Integer(1, MAX_DIMENSION)}),
    "history.json": ListOf(MapOf(ANY)),
    "provenance.json": Object(optional={"trained_on": ListOf(CORPUS_RECORD), "updates": ListOf(UPDATE_RECORD),
                                        "embeddings": Optional(TEXT)}),
    "metadata.json": MapOf(ANY),
    "evaluation.json": Object(optional={"dev": Optional(REPORT), "test": Optional(REPORT),
                                        "dev_scores": Optional(UPDATE_DEV), "best_epoch": Optional(INT),
                                        "calibration": Optional(CALIBRATION)}),
    "config.json": MapOf(ANY),  # its fields: config.Hyperparameters, validated there
    "checksums.json": Object(required={"algorithm": TEXT, "files": MapOf(TEXT)}),  # paths: checksums.manifest_problem
}


def problems(value: Any, schema: Any, where: str = "") -> List[str]:
    """Every way ``value`` breaks ``schema``; ``where`` names the field (``labels[3]``, ``trained_on[0].role``)."""
    if isinstance(schema, Optional):
        return [] if value is None else problems(value, schema.schema, where)
    if isinstance(schema, Integer):
        if not isinstance(value, int) or isinstance(value, bool):
            return [_wrong(where, "an integer", value)]
        if (schema.low is not None and value < schema.low) or (schema.high is not None and value > schema.high):
            bounds = f"[{schema.low if schema.low is not None else '-inf'}, " \
                     f"{schema.high if schema.high is not None else 'inf'}]"
            return [f"{where or 'the value'} must be in {bounds}, not {value}"]
        return []
    if isinstance(schema, Kind):
        valid = {"number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                 "text": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
                 "any": lambda v: True}[schema.name](value)
        return [] if valid else [_wrong(where, {"number": "a finite number", "text": "a string",
                                                "bool": "true or false"}[schema.name], value)]
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            return [_wrong(where, "a list", value)]
        return [problem for index, item in enumerate(value) for problem in problems(item, schema.item,
                                                                                    f"{where}[{index}]")]
    if not isinstance(value, dict):
        return [_wrong(where, "an object", value)]
    if isinstance(schema, MapOf):
        return [problem for key, item in value.items() for problem in problems(item, schema.value, _at(where, key))]
    found = [f"{_at(where, key)} is missing" for key in schema.required if key not in value]
    for key, item in value.items():
        field = schema.required.get(key, schema.optional.get(key))
        if field is not None:
            found.extend(problems(item, field, _at(where, key)))
    return found


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def _wrong(where: str, expected: str, value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, (dict, list)) else \
        ("an object" if isinstance(value, dict) else "a list")
    return f"{where or 'the file'} must be {expected}, not {shown[:40]}"


def check_file(name: str, value: Any) -> List[str]:
    """The problems of the parsed content of the model folder's file ``name`` (none for a file without
    a schema)."""
    schema = SCHEMAS.get(name)
    return [] if schema is None else problems(value, schema)

"""Hyperparameters: one frozen dataclass, saved as ``config.json`` inside every model folder."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from .errors import NeuronerError


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """Everything that shapes the network and its training; the paper's values are the defaults."""

    # network sizes (NeuroNER / the paper)
    char_embedding_dim: int = 25
    char_lstm_units: int = 25
    token_embedding_dim: int = 300
    token_lstm_units: int = 128
    hidden_layer: bool = True  # NeuroNER's tanh feed-forward layer between the BiLSTM and the scores
    dropout: float = 0.5
    # preprocessing
    tag_scheme: str = "BIO"  # the scheme the model is trained on: "BIO" or "BIOES"
    lowercase_lookup: bool = True  # try the lowercased form when the exact one is unknown
    replace_digits: bool = True  # every digit becomes 0
    min_word_count: int = 2  # training words seen fewer times map to UNK
    singleton_unk_probability: float = 0.0  # NeuroNER's random singleton -> UNK replacement
    max_word_length: int = 30  # longer tokens keep their first characters only
    freeze_word_embeddings: bool = False  # keep the word vectors as loaded (NeuroNER's freeze_token_embeddings)
    # training
    optimizer: str = "adam"  # "adam" or "sgd"
    learning_rate: float = 0.001
    gradient_clipping: float = 5.0  # clip each gradient element to [-g, g], as NeuroNER does
    batch_size: int = 32
    max_epochs: int = 100
    patience: int = 10  # epochs without dev F1 improvement before stopping
    # ... and at least this many optimizer steps: on tiny data an epoch is a few steps, and ten
    # epochs of noise would stop a run that has barely started
    patience_steps: int = 300
    seed: int = 1
    # decoding: Viterbi and the confidences use only the moves the tag scheme allows (I-X after O is
    # impossible); off, the CRF may output such sequences and span extraction repairs them
    constrained_decoding: bool = True

    def __post_init__(self) -> None:
        check_fields(self, field_types(type(self)), HYPERPARAMETER_RANGES, "hyperparameter")

    def replace(self, **changes: Any) -> "Hyperparameters":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Hyperparameters":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise NeuronerError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**coerce_fields(cls, values, "hyperparameter"))

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Hyperparameters":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# every hyperparameter's valid values: (low, high, low included, high included), or the choices
# (sizes are capped where a larger one cannot be meant and might not be allocated; seeds are 32-bit)
MAX_DIMENSION = 4096
HYPERPARAMETER_RANGES: Dict[str, Any] = {
    "char_embedding_dim": (1, MAX_DIMENSION, True, True), "char_lstm_units": (1, MAX_DIMENSION, True, True),
    "token_embedding_dim": (1, MAX_DIMENSION, True, True), "token_lstm_units": (1, MAX_DIMENSION, True, True),
    "dropout": (0.0, 1.0, True, False), "tag_scheme": ("BIO", "BIOES"), "min_word_count": (1, None, True, False),
    "singleton_unk_probability": (0.0, 1.0, True, True), "max_word_length": (1, 1000, True, True),
    "optimizer": ("adam", "sgd"), "learning_rate": (0.0, None, False, False),
    "gradient_clipping": (0.0, None, True, False), "batch_size": (1, None, True, False),
    "max_epochs": (1, None, True, False), "patience": (0, None, True, False),
    "patience_steps": (0, None, True, False), "seed": (0, 2 ** 32 - 1, True, True),
}


def field_types(cls) -> Dict[str, type]:
    return {f.name: type(f.default) for f in dataclasses.fields(cls)}


def coerce_fields(cls, values: Mapping[str, Any], what: str) -> Dict[str, Any]:
    """``values`` (from JSON or NAME=VALUE strings) converted to the types of ``cls``'s fields."""
    types = field_types(cls)
    converted = {}
    for name, value in values.items():
        try:
            converted[name] = _coerce(types[name], value)
        except (TypeError, ValueError, OverflowError):
            raise NeuronerError(f"{what} {name}: {value!r} is not {_type_name(types[name])}") from None
    return converted


def describe_range(spec) -> str:
    if isinstance(spec[0], str):
        return "one of " + ", ".join(spec)
    low, high, low_in, high_in = spec
    return f"{'[' if low_in else '('}{low}, {high if high is not None else 'inf'}{']' if high_in else ')'}"


def check_fields(instance, types: Mapping[str, type], ranges: Mapping[str, Any], what: str) -> None:
    """The one validation of a frozen dataclass of settings, whatever set the values (code, --set,
    --config, a model folder): each field has its declared type and lies in its range."""
    for name, kind in types.items():
        value = getattr(instance, name)
        if not _has_type(kind, value):
            raise NeuronerError(f"{what} {name}: {value!r} is not {_type_name(kind)}")
        spec = ranges.get(name)
        if spec is None:
            continue
        if isinstance(spec[0], str):
            valid = value in spec
        else:
            low, high, low_in, high_in = spec
            valid = math.isfinite(value) and (value > low or (low_in and value == low)) and \
                (high is None or value < high or (high_in and value == high))
        if not valid:
            raise NeuronerError(f"{what} {name} must be {'' if isinstance(spec[0], str) else 'in '}"
                                f"{describe_range(spec)}, not {value!r}")


def _has_type(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(kind, kind.__name__)


def _coerce(kind: type, value: Any) -> Any:
    """``value`` (from JSON or a NAME=VALUE string) as ``kind``, refusing anything that would be
    silently changed: 2.7 is not an integer, 1 is not true."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "0"):
            return False
        raise ValueError(value)
    if kind is int:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        raise ValueError(value)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if kind is str and not isinstance(value, str):
        raise ValueError(value)
    return kind(value)


def parse_overrides(pairs: Optional[list]) -> Dict[str, str]:
    """``["batch_size=16", "dropout=0.3"]`` -> ``{"batch_size": "16", "dropout": "0.3"}``."""
    result: Dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise NeuronerError(f"expected NAME=VALUE, got {pair!r}")
        result[name.strip()] = value.strip()
    return result

"""Hyperparameters: one frozen dataclass, saved as ``config.json`` inside every model folder."""

from __future__ import annotations

import dataclasses
import json
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

    def __post_init__(self) -> None:
        if self.tag_scheme not in ("BIO", "BIOES"):
            raise NeuronerError(f"tag_scheme must be BIO or BIOES, not {self.tag_scheme!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise NeuronerError(f"optimizer must be adam or sgd, not {self.optimizer!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise NeuronerError(f"dropout must be in [0, 1), not {self.dropout}")
        for name in ("batch_size", "max_epochs", "char_embedding_dim", "char_lstm_units",
                     "token_embedding_dim", "token_lstm_units", "min_word_count", "max_word_length"):
            if getattr(self, name) < 1:
                raise NeuronerError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("patience", "patience_steps"):
            if getattr(self, name) < 0:
                raise NeuronerError(f"{name} must be at least 0, not {getattr(self, name)}")

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
        converted = {}
        for name, value in values.items():
            kind = type(getattr(cls, name))  # the default's type
            try:
                converted[name] = _coerce(kind, value)
            except (TypeError, ValueError):
                raise NeuronerError(f"hyperparameter {name}: {value!r} is not a {kind.__name__}") from None
        return cls(**converted)

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Hyperparameters":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _coerce(kind: type, value: Any) -> Any:
    if kind is bool and isinstance(value, str):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
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

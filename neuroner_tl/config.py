"""Hyperparameters: one frozen dataclass, saved as ``config.json`` inside every model folder."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .errors import NeuronerError


def setting(default: Any, help: str) -> Any:
    """A settings dataclass field with the one description of it that every help text is made from
    (``describe_setting``)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """Everything that shapes the network and its training; the paper's values are the defaults."""

    # network sizes (NeuroNER / the paper)
    char_embedding_dim: int = setting(25, "Character embedding size.")
    char_lstm_units: int = setting(25, "Units per direction of the character BiLSTM.")
    token_embedding_dim: int = setting(300, "Word embedding size (pretrained vectors set it).")
    token_lstm_units: int = setting(128, "Units per direction of the token BiLSTM.")
    hidden_layer: bool = setting(True, "NeuroNER's tanh feed-forward layer between the BiLSTM and the scores.")
    dropout: float = setting(0.5, "Dropout on the token features.")
    # preprocessing
    tag_scheme: str = setting("BIO", "The scheme the model is trained on.")
    lowercase_lookup: bool = setting(True, "Try the lowercased form when the exact one is unknown.")
    replace_digits: bool = setting(True, "Every digit becomes 0.")
    min_word_count: int = setting(2, "Training words seen fewer times map to UNK.")
    singleton_unk_probability: float = setting(0.0, "NeuroNER's random singleton -> UNK replacement.")
    max_word_length: int = setting(30, "Longer tokens keep their first characters only.")
    freeze_word_embeddings: bool = setting(False, "Keep the word vectors as loaded.")
    # training
    optimizer: str = setting("adam", "The optimizer.")
    learning_rate: float = setting(0.001, "The optimizer's learning rate.")
    gradient_clipping: float = setting(5.0, "Clip each gradient element to [-g, g], as NeuroNER does.")
    batch_size: int = setting(32, "Sentences per batch (1 is NeuroNER's regimen).")
    max_epochs: int = setting(100, "Maximum epochs.")
    patience: int = setting(10, "Epochs without a better dev score before stopping.")
    # ... and at least this many optimizer steps: on tiny data an epoch is a few steps, and ten
    # epochs of noise would stop a run that has barely started
    patience_steps: int = setting(300, "... and at least this many optimizer steps without one.")
    seed: int = setting(1, "Seed of the initialization, the batches, the dev split and dropout.")
    # decoding: Viterbi and the confidences use only the moves the tag scheme allows (I-X after O is
    # impossible); off, the CRF may output such sequences and span extraction repairs them
    constrained_decoding: bool = setting(True, "Decode only the moves the tag scheme allows.")

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
    """Each field's type; ``Optional[X]`` (a value resolved when the dataclass is made) is ``X``."""
    hints = typing.get_type_hints(cls)
    types = {}
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        arguments = [a for a in typing.get_args(kind) if a is not type(None)]
        types[field.name] = arguments[0] if typing.get_origin(kind) is Union and len(arguments) == 1 else kind
    return types


def describe_setting(cls, name: str, ranges: Mapping[str, Any], default: Any = dataclasses.MISSING,
                     default_note: str = "") -> str:
    """A setting's help text, made from its dataclass field (description, default) and its range,
    so that it cannot drift from the code. ``default``: the value that applies when the setting is
    not given, where it is not the field's own (``default_note`` says why)."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    value = field.default if default is dataclasses.MISSING else default
    shown = str(value).lower() if isinstance(value, bool) else value
    text = f"{field.metadata['help']} Default {shown}{default_note}"
    if name in ranges:
        text += ("; " + describe_range(ranges[name])) if isinstance(ranges[name][0], str) else \
            f"; in {describe_range(ranges[name])}"
    return text + f". (--set {name}=VALUE)"


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


# the settings of an update ---------------------------------------------------------------------
METHODS = ("auto", "column", "isolate", "distill", "self-training", "paper", "l2-sp", "finetune", "ewc", "distill-states",
           "cpfd")
DEFAULT_METHOD = "auto"
NEW_TYPE_METHOD = "column"  # what ``auto`` means when every target type is new (task iii)
KNOWN_TYPE_METHOD = "distill"  # ... and when a target type is known (tasks i and ii)
PSEUDO_LABEL_METHODS = ("self-training", "paper", "l2-sp", "cpfd")
ISOLATING_METHODS = ("column", "isolate")  # the source network frozen, the target labels scored by new weights
DISTILLING_METHODS = ("distill", "ewc", "distill-states")
EWC_DEFAULT = 1000.0
STATES_DEFAULT = 1.0
ISOLATE_FROZEN = ("word_embedding", "char_encoder", "token_bilstm", "hidden", "emissions")
PAPER_LEARNING_RATE = 0.005
# The paper fine-tunes at 0.005. Measured on the update protocol (docs/update_protocol.md), 0.001
# (the package's default rate for training, whatever the source was trained at) forgets far less for
# every method and learns the new type about as well, so it is the default; ``learning_rate=0.005``
# gives the paper's setting.
DEFAULT_LEARNING_RATE = 0.001
L2SP_DEFAULT = 0.01
FROZEN_WITH_EMBEDDINGS = ("word_embedding", "char_encoder")  # layer names in model.build_model


SETTING_RANGES = {"method": METHODS, "init": ("paper", "preserve"), "learning_rate": (0.0, None, False, False),
                  "dev_fraction": (0.0, 0.5, False, True), "distill_weight": (0.0, None, True, False),
                  "l2sp_weight": (0.0, None, True, False), "min_confidence": (0.0, 1.0, True, True),
                  "retention_weight": (0.0, 1.0, True, True), "adapter_units": (1, 1024, True, True),
                  "adapter_learning_rate": (0.0, None, False, False), "precedence": ("dev", "off"),
                  "ewc_weight": (0.0, None, True, False), "states_weight": (0.0, None, True, False)}


@dataclasses.dataclass(frozen=True)
class UpdateSettings:
    """How an update learns; saved with the update's record in the model's provenance."""

    method: str = setting(DEFAULT_METHOD, "How the update learns: auto is column when every target type is new, "
                                          "distill when one is known.")
    learning_rate: float = setting(DEFAULT_LEARNING_RATE, "Fine-tuning learning rate (isolate: adapter_learning_rate; "
                                                          "paper: 0.005).")
    init: str = setting("paper", "New weights from N(mean, std) of the layer's old ones (paper) or so that nothing "
                                 "changes (preserve).")
    dev_fraction: float = setting(0.1, "Of the target sentences, held out for early stopping.")
    distill_weight: float = setting(1.0, "distill: weight of the KL term against the partial likelihood.")
    # None: the method's own, resolved when the settings are made (L2SP_DEFAULT for l2-sp, else 0)
    l2sp_weight: Optional[float] = setting(None, "Weight of the squared distance to the source weights, any "
                                                 f"method (not given: {L2SP_DEFAULT} for l2-sp, 0 for the others).")
    freeze_embeddings: bool = setting(False, "Keep the word embeddings and the character encoder as the source's.")
    min_confidence: float = setting(0.0, "self-training, l2-sp: teacher marginal under which a token is left open.")
    retention_weight: float = setting(0.5, "Early stopping: (1 - w) target F1 + w retention F1.")
    adapter_units: int = setting(32, "isolate: units per direction of the adapter's BiLSTM.")
    # isolate trains only new weights, from their initialization: at the paper's rate, not learning_rate's
    adapter_learning_rate: float = setting(PAPER_LEARNING_RATE, "isolate, column: the learning rate of the new "
                                                                "weights.")
    # measured on BC5CDR Chemical (seed 1): 40.75 F1 with a copy of its own, 41.11 sharing the frozen one
    column_characters: bool = setting(False, "column: a trainable copy of the source's character encoder in the "
                                             "column (false: the column reads the frozen source's).")
    precedence: str = setting("dev", "isolate, column: the threshold above which the source's confidence in an old "
                                     "type keeps the token from the new type, chosen on dev (dev) or none (off).")
    ewc_weight: float = setting(EWC_DEFAULT, "ewc: weight of the Fisher-weighted distance to the source weights.")
    states_weight: float = setting(STATES_DEFAULT, "distill-states: weight of the token-state distance.")

    def __post_init__(self) -> None:
        if self.l2sp_weight is None:
            object.__setattr__(self, "l2sp_weight", L2SP_DEFAULT if self.method == "l2-sp" else 0.0)
        check_fields(self, field_types(type(self)), SETTING_RANGES, "update option")

    def for_task(self, new_types: Sequence[str], known_types: Sequence[str]) -> "UpdateSettings":
        """``auto`` resolved for the target types: ``column`` when all are new, else ``distill``."""
        if self.method != "auto":
            return self
        return dataclasses.replace(self, method=KNOWN_TYPE_METHOD if known_types else NEW_TYPE_METHOD)

    def objective(self):
        """The update's ``objectives.Objective`` (imported here: objectives needs TensorFlow, the
        settings do not, so that the command line's help is made without it)."""
        from .objectives import Objective

        if self.method == "auto":
            raise ValueError("resolve the method for the task first (UpdateSettings.for_task)")
        if self.method in ISOLATING_METHODS:
            return Objective(partial=True, l2sp_weight=self.l2sp_weight)
        if self.method in DISTILLING_METHODS:
            return Objective(partial=True, distill_weight=self.distill_weight, l2sp_weight=self.l2sp_weight,
                             ewc_weight=self.ewc_weight if self.method == "ewc" else 0.0,
                             states_weight=self.states_weight if self.method == "distill-states" else 0.0)
        partial = self.method == "cpfd" or (self.method in ("self-training", "paper", "l2-sp")
                                            and self.min_confidence > 0)
        return Objective(partial=partial, l2sp_weight=self.l2sp_weight)

    def frozen_layers(self) -> tuple:
        return FROZEN_WITH_EMBEDDINGS if self.freeze_embeddings else ()

    @property
    def isolates(self) -> bool:
        """Whether the source network stays frozen and new weights score the target labels."""
        return self.method in ISOLATING_METHODS

    @property
    def uses_pseudo_labels(self) -> bool:
        return self.method in PSEUDO_LABEL_METHODS

    @property
    def training_rate(self) -> float:
        """The optimizer's learning rate: ``isolate`` trains new weights at ``adapter_learning_rate``,
        ``paper`` at the paper's 0.005, the others at ``learning_rate``."""
        if self.method in ISOLATING_METHODS:
            return self.adapter_learning_rate
        return PAPER_LEARNING_RATE if self.method == "paper" else self.learning_rate

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> List[str]:
        return [f.name for f in dataclasses.fields(cls)]


# Fields of the source's hyperparameters an update may change: how it trains, not the network's shape.
UPDATE_BUDGET = ("max_epochs", "patience", "patience_steps")  # the package defaults unless given
# A column starts as a copy of the trained source and settles within tens of epochs: its update waits
# 50 steps without a rise, not the training default's 300 (43 epochs of a 200-sentence update). The
# methods that start far from their end (an adapter from scratch, distillation) keep the 300: with 50
# they stopped in the flat start of their curve (BC5CDR, docs/update_protocol.md).
COLUMN_PATIENCE_STEPS = 50
UPDATE_HYPERPARAMETERS = ("batch_size", "max_epochs", "patience", "patience_steps", "gradient_clipping",
                          "optimizer", "seed", "singleton_unk_probability")


def split_update_options(values: Mapping[str, object]):
    """``--config``/``--set`` values as (UpdateSettings fields, hyperparameter fields); any other
    name is an error that says why."""
    settings, hyperparameters = {}, {}
    network_fields = {f.name for f in dataclasses.fields(Hyperparameters)} - set(UPDATE_HYPERPARAMETERS)
    for name, value in values.items():
        if name in UpdateSettings.field_names():
            settings[name] = value
        elif name in UPDATE_HYPERPARAMETERS:
            hyperparameters[name] = value
        elif name in network_fields:
            raise NeuronerError(f"{name} is fixed by the source model; an update can set "
                                f"{', '.join(UpdateSettings.field_names() + list(UPDATE_HYPERPARAMETERS))}")
        else:
            raise NeuronerError(f"unknown update option {name!r} (expected one of "
                                f"{', '.join(UpdateSettings.field_names() + list(UPDATE_HYPERPARAMETERS))})")
    return settings, hyperparameters


def make_settings(values: Mapping[str, object]) -> UpdateSettings:
    return UpdateSettings(**coerce_fields(UpdateSettings, values, "update option"))


def command_line_options(config: Optional[Mapping[str, Any]], pairs: Optional[Sequence[str]] = (),
                         shortcuts: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The one mapping of settings a command hands on: a ``--config`` file's, overridden by the
    command line's ``--set NAME=VALUE`` and its shortcut flags (sugar for ``--set``). A name given
    by both ``--set`` and a shortcut with two values is an error, not a silent choice."""
    return {**dict(config or {}), **joined_options(parse_overrides(list(pairs or [])),
                                                   {k: v for k, v in (shortcuts or {}).items() if v is not None},
                                                   "--set", "its flag")}


def joined_options(first: Mapping[str, Any], second: Mapping[str, Any], first_name: str,
                   second_name: str) -> Dict[str, Any]:
    """Two mappings of settings as one; a name both give, with values that differ, is an error."""
    for name in set(first) & set(second):
        if str(first[name]) != str(second[name]):
            raise NeuronerError(f"{name} is given twice, {first[name]!r} by {first_name} and {second[name]!r} by "
                                f"{second_name}: give it once")
    return {**first, **second}

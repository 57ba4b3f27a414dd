"""A Label Studio labeling config read for NER: its control, text and labels, and the model types they show."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import NeuronerError


class LabelingConfigError(NeuronerError):
    """A labeling config the backend cannot serve: not XML, or no ``<Labels>`` on a ``<Text>``."""


@dataclasses.dataclass(frozen=True)
class LabelingConfig:
    """The first ``<Labels name=FROM toName=TO>`` whose ``toName`` is a ``<Text name=TO value="$KEY">``.

    ``labels``: what a region's ``labels`` holds for each ``<Label>`` (its ``alias`` when it has one,
    else its ``value``, as Label Studio writes results), in the config's order."""

    from_name: str
    to_name: str
    text_key: str
    labels: Tuple[str, ...]


def parse_labeling_config(xml: str) -> LabelingConfig:
    """The NER part of a labeling config; anything the backend cannot serve is a ``LabelingConfigError``
    saying what it expected."""
    if not isinstance(xml, str) or not xml.strip():
        raise LabelingConfigError("the project has no labeling config (expected <View> with <Labels> on <Text>)")
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise LabelingConfigError("a labeling config with a DOCTYPE or entity declarations is not read")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise LabelingConfigError(f"the labeling config is not valid XML ({error})") from None
    texts = {element.get("name"): element for element in root.iter() if element.tag == "Text" and element.get("name")}
    for control in root.iter():
        if control.tag != "Labels":
            continue
        targets = [name.strip() for name in (control.get("toName") or "").split(",")]
        text = next((texts[name] for name in targets if name in texts), None)
        if text is not None and control.get("name"):
            return LabelingConfig(control.get("name"), text.get("name"), text_key_of(text),
                                  tuple(label_names(control)))
    found = sorted({element.tag for element in root.iter()} - {root.tag})
    raise LabelingConfigError(f"the labeling config has no <Labels> control on a <Text> (it has "
                              f"{', '.join(found) or 'nothing'}); the backend labels entity spans in plain text")


def text_key_of(text: ElementTree.Element) -> str:
    """The task data field a ``<Text value="$KEY">`` shows."""
    value = (text.get("value") or "").strip()
    if not value.startswith("$") or len(value) < 2:
        raise LabelingConfigError(f"<Text name=\"{text.get('name')}\"> shows value={value!r}: expected a task field "
                                  f"such as \"$text\"")
    return value[1:]


def label_names(control: ElementTree.Element) -> List[str]:
    names = [label.get("alias") or label.get("value") for label in control if label.tag == "Label"]
    names = [name for name in names if name]
    if not names:
        raise LabelingConfigError(f"<Labels name=\"{control.get('name')}\"> has no <Label value=...>")
    return list(dict.fromkeys(names))


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """Which model type is shown as which label of the config (``pairs``: (type, label)), and the
    config's labels that no model type matches (``new``: the types an update learns, named as the label)."""

    pairs: Tuple[Tuple[str, str], ...]
    new: Tuple[str, ...]

    def label_of(self, kind: str) -> Optional[str]:
        """The config's label for a model type (None: the config does not show that type)."""
        return dict(self.pairs).get(kind)

    def type_of(self, label: str) -> str:
        """The model type of a config label (a new type is named as its label)."""
        return {shown: kind for kind, shown in self.pairs}.get(label, label)

    @property
    def types(self) -> List[str]:
        """Every type the config shows, in model names: the served ones, then the new ones."""
        return [kind for kind, _ in self.pairs] + list(self.new)


def parse_label_pairs(values: Sequence[str]) -> Dict[str, str]:
    """``TYPE=LABEL`` options (``--label``) as a mapping from model type to config label."""
    pairs: Dict[str, str] = {}
    for value in values:
        kind, separator, label = value.partition("=")
        if not separator or not kind.strip() or not label.strip():
            raise NeuronerError(f"--label {value!r}: expected TYPE=LABEL (a model type and a label of the labeling "
                                f"config, e.g. PER=Person)")
        pairs[kind.strip()] = label.strip()
    return pairs


def map_labels(config: LabelingConfig, model_types: Sequence[str], given: Mapping[str, str]) -> LabelMap:
    """Match the config's labels to the model's types: ``given`` (type -> label) first, then the same
    name, then the same name in another case; a model type no label matches is not shown, a label no
    type matches is a new type."""
    pairs: List[Tuple[str, str]] = []
    taken = set()
    for kind in model_types:
        label = given.get(kind)
        if label is None and kind in config.labels:
            label = kind
        if label is None:
            label = next((name for name in config.labels if name.lower() == kind.lower()), None)
        if label is not None and label in config.labels and label not in taken:
            pairs.append((kind, label))
            taken.add(label)
    return LabelMap(tuple(pairs), tuple(label for label in config.labels if label not in taken))

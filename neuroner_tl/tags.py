"""Tag schemes (IO, IOB1, IOB2/BIO, BIOES): validation, span extraction, detection, conversion.

Spans follow conlleval: a chunk starts at B-X, at S-X, or at an I-X/E-X that does not continue an
open X chunk; it ends before O, before a new start, or after E-X/S-X. Under this rule IOB1, IOB2
and IO tags give the same spans, which is why conversion goes through spans.
"""

from __future__ import annotations

import re
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

SCHEMES = ("IO", "IOB1", "IOB2", "BIOES")
SCHEME_ALIASES = {"BIO": "IOB2", "IOB": "IOB2", "IOBES": "BIOES", "BILOU": "BIOES"}
OUTSIDE = "O"
PREFIX_LETTERS = ("B", "I", "E", "S", "L", "U")  # IOB, BIOES and BILOU prefixes: never a type on their own

# an entity type has a letter in it: a last column of numbers (B-0, I-3) is not a label column
_PREFIXED = re.compile(r"^([BIES])-(?=\S*[^\W\d_])(\S+)$")
_BARE_TYPE = re.compile(r"^(?![A-Za-z]-)(?=\S*[^\W\d_])[^\s\-][^\s]*$")  # not "B-", not "-X"


class Span(NamedTuple):
    """An entity: its type and token offsets, end exclusive."""

    type: str
    start: int
    end: int


def canonical_scheme(name: str) -> str:
    """``"bio"`` -> ``"IOB2"``; raises ``ValueError`` for an unknown scheme name."""
    upper = name.strip().upper()
    upper = SCHEME_ALIASES.get(upper, upper)
    if upper not in SCHEMES:
        raise ValueError(f"unknown tag scheme {name!r} (expected one of IO, IOB1, IOB2/BIO, BIOES)")
    return upper


def split_tag(tag: str) -> Tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``; an IO label ``"PER"`` -> ``("I", "PER")``."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    match = _PREFIXED.match(tag)
    if match:
        return match.group(1), match.group(2)
    if _BARE_TYPE.match(tag):
        return "I", tag
    raise ValueError(f"{tag!r} is not a tag")


def tag_problem(tag: str, scheme: Optional[str]) -> Optional[str]:
    """Why ``tag`` is not a valid tag of ``scheme`` (None when it is; any scheme when None)."""
    if tag == OUTSIDE:
        return None
    if not re.search(r"[^\W\d_]", tag):
        return f"label {tag!r} is not a tag: an entity type needs a letter (the last column must hold O, B-PER, ...)"
    if tag.upper() == OUTSIDE:
        return f"label {tag!r} is not a tag: outside is a capital O (labels are case-sensitive)"
    if tag.upper() in PREFIX_LETTERS:
        return f"label {tag!r} is a scheme prefix without a type (expected O, B-TYPE, I-TYPE, ...)"
    prefixed = _PREFIXED.match(tag)
    if scheme is None:
        if prefixed or _BARE_TYPE.match(tag):
            return None
        return f"label {tag!r} is not a tag (expected O, B-TYPE, I-TYPE, E-TYPE, S-TYPE or a bare TYPE)"
    if scheme == "IO":
        if prefixed or not _BARE_TYPE.match(tag):
            return f"label {tag!r} is not an IO tag (expected O or a bare TYPE)"
        return None
    allowed = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES"}[scheme]
    if not prefixed or prefixed.group(1) not in allowed:
        shown = ", ".join(f"{p}-TYPE" for p in allowed)
        return f"label {tag!r} is not a {scheme} tag (expected O, {shown})"
    return None


def spans(tags: Sequence[str]) -> List[Span]:
    """The entity spans of one sentence, in any scheme, with conlleval's chunk rules."""
    result: List[Span] = []
    open_type: Optional[str] = None
    open_start = 0
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        continues = prefix in ("I", "E") and open_type == kind
        if open_type is not None and not continues:
            result.append(Span(open_type, open_start, i))
            open_type = None
        if prefix != OUTSIDE and not continues:
            open_type, open_start = kind, i
        if prefix in ("E", "S") and open_type is not None:
            result.append(Span(open_type, open_start, i + 1))
            open_type = None
    if open_type is not None:
        result.append(Span(open_type, open_start, len(tags)))
    return result


def tags_from_spans(entity_spans: Iterable[Span], length: int, scheme: str = "IOB2") -> List[str]:
    """Render non-overlapping spans as tags of ``scheme``."""
    scheme = canonical_scheme(scheme)
    tags = [OUTSIDE] * length
    previous: Optional[Span] = None
    for span in sorted(entity_spans, key=lambda s: s.start):
        size = span.end - span.start
        for offset in range(size):
            position = span.start + offset
            if scheme == "IO":
                tags[position] = span.type
            elif scheme == "IOB2":
                tags[position] = ("B-" if offset == 0 else "I-") + span.type
            elif scheme == "IOB1":
                touching = previous is not None and previous.end == span.start and previous.type == span.type
                tags[position] = ("B-" if offset == 0 and touching else "I-") + span.type
            else:  # BIOES
                if size == 1:
                    prefix = "S-"
                elif offset == 0:
                    prefix = "B-"
                elif offset == size - 1:
                    prefix = "E-"
                else:
                    prefix = "I-"
                tags[position] = prefix + span.type
        previous = span
    return tags


def convert(tags: Sequence[str], scheme: str) -> List[str]:
    """The same entities written in another scheme."""
    return tags_from_spans(spans(tags), len(tags), scheme)


def detect_scheme(sentences_tags: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus's tags.

    Bare types mean IO; any E- or S- means BIOES; B- only ever between two tokens of one type
    (touching entities), or no B- at all while I- opens entities, means IOB1; otherwise IOB2.
    """
    saw_bare = saw_prefixed = saw_es = False
    b_opens_fresh = b_between_same = i_opens = False
    for tags in sentences_tags:
        previous_type = ""
        for tag in tags:
            if tag == OUTSIDE:
                previous_type = ""
                continue
            match = _PREFIXED.match(tag)
            if not match:
                saw_bare = True
                previous_type = tag
                continue
            saw_prefixed = True
            prefix, kind = match.groups()
            if prefix in ("E", "S"):
                saw_es = True
            elif prefix == "B":
                if previous_type == kind:
                    b_between_same = True
                else:
                    b_opens_fresh = True
            elif prefix == "I" and previous_type != kind:
                i_opens = True
            previous_type = kind
    if saw_bare and not saw_prefixed:
        return "IO"
    if saw_es:
        return "BIOES"
    if b_opens_fresh:
        return "IOB2"
    if i_opens or b_between_same:
        return "IOB1"
    return "IOB2"


def entity_types(tags: Iterable[str]) -> List[str]:
    """The sorted entity types that occur in ``tags``."""
    return sorted({split_tag(t)[1] for t in tags if t != OUTSIDE})


def labels_for_types(types: Iterable[str], scheme: str) -> List[str]:
    """The full label list a model needs for ``types``: O first, then each type's prefixes."""
    scheme = canonical_scheme(scheme)
    prefixes = {"IO": ("",), "IOB1": ("B-", "I-"), "IOB2": ("B-", "I-"), "BIOES": ("B-", "I-", "E-", "S-")}[scheme]
    labels = [OUTSIDE]
    for kind in types:
        labels.extend(prefix + kind if prefix else kind for prefix in prefixes)
    return labels


def label_set_problem(scheme: str, labels: Sequence[str]) -> Optional[str]:
    """Why ``labels`` (tags) are not a model's labels in ``scheme`` — O and, for each of their types,
    every prefix of the scheme and no other (``labels_for_types``); None when they are."""
    expected = labels_for_types(entity_types(labels), scheme)
    foreign = [label for label in labels if label not in expected]
    lacking = [label for label in expected if label not in labels]
    if not (foreign or lacking):
        return None
    fits = [name for name in ("IOB2", "BIOES", "IO")
            if set(labels_for_types(entity_types(labels), name)) == set(labels)]
    found = [f"{_listed(foreign)} cannot exist in {scheme}" if foreign else "",
             f"{scheme} needs {_listed(lacking)}" if lacking else "",
             f"they are the labels of the {fits[0]} scheme" if fits else ""]
    return "; ".join(part for part in found if part)


def _listed(labels: Sequence[str], shown: int = 3) -> str:
    return ", ".join(labels[:shown]) + (f" and {len(labels) - shown} more" if len(labels) > shown else "")


def allowed_transitions(scheme: str, labels: Sequence[str]):
    """Which label may follow which under ``scheme``, in the CRF's ``(C+2) x (C+2)`` layout: a boolean
    NumPy matrix whose rows and columns ``0..C-1`` are ``labels``, ``C`` is *start* and ``C+1`` is
    *end*; ``allowed[i, j]`` says whether ``j`` may follow ``i``. Moves into start or out of end are
    never allowed (they never happen).

    - IO: anything may follow anything.
    - IOB2 (BIO): ``I-X`` only after ``B-X`` or ``I-X`` (so never first).
    - IOB1: ``B-X`` only after ``B-X`` or ``I-X`` (it separates two touching X entities).
    - BIOES: after ``B-X`` or ``I-X`` only ``I-X`` or ``E-X``, which follow nothing else; the
      sentence starts and ends outside an entity.
    """
    import numpy as np

    scheme = canonical_scheme(scheme)
    count = len(labels)
    parts = [split_tag(label) for label in labels]
    for label, (prefix, _) in zip(labels, parts):
        if scheme != "IO" and label != OUTSIDE and label[:2] != prefix + "-":
            raise ValueError(f"label {label!r} is not a {scheme} label")
    names = parts + [("START", ""), ("END", "")]
    allowed = np.zeros((count + 2, count + 2), dtype=bool)
    for i, (from_prefix, from_type) in enumerate(names):
        for j, (to_prefix, to_type) in enumerate(names):
            if to_prefix == "START" or from_prefix == "END" or (from_prefix == "START" and to_prefix == "END"):
                continue
            allowed[i, j] = _may_follow(scheme, from_prefix, from_type, to_prefix, to_type)
    return allowed


def scheme_violation(tags: Sequence[str], scheme: str) -> Optional[Tuple[int, str]]:
    """``(position, what)`` of the first tag of one sentence that ``scheme`` does not allow where it
    stands, by :func:`allowed_transitions`' rule from the sentence's start to its end (None when
    every tag is allowed): ``(3, "'O' after 'B-PER'")``."""
    previous = ("START", "")
    for position, tag in enumerate(tags):
        current = split_tag(tag)
        if not _may_follow(scheme, *previous, *current):
            return position, f"{tag!r} after {tags[position - 1]!r}" if position else f"{tag!r} first in a sentence"
        previous = current
    if tags and not _may_follow(scheme, *previous, "END", ""):
        return len(tags) - 1, f"{tags[-1]!r} last in a sentence"
    return None


def _may_follow(scheme: str, from_prefix: str, from_type: str, to_prefix: str, to_type: str) -> bool:
    same_entity = from_prefix in ("B", "I") and from_type == to_type
    if scheme == "IO":
        return True
    if scheme == "IOB2":
        return to_prefix != "I" or same_entity
    if scheme == "IOB1":
        return to_prefix != "B" or same_entity
    # BIOES: inside an entity only I-X or E-X of its type may come next, and they nothing else
    inside = from_prefix in ("B", "I")
    if inside:
        return to_prefix in ("I", "E") and same_entity
    return to_prefix not in ("I", "E")


def span_continuation(labels: Sequence[str]):
    """``continues[i, j]``: label ``j`` right after label ``i`` extends ``i``'s entity (the rule of
    :func:`spans`: ``j`` is I- or E- of the same type and ``i`` is an entity label that does not end
    its entity, i.e. not E- or S-). A ``[C, C]`` boolean NumPy matrix."""
    import numpy as np

    parts = [split_tag(label) for label in labels]
    continues = np.zeros((len(labels), len(labels)), dtype=bool)
    for i, (from_prefix, from_type) in enumerate(parts):
        for j, (to_prefix, to_type) in enumerate(parts):
            continues[i, j] = (from_prefix in ("B", "I") and to_prefix in ("I", "E") and from_type == to_type)
    return continues

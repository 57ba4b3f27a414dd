"""What a confidence threshold buys in precision and costs in recall, per type and overall.

``--min-confidence`` keeps an entity when its confidence is at least its type's threshold
(:func:`keeps`) and turns the others into O; dropping an entity never creates another. So one
prediction pass with confidences is enough: every threshold of a ladder is scored by keeping the
scored entities that reach it, with conlleval's rules (a found entity is correct when a gold one has
the same type, start and end), exactly as evaluating with ``min_confidence`` set to that threshold.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import math
import shlex
from fractions import Fraction
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import tags as tagging
from .errors import ThresholdError
from .evaluation import OVERALL, Score
from .predicted import Prediction

# 0 is no threshold at all (the plain evaluation); the steps close to 1 matter most, since
# confidences crowd there
DEFAULT_LADDER = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999)
KEEP_RULE = "an entity is kept when its confidence >= the threshold of its type"


Threshold = Union[None, float, Mapping[str, float]]

def threshold_for(min_confidence: Threshold, kind: str) -> float:
    """The threshold of entity type ``kind``: one number for all, or a mapping by type where ``"*"``
    (else 0) is the default for types it does not name."""
    if min_confidence is None:
        return 0.0
    if isinstance(min_confidence, Mapping):
        return float(min_confidence.get(kind, min_confidence.get("*", 0.0)))
    return float(min_confidence)


def check_threshold(min_confidence: Threshold, entity_types: Optional[Sequence[str]] = None) -> None:
    """A threshold is None, a probability, or a mapping from the model's entity types (and ``"*"``, the
    rest) to probabilities; a boolean is not a probability, and a type the model lacks would be
    silently ignored, so both are a ``ThresholdError`` (with ``entity_types``, the model's types)."""
    if isinstance(min_confidence, Mapping):
        values = list(min_confidence.values())
        unknown = [kind for kind in min_confidence if kind != "*" and (entity_types is not None
                                                                       and kind not in entity_types)]
        if unknown:
            raise ThresholdError(f"a confidence threshold for {', '.join(map(repr, unknown))}, a type the model does "
                                 f"not have (its types: {', '.join(entity_types) or 'none'}; '*' sets the rest)")
    else:
        values = [min_confidence]
    for value in values:
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and 0.0 <= value <= 1.0):
            raise ThresholdError(f"a confidence threshold is a probability in [0, 1], not {value!r}")


def drop_unconfident(prediction: Prediction, min_confidence: Threshold, scheme: str) -> Prediction:
    """``prediction`` without the entities whose confidence is below their type's threshold; their
    tokens become O (and their confidences the probability that the token is not that entity's)."""
    if min_confidence is None or prediction.span_confidences is None:
        return prediction
    kept = [span for span in prediction.entities() if keeps(span.confidence, threshold_for(min_confidence, span.type))]
    if len(kept) == len(tagging.spans(prediction.tags)):
        return prediction
    tags = tagging.tags_from_spans([tagging.Span(s.type, s.start, s.end) for s in kept], len(prediction.tags), scheme)
    token, span = list(prediction.token_confidences), list(prediction.span_confidences)
    for position, (old, new) in enumerate(zip(prediction.tags, tags)):
        if old != new:
            token[position] = span[position] = 1.0 - token[position]
    return Prediction(tags, prediction.log_probability, token, span)


def keeps(confidence: float, threshold: float) -> bool:
    """Whether an entity of this confidence survives this threshold (``drop_unconfident``'s rule)."""
    return confidence >= threshold


def check_ladder(ladder: Iterable[float]) -> Tuple[float, ...]:
    """The ladder's thresholds sorted, without repeats, with 0 (no threshold) always among them;
    there must be one at least (a ladder of nothing would score 0 alone), each a probability
    (``ThresholdError``)."""
    values = list(ladder)
    if not values:
        raise ThresholdError("the ladder has no thresholds: give one or more probabilities such as 0.5,0.9")
    for value in values:
        if not _is_probability(value):
            raise ThresholdError(f"a threshold of the ladder is a probability in [0, 1], not {value!r}")
    return tuple(sorted({0.0, *(float(v) for v in values)}))


def check_target_precision(target: Optional[float]) -> Optional[float]:
    """None, or a precision in (0, 1] (``ThresholdError`` otherwise)."""
    if target is None:
        return None
    if not _is_probability(target) or target == 0:
        raise ThresholdError(f"a target precision is a fraction in (0, 1] such as 0.95, not {target!r}")
    return float(target)


def _is_probability(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.0 <= value <= 1.0)


@dataclasses.dataclass(frozen=True)
class Step:
    """The figures at one threshold of the ladder."""

    threshold: float
    score: Score

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, **self.score.to_dict()}


def _exact_f1(score: Score) -> Fraction:
    """conlleval's F1 as an exact fraction, 2 * correct / (gold + found), so that ties are ties."""
    total = score.gold + score.predicted
    return Fraction(2 * score.correct, total) if total else Fraction(0)


def _exact_precision(score: Score) -> Fraction:
    return Fraction(score.correct, score.predicted) if score.predicted else Fraction(0)


@dataclasses.dataclass(frozen=True)
class Curve:
    """One entity type (or all of them) along the ladder, lowest threshold first."""

    type: str
    steps: Tuple[Step, ...]
    target_precision: Optional[float] = None

    @property
    def gold(self) -> int:
        return self.steps[0].score.gold

    @property
    def best_f1(self) -> Step:
        """The step with the highest F1; on a tie, the lowest threshold."""
        return _first_highest(self.steps, lambda step: _exact_f1(step.score))

    @property
    def best_precision(self) -> Step:
        """The step with the highest precision; on a tie, the lowest threshold."""
        return _first_highest(self.steps, lambda step: _exact_precision(step.score))

    @property
    def target(self) -> Optional[Step]:
        """The lowest threshold whose precision reaches the target (None without a target, or when
        no threshold reaches it; a threshold that keeps no entity reaches nothing)."""
        if self.target_precision is None:
            return None
        wanted = Fraction(repr(self.target_precision))  # 0.95 as written, not its binary neighbour
        for step in self.steps:
            if step.score.predicted and _exact_precision(step.score) >= wanted:
                return step
        return None

    @property
    def suggested(self) -> Optional[Step]:
        """The threshold to pass to ``--min-confidence``: the target's when a target is set, else the
        best F1's; None when the data hold no gold entity of the type or the target is not reached."""
        if self.gold == 0:
            return None
        return self.target if self.target_precision is not None else self.best_f1

    def to_dict(self) -> dict:
        target = self.target
        best_precision = self.best_precision
        suggested = self.suggested
        return {"gold": self.gold, "steps": [step.to_dict() for step in self.steps],
                "best_f1": self.best_f1.threshold,
                "target": None if target is None else target.threshold,
                "best_precision": {"threshold": best_precision.threshold,
                                   "precision": best_precision.score.precision},
                "suggested": None if suggested is None else suggested.threshold}


def _first_highest(steps: Sequence[Step], key) -> Step:
    best = steps[0]
    for step in steps[1:]:
        if key(step) > key(best):
            best = step
    return best


class Judged(NamedTuple):
    """A found entity: its type, its confidence and whether a gold entity matches it exactly."""

    type: str
    confidence: float
    correct: bool


def judge(gold_spans: Sequence[Iterable], scored_spans: Sequence[Iterable]) -> Tuple[List[Judged], Dict[str, int]]:
    """Every found entity judged against its sentence's gold entities, and the gold count by type.
    ``gold_spans``: per sentence, spans with ``type``, ``start``, ``end``; ``scored_spans``: per
    sentence, those and a ``confidence`` (``predicted.ScoredSpan``)."""
    judged: List[Judged] = []
    gold_counts: collections.Counter = collections.Counter()
    for number, (gold, found) in enumerate(zip(gold_spans, scored_spans, strict=True), start=1):
        gold_keys = {(span.type, span.start, span.end) for span in gold}
        gold_counts.update(kind for kind, _, _ in gold_keys)
        for span in found:
            if span.confidence is None:
                raise ValueError(f"sentence {number}: an entity without a confidence (predict with confidence=True)")
            judged.append(Judged(span.type, float(span.confidence), (span.type, span.start, span.end) in gold_keys))
    return judged, dict(gold_counts)


def score_at(threshold: float, entities: Sequence[Judged], gold: int) -> Score:
    """conlleval's counts when only the entities that reach ``threshold`` are kept."""
    kept = [entity for entity in entities if keeps(entity.confidence, threshold)]
    return Score(gold=gold, predicted=len(kept), correct=sum(entity.correct for entity in kept))


def score_ladder(kind: str, entities: Sequence[Judged], gold: int, ladder: Sequence[float],
          target_precision: Optional[float] = None) -> Curve:
    return Curve(kind, tuple(Step(t, score_at(t, entities, gold)) for t in ladder), target_precision)


@dataclasses.dataclass(frozen=True)
class ThresholdReport:
    """Precision, recall and F1 at each threshold of ``ladder``, per type (``curves``) and overall."""

    ladder: Tuple[float, ...]
    target_precision: Optional[float]
    curves: Dict[str, Curve]  # by type, sorted
    overall: Curve

    @property
    def min_confidence(self) -> Dict[str, float]:
        """Each type's suggested threshold (``Curve.suggested``), as ``min_confidence`` takes them."""
        return {kind: c.suggested.threshold for kind, c in self.curves.items() if c.suggested is not None}

    @property
    def one_for_all(self) -> Optional[float]:
        """The overall curve's suggested threshold: one ``--min-confidence P`` for every type."""
        return None if self.overall.suggested is None else self.overall.suggested.threshold

    def flags(self) -> str:
        """The per-type thresholds as ``predict`` options, ready to paste."""
        return " ".join(f"--min-confidence {shlex.quote(f'{kind}={threshold_text(value)}')}"
                        for kind, value in self.min_confidence.items())

    def to_dict(self) -> dict:
        return {"ladder": list(self.ladder), "target_precision": self.target_precision, "rule": KEEP_RULE,
                "types": {kind: c.to_dict() for kind, c in self.curves.items()},
                "overall": self.overall.to_dict(), "min_confidence": self.min_confidence,
                "one_for_all": self.one_for_all, "flags": self.flags()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def format_table(self) -> str:
        return "\n".join([_format_steps(self), "", *_format_summary(self)])


def threshold_report(gold_spans: Sequence[Iterable], scored_spans: Sequence[Iterable],
                     ladder: Iterable[float] = DEFAULT_LADDER, target_precision: Optional[float] = None,
                     entity_types: Iterable[str] = ()) -> ThresholdReport:
    """Score every threshold of ``ladder`` (0 is always added) per type and overall: the entity types
    of the gold and found spans, and ``entity_types`` (a model's, listed even when absent)."""
    ladder = check_ladder(ladder)
    target_precision = check_target_precision(target_precision)
    judged, gold_counts = judge(gold_spans, scored_spans)
    types = sorted(set(entity_types) | set(gold_counts) | {entity.type for entity in judged})
    curves = {kind: score_ladder(kind, [e for e in judged if e.type == kind], gold_counts.get(kind, 0), ladder,
                                 target_precision) for kind in types}
    overall = score_ladder(OVERALL, judged, sum(gold_counts.values()), ladder, target_precision)
    return ThresholdReport(ladder, target_precision, curves, overall)


# Text -------------------------------------------------------------------------------------------
def threshold_text(value: float) -> str:
    """A threshold as typed, without a trailing ``.0`` (``0.9``, ``0.995``, ``0``, ``1``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def _marks(curve: Curve, step: Step) -> str:
    marks = []
    if step is curve.best_f1:
        marks.append("best F1")
    if step is curve.target:
        marks.append(f"lowest with precision >= {_percent(curve.target_precision)}")
    return ("<- " + ", ".join(marks)) if marks else ""


def _format_steps(report: ThresholdReport) -> str:
    header = ("type", "threshold", "found", "correct", "gold", "precision", "recall", "F1", "")
    rows = [header]
    for curve in [*report.curves.values(), report.overall]:
        for index, step in enumerate(curve.steps):
            s = step.score
            rows.append((curve.type if index == 0 else "", threshold_text(step.threshold), str(s.predicted), str(s.correct),
                         str(s.gold), f"{s.precision:.2f}", f"{s.recall:.2f}", f"{s.f1:.2f}", _marks(curve, step)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i in (0, len(header) - 1) else cell.rjust(widths[i])
                       for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "-" * (sum(widths[:-1]) + 2 * (len(widths) - 2)))  # the figures, not the marks
    return "\n".join([f"Each confidence threshold: {KEEP_RULE}; precision, recall and F1 in %.", *lines])


def _best_f1_text(curve: Curve) -> str:
    best = curve.best_f1
    return f"{threshold_text(best.threshold)} (F1 {best.score.f1:.2f})"


def _target_text(curve: Curve) -> str:
    target = curve.target
    if target is not None:
        return f"{threshold_text(target.threshold)} (recall {target.score.recall:.2f})"
    best = curve.best_precision
    return f"not reached: best {best.score.precision:.2f} at {threshold_text(best.threshold)}"


def _why_none(curve: Curve) -> str:
    return "no gold entity in the data" if curve.gold == 0 else "target precision not reached"


def _suggested_text(curve: Curve) -> str:
    suggested = curve.suggested
    return threshold_text(suggested.threshold) if suggested is not None else f"none ({_why_none(curve)})"


def _format_summary(report: ThresholdReport) -> List[str]:
    """Per type: the best F1's threshold, the target's, and the one suggested; then the flags."""
    with_target = report.target_precision is not None
    target_header = f"precision >= {_percent(report.target_precision)}" if with_target else ""
    rows = [("type", "best F1 at", target_header, "suggested")]
    for curve in [*report.curves.values(), report.overall]:
        rows.append((curve.type, _best_f1_text(curve), _target_text(curve) if with_target else "",
                     _suggested_text(curve)))
    if not with_target:
        rows = [(kind, best, suggested) for kind, best, _, suggested in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    basis = f"the lowest threshold with precision >= {_percent(report.target_precision)}" if with_target \
        else "the best F1's threshold"
    one = report.one_for_all
    lines += ["", f"suggested: {basis}; for predict, per type:",
              f"  {report.flags() or '(none)'}",
              "or one threshold for every type:",
              f"  {'--min-confidence ' + threshold_text(one) if one is not None else '(none: ' + _why_none(report.overall) + ')'}"]
    if any(c.suggested is None for c in report.curves.values()):
        lines.append("a type without a suggestion keeps all its entities unless you set its threshold yourself")
    return lines


# Plot -------------------------------------------------------------------------------------------
def plot_thresholds(report: ThresholdReport) -> bytes:
    """A PNG image: per type and overall, precision, recall and F1 against the ladder's thresholds
    (evenly spaced, so the steps near 1 can be read), with the best F1 and the target marked.
    Precision is left out where a threshold keeps no entity (it is undefined there)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = [*report.curves.values(), report.overall]
    columns = min(3, len(curves))
    rows = math.ceil(len(curves) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.5))
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(rows, columns, index) for index in range(1, len(curves) + 1)]
    for axis, curve in zip(axes, curves):
        _plot_curve(axis, curve, report.ladder)
    legend = {}  # label -> handle, from every subplot (not every one has a target line)
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    figure.legend(list(legend.values()), list(legend), loc="upper center", ncol=len(legend), fontsize=8,
                  frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.4 / figure.get_figheight()))
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    return image.getvalue()


def _plot_curve(axis, curve: Curve, ladder: Sequence[float]) -> None:
    positions = list(range(len(ladder)))
    precision = [s.score.precision if s.score.predicted else math.nan for s in curve.steps]
    axis.plot(positions, precision, marker="o", markersize=3, label="precision")
    axis.plot(positions, [s.score.recall for s in curve.steps], marker="s", markersize=3, label="recall")
    axis.plot(positions, [s.score.f1 for s in curve.steps], linestyle="--", label="F1")
    best = curve.best_f1
    axis.axvline(curve.steps.index(best), color="tab:green", linestyle=":", label="best F1")
    title = f"{curve.type} (gold {curve.gold}): best F1 at {threshold_text(best.threshold)}"
    if curve.target_precision is not None:
        axis.axhline(100 * curve.target_precision, color="grey", linewidth=0.8, label="target precision")
        target = curve.target
        if target is not None:
            axis.axvline(curve.steps.index(target), color="tab:red", linestyle="-.", label="lowest at target")
        title += f", target {threshold_text(target.threshold) if target is not None else 'not reached'}"
    axis.set_xticks(positions)
    axis.set_xticklabels([threshold_text(t) for t in ladder], rotation=60, fontsize=7)
    axis.set_ylim(-2, 102)
    axis.set_xlabel("confidence threshold")
    axis.set_ylabel("%")
    axis.set_title(title, fontsize=9)

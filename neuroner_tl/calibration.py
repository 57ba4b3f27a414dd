"""Calibrated confidences: one temperature for the CRF, fitted on labelled data; reliability tables.

The CRF's probability of a tagging, ``P(y | x) ∝ exp(score(y))``, is overconfident after training
(the network is fitted until its training sentences are nearly certain). Dividing every score —
emissions and transitions — by a temperature ``T > 1`` flattens the distribution without changing
its order: the most probable path (Viterbi's, which decoding computes from the raw scores) is the
same, so predictions and F1 do not change; only the confidences do (token marginals, entity
confidences, the path's probability). One scalar: a temperature per entity type measured no better
(docs/benchmarks.md).

Two objectives, each where it measured best (three CoNLL-2003 models; docs/benchmarks.md):

- ``likelihood`` — the gold tag sequences' log-likelihood, ``mean log Z(x; T) - score(y; x) / T``
  over sentences (temperature scaling, Guo et al. 2017, on the CRF's sequence distribution). It
  uses every token of every sentence and is convex in ``1/T``. ``train`` and ``update`` fit it on
  their dev split, text like the training text: span-level ECE on CoNLL-2003 test 2.15 ± 0.73
  points, against 2.88 ± 0.59 for ``spans`` fitted on the same dev.
- ``spans`` — the log-loss of the predicted entities' confidences against whether each is right
  (same type and boundaries). It targets the numbers users read directly; on text unlike the
  training text, where the errors are mostly entities the model finds wrongly rather than tags it
  is unsure of, it is the one that works: fitted on WNUT-17 dev, ECE on WNUT-17 test 7.2 ± 0.8
  against 28.6 ± 0.5 for the likelihood. ``neuroner-tl calibrate`` uses it on the customer's own
  labelled sample.

Both are minimised over log T by a golden-section search on scores computed once. A fit needs
evidence — for the likelihood, ``MIN_GOLD_ENTITIES`` gold entities in the sentences it uses; for
``spans``, ``MIN_PREDICTED_ENTITIES`` predicted entities with ``MIN_EACH_OUTCOME`` right and as many
wrong — and a best temperature inside ``TEMPERATURE_RANGE``: one on a bound of the search says the data
do not determine it (no gold entity: every confidence "should" be 0, T grows without end). Either is a
``CalibrationError`` and the temperature stays as it was. The temperature
is the CRF layer's ``temperature`` weight: saved with the model and in the SavedModel, so the CLI,
the API, HTTP and TF Serving all report the calibrated numbers (``--no-calibration``: the raw ones).
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from . import tags as tagging
from .batching import inference_batches
from .corpus import Corpus
from .errors import CalibrationError

# bins of the reliability tables: fine near 1, where most entities are
EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
TEMPERATURE_RANGE = (0.05, 20.0)
SEARCH_STEPS = 40  # golden-section steps over log T: the bracket shrinks 0.618^40, far below 1e-6
BOUND_MARGIN = 0.02  # a fit this share of the search's range (in log T) from a bound is on it: the loss
# is flat there to float32's precision, so the search stops short of a bound it runs to
MIN_GOLD_ENTITIES = 10  # the likelihood's evidence: gold entities in the sentences it uses
MIN_PREDICTED_ENTITIES = 20  # the spans objective's evidence: predicted entities ...
MIN_EACH_OUTCOME = 3  # ... of which at least this many right and this many wrong


OBJECTIVES = ("spans", "likelihood")


@dataclasses.dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature and the dev figures that chose it."""

    temperature: float
    objective: str  # one of OBJECTIVES
    sentences: int  # dev sentences used
    entities: int  # predicted dev entities (the spans objective's examples)
    loss_before: float  # the objective at T = 1 (per entity, or per sentence for the likelihood)
    loss_after: float  # ... at ``temperature``

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "objective": self.objective, "fitted_on": "dev",
                "sentences": self.sentences, "entities": self.entities,
                "loss_before": self.loss_before, "loss_after": self.loss_after}


@dataclasses.dataclass
class DevScores:
    """Labelled sentences' raw emission scores, by batch, computed once: the fit only re-runs the CRF
    (compiled, so that each of the search's steps costs one call per batch)."""

    potentials: List[tf.Tensor]  # [B, T, C] each
    lengths: List[tf.Tensor]  # [B]
    gold: List[tf.Tensor]  # [B, T] gold label ids


def dev_scores(tagger, corpus: Corpus, batch_size: int = 128) -> DevScores:
    network = tagger.network
    items = [item for item in tagger.encode_corpus(corpus) if len(item)]
    scores = DevScores([], [], [])
    potentials = tagger.potentials_function()
    for batch in inference_batches(items, batch_size):
        inputs = batch.inputs()
        scores.potentials.append(potentials(batch.words, batch.chars))
        scores.lengths.append(network.lengths(inputs))
        scores.gold.append(tf.convert_to_tensor(batch.labels, tf.int32))
    return scores


def fit_temperature(tagger, corpus: Corpus, objective: str = "likelihood", batch_size: int = 128,
                    scores: Optional[DevScores] = None, types: Optional[Sequence[str]] = None) -> TemperatureFit:
    """Fit and set ``tagger``'s temperature on the labelled ``corpus`` (see the module's docstring); a
    ``CalibrationError``, with the temperature left as it is, when ``corpus`` is too little evidence or
    the best temperature is a bound of the search. ``scores``: ``dev_scores`` of ``corpus`` computed
    before; ``types``: the spans objective on these types only."""
    scores = scores or dev_scores(tagger, corpus, batch_size)
    if objective == "likelihood":
        return fit_crf_temperature(tagger.crf, scores, tagger.labels, tagger.constrained)
    return fit_span_temperature(tagger.crf, scores, tagger.labels, tagger.constrained, types)


def _search(loss, objective: str, sentences: int, entities: int, crf) -> TemperatureFit:
    """Minimise ``loss(temperature)`` over log T by golden section and leave the temperature set; a
    minimum on a bound of the search (or no lower there than at it) is a ``CalibrationError``, and
    the temperature is put back."""
    def at(temperature: float) -> float:
        crf.temperature.assign(temperature)
        return loss()

    previous = float(crf.temperature.numpy())
    low, high = TEMPERATURE_RANGE
    before = at(1.0)
    log_temperature = golden_section_minimum(lambda value: at(math.exp(value)), math.log(low), math.log(high))
    temperature = float(math.exp(log_temperature))
    after = at(temperature)
    margin = BOUND_MARGIN * math.log(high / low)
    for bound, side, meaning in ((low, "lower", "sharpened"), (high, "upper", "flattened")):
        if abs(log_temperature - math.log(bound)) < margin or at(bound) <= after:
            crf.temperature.assign(previous)
            raise CalibrationError(f"the best temperature, {temperature:.3g}, is at the {side} bound of the search "
                                   f"({low:g}-{high:g}): these data would have the confidences {meaning} without "
                                   f"limit, so they do not determine a temperature")
    crf.temperature.assign(temperature)  # compiled decoders read the weight
    return TemperatureFit(temperature, objective, sentences, entities, before, after)


def _gold_entities(gold, lengths, labels: Sequence[str], rows=None) -> int:
    """The gold entities of one batch (of its ``rows`` only, when given)."""
    return sum(len(tagging.spans([labels[i] for i in gold[row, :length].numpy()]))
               for row, length in enumerate(lengths.numpy()) if rows is None or rows[row])


def fit_crf_temperature(crf, scores: DevScores, labels: Sequence[str], constrained: bool = False) -> TemperatureFit:
    """Set ``crf``'s temperature to the one under which the gold paths of ``scores`` are most likely
    (with ``constrained``, under the CRF's decoding constraint; a gold path it forbids is left out).
    ``labels``: the tags' names, to count the gold entities the fit rests on."""
    keep = [tf.abs(crf.sequence_score(p, y, n, constrained) - crf.sequence_score(p, y, n)) < 1e-3
            for p, y, n in zip(scores.potentials, scores.gold, scores.lengths)]
    count = int(sum(int(tf.reduce_sum(tf.cast(k, tf.int32))) for k in keep))
    entities = sum(_gold_entities(y, n, labels, k.numpy()) for y, n, k in zip(scores.gold, scores.lengths, keep))
    if entities < MIN_GOLD_ENTITIES:
        raise CalibrationError(f"too little evidence to fit a temperature: the likelihood needs at least "
                               f"{MIN_GOLD_ENTITIES} gold entities, and the {count} sentences it can use have "
                               f"{entities}")

    @tf.function(reduce_retracing=True)
    def batch_nll(potentials, gold, lengths, kept):
        nll = (crf.log_norm(potentials, lengths, constrained, calibrated=True)
               - crf.sequence_score(potentials, gold, lengths, constrained, calibrated=True))
        return tf.reduce_sum(tf.where(kept, nll, tf.zeros_like(nll)))

    def mean_nll() -> float:
        total = sum(float(batch_nll(potentials, gold, lengths, kept))
                    for potentials, gold, lengths, kept in zip(scores.potentials, scores.gold, scores.lengths, keep))
        return total / count

    return _search(mean_nll, "likelihood", count, 0, crf)


def fit_span_temperature(crf, scores: DevScores, labels: Sequence[str], constrained: bool = False,
                         types: Optional[Sequence[str]] = None) -> TemperatureFit:
    """Set ``crf``'s temperature to the one whose entity confidences best predict which predicted
    entities are right: the log-loss of (confidence, right) over the entities decoding finds in
    ``scores`` (right: the gold path has the same type and boundaries). The paths do not depend on
    the temperature, so they are decoded once. ``types``: only the entities of these types count."""
    batches = []  # (potentials, lengths, predicted tag ids, [row, first token] of each entity, right)
    gold_entities = 0
    for potentials, gold, lengths in zip(scores.potentials, scores.gold, scores.lengths):
        predicted, _ = crf.decode(potentials, lengths, constrained)
        places, right = [], []
        for row, length in enumerate(lengths.numpy()):
            truth = set(tagging.spans([labels[i] for i in gold[row, :length].numpy()]))
            gold_entities += sum(1 for span in truth if types is None or span.type in types)
            for span in tagging.spans([labels[i] for i in predicted[row, :length].numpy()]):
                if types is not None and span.type not in types:
                    continue
                places.append((row, span.start))
                right.append(span in truth)
        if places:
            batches.append((potentials, lengths, predicted, tf.constant(places, tf.int32),
                            tf.constant(right, tf.float32)))
    outcomes = [float(value) for batch in batches for value in batch[4].numpy()]
    _check_span_evidence(len(outcomes), int(sum(outcomes)), gold_entities)
    entities = len(outcomes)

    @tf.function(reduce_retracing=True)
    def batch_log_loss(potentials, lengths, predicted, places, right):
        _, span = crf.confidences(potentials, predicted, lengths, constrained, calibrated=True)
        confidence = tf.clip_by_value(tf.gather_nd(span, places), 1e-7, 1 - 1e-7)
        return -tf.reduce_sum(right * tf.math.log(confidence) + (1 - right) * tf.math.log(1 - confidence))

    def log_loss() -> float:
        return sum(float(batch_log_loss(*batch)) for batch in batches) / entities

    return _search(log_loss, "spans", sum(int(n.shape[0]) for n in scores.lengths), entities, crf)


def _check_span_evidence(entities: int, right: int, gold_entities: int) -> None:
    """The spans objective learns from right and wrong predicted entities: too few of either is a
    ``CalibrationError`` that says what the data hold."""
    wrong = entities - right
    if entities >= MIN_PREDICTED_ENTITIES and min(right, wrong) >= MIN_EACH_OUTCOME:
        return
    found = (f"the model predicts {entities} entit{'y' if entities == 1 else 'ies'} here, {right} right and "
             f"{wrong} wrong, against {gold_entities} gold entit{'y' if gold_entities == 1 else 'ies'}")
    raise CalibrationError(f"too little evidence to fit a temperature: the spans objective needs at least "
                           f"{MIN_PREDICTED_ENTITIES} predicted entities, {MIN_EACH_OUTCOME} of them right and "
                           f"{MIN_EACH_OUTCOME} wrong; {found}")


def golden_section_minimum(function, low: float, high: float, steps: int = SEARCH_STEPS) -> float:
    """The minimum of a unimodal ``function`` on ``[low, high]``."""
    ratio = (math.sqrt(5) - 1) / 2
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    at_left, at_right = function(left), function(right)
    for _ in range(steps):
        if at_left <= at_right:
            high, right, at_right = right, left, at_left
            left = high - ratio * (high - low)
            at_left = function(left)
        else:
            low, left, at_left = left, right, at_right
            right = low + ratio * (high - low)
            at_right = function(right)
    return (low + high) / 2


# reliability -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    confidence: Optional[float]  # mean confidence of the bin's entities
    precision: Optional[float]  # the share of them that are right


def scored_entities(predictions, corpus: Corpus) -> List[Tuple[str, float, bool]]:
    """(type, confidence, right) of every predicted entity; right: the gold data have it with the
    same type and boundaries (conlleval)."""
    pairs = []
    for sentence, prediction in zip(corpus.sentences, predictions):
        gold = set(tagging.spans(sentence.labels))
        for entity in prediction.entities():
            pairs.append((entity.type, entity.confidence,
                          tagging.Span(entity.type, entity.start, entity.end) in gold))
    return pairs


def reliability(pairs: Sequence[Tuple[str, float, bool]], edges: Sequence[float] = EDGES) -> Tuple[List[Bin], float]:
    """The reliability table of scored entities and the expected calibration error: the mean over
    entities of |precision - mean confidence| of their bin (the last bin includes 1)."""
    bins, ece = [], 0.0
    for number, (low, high) in enumerate(zip(edges, edges[1:])):
        last = number == len(edges) - 2
        inside = [(confidence, right) for _, confidence, right in pairs
                  if low <= confidence < high or (last and confidence == high)]
        if not inside:
            bins.append(Bin(low, high, 0, None, None))
            continue
        confidence = float(np.mean([c for c, _ in inside]))
        precision = float(np.mean([r for _, r in inside]))
        ece += len(inside) / len(pairs) * abs(precision - confidence)
        bins.append(Bin(low, high, len(inside), confidence, precision))
    return bins, ece


def reliability_markdown(bins: Sequence[Bin]) -> str:
    total = sum(b.count for b in bins) or 1
    lines = ["| confidence | entities | share | mean confidence | precision | gap |",
             "|---|---:|---:|---:|---:|---:|"]
    for b in bins:
        if b.count:
            lines.append(f"| [{b.low:.2f}, {b.high:.2f}{']' if b.high >= 1 else ')'} | {b.count} | "
                         f"{100 * b.count / total:.1f}% | {100 * b.confidence:.1f} | {100 * b.precision:.1f} | "
                         f"{100 * (b.precision - b.confidence):+.1f} |")
    return "\n".join(lines)


def reliability_diagram(curves: Sequence[Tuple[str, Sequence[Bin], float]], path, title: str = "") -> None:
    """A reliability diagram PNG: per curve (name, bins, ECE), precision against mean confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for name, bins, ece in curves:
        filled = [b for b in bins if b.count]
        axes.plot([b.confidence for b in filled], [b.precision for b in filled], marker="o",
                  label=f"{name} (ECE {100 * ece:.1f})")
    axes.set_xlabel("entity confidence (bin mean)")
    axes.set_ylabel("precision of the bin's entities")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_title(title)
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def calibrate_on_dev(tagger, dev: Corpus, trained_on: Corpus, say, scores: Optional[DevScores] = None) -> Optional[dict]:
    """The end of ``train`` and ``update``: fit the temperature on ``dev`` and say so; the fit's
    figures for evaluation.json. Dev sentences that are all training sentences (a corpus too small to
    split) cannot tell overconfidence, and a fit that fails (``fit_temperature``) tells nothing: the
    temperature is then left as it is, and the reason said. ``scores``: ``dev_scores`` of ``dev``, when computed before."""
    seen = {tuple(sentence.tokens) for sentence in trained_on.sentences}
    if all(tuple(sentence.tokens) in seen for sentence in dev.sentences):
        say(f"confidences not calibrated: the dev sentences are training sentences (temperature stays "
            f"{tagger.temperature:.2f}; give a dev set to calibrate)")
        return None
    try:
        fit = fit_temperature(tagger, dev, "likelihood", scores=scores)
    except CalibrationError as error:
        say(f"warning: confidences not calibrated on the dev data: {error} (temperature stays "
            f"{tagger.temperature:.2f}; `neuroner-tl calibrate` fits one on other labelled data)")
        return None
    say(f"confidences calibrated on {fit.sentences} dev sentences: temperature {fit.temperature:.2f} (the gold "
        f"tags' log-loss per sentence {fit.loss_before:.3f} at 1 -> {fit.loss_after:.3f})")
    return fit.to_dict()

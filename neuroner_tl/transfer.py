"""The update pipeline: a trained model learns target entity types from sentences in which only
those types are annotated, without the data it was trained on.

Steps: split a dev part off the target data; the source model (the *teacher*) predicts the other
types and their token marginals; surgery adds labels for new types and rows for new words; the
network (the *student*) is fine-tuned with one of ``METHODS``; early stopping looks only at what a
person annotated (``update_selection``).

Methods (``UpdateSettings.method``):

- ``finetune``: the CRF likelihood of the target annotation alone, every other token O. Nothing
  tells the network to keep the other types: the catastrophic-forgetting floor.
- ``self-training``: the paper's method. The teacher's Viterbi spans of the other types are taken
  as labels (gold target spans win). ``paper`` is the same at the paper's learning rate, 0.005,
  whatever ``learning_rate`` says: the paper's setting in one flag. With ``min_confidence``, tokens whose teacher marginal is
  below it are left open (any non-target label) instead of being forced to the teacher's guess.
- ``distill``: the student matches the teacher's per-token CRF marginals over the old labels on
  every non-target token (ExtendNER, Monaikul et al., AAAI 2021; CFNER, Zheng et al., ACL 2022
  and CPFD, Zhang et al., EMNLP 2023 build on the same distillation), while the gold target spans
  are learnt with the likelihood of the partial annotation "target spans here, no target type
  elsewhere". The teacher's mass on a target type's labels at a token the annotation says is not
  that type moves to O.
- ``l2-sp``: ``self-training`` plus L2-SP (Li et al., ICML 2018): a penalty on the squared
  distance of every weight to the source model's.
- ``isolate``: parameter isolation. The source network is frozen (word and character encoders,
  token BiLSTM, hidden and emission layers, the transitions between the labels it does not give
  up); the target types are learnt by new weights only: a ``model.LabelAdapter`` (a small BiLSTM
  of its own over the frozen features and states, and a head with the paper's new emission rows),
  and the transitions into and out of the target labels. The other types' emission scores stay bit
  for bit the source's, so they can change only where a target label wins a token. The gold
  spans are learnt by the partial likelihood (target spans here, no target type elsewhere).
- ``ewc``: ``distill`` plus Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017): the squared
  distance to the source weights, weighted by the diagonal Fisher information of the source
  computed on the target sentences with its own predictions as labels (no source data needed).
- ``distill-states``: ``distill`` plus the squared distance of the student's token BiLSTM states to
  the teacher's on every token (feature distillation, as CPFD's pooled features).
- ``cpfd``: ``self-training`` whose pseudo-labels keep a teacher span of an old type only when its
  mean token entropy is at most the median of that type's spans in the target data (CPFD's
  type-specific thresholds, Zhang et al., EMNLP 2023); the others are left open.

- ``column``: ``isolate``'s frozen source, with the target labels scored by a trainable copy of the
  source's word rows (grown with the target's words), token BiLSTM and hidden layer that reads the
  frozen features and states laterally (``model.TargetColumn``; progressive networks).

After an isolating method (``isolate``, ``column``) the source's precedence over the new labels is
chosen on dev (``with_chosen_precedence``).

``auto`` (the default) picks, per task, the method the protocols measured best: ``column`` when
every target type is new (task iii), ``distill`` otherwise (docs/update_protocol.md).

Two further guards combine with any method: ``l2sp_weight`` (L2-SP) and ``freeze_embeddings``
(the word embeddings and the character encoder stay as the source's; new words and characters
keep the rows surgery gave them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from . import tags as tagging
from .atomic import atomic_write_text
from .batching import Encoded, encode
from .calibration import calibrate_on_dev, dev_scores as emission_scores
from .callbacks import DevScore
from .config import (  # noqa: F401 (the update's settings, re-exported where they were defined before)
    Hyperparameters, METHODS, DEFAULT_METHOD, NEW_TYPE_METHOD, KNOWN_TYPE_METHOD, PSEUDO_LABEL_METHODS, DISTILLING_METHODS, EWC_DEFAULT, STATES_DEFAULT, ISOLATE_FROZEN, PAPER_LEARNING_RATE, DEFAULT_LEARNING_RATE, L2SP_DEFAULT, FROZEN_WITH_EMBEDDINGS, SETTING_RANGES, UpdateSettings, UPDATE_BUDGET, COLUMN_PATIENCE_STEPS, UPDATE_HYPERPARAMETERS, split_update_options, make_settings)
from .corpora import check_target_has_types, check_types, describe_corpus, hold_out_dev, span_counts
from .corpus import Corpus
from .formats import load_corpus, path_of, require_labels
from .errors import DataFormatError, NeuronerError, UpdateError
from .evaluation import Report, Score
from .fingerprints import file_fingerprint, fingerprint_of_corpus, fingerprint_of_value
from .objectives import Objective
from .runfolder import RunFolder
from .tagger import Tagger

# what the student learns from ------------------------------------------------------------------
def label_ids_of_types(labels: Sequence[str], types) -> np.ndarray:
    wanted = set(types)
    return np.array([i for i, label in enumerate(labels) if tagging.split_tag(label)[1] in wanted], dtype=np.int64)


def teacher_targets(teacher_marginals: np.ndarray, num_labels: int, outside_id: int,
                    moved_ids: np.ndarray) -> np.ndarray:
    """The teacher's ``[T, C_old]`` marginals as the student's ``[T, C_new]`` distribution: old labels
    keep their index (surgery appends new ones); the mass of ``moved_ids`` (labels of the gold
    types, which the annotation rules out here) goes to O."""
    soft = np.zeros((len(teacher_marginals), num_labels), np.float32)
    soft[:, : teacher_marginals.shape[1]] = teacher_marginals
    if len(moved_ids):
        soft[:, outside_id] += soft[:, moved_ids].sum(axis=1)
        soft[:, moved_ids] = 0.0
    return soft


def with_update_targets(items: Sequence[Encoded], settings: UpdateSettings, labels: Sequence[str],
                        gold_types, teacher_marginals: Optional[Sequence[np.ndarray]],
                        teacher_states: Optional[Sequence[np.ndarray]] = None) -> List[Encoded]:
    """``items`` (labelled with gold spans, plus pseudo-labels for the pseudo-label methods) with
    the ``allowed``, ``soft`` and ``states`` arrays the method's objective reads."""
    objective = settings.objective()
    if not objective.uses_targets:
        return list(items)
    gold_ids = label_ids_of_types(labels, gold_types)
    outside = labels.index("O")
    not_gold = np.ones(len(labels), bool)
    not_gold[gold_ids] = False
    result = []
    for index, item in enumerate(items):
        unsure_labels = item.labels == UNSURE_ID
        known_labels = np.where(unsure_labels, outside, item.labels)
        on_gold = np.isin(known_labels, gold_ids)
        allowed = np.eye(len(labels), dtype=bool)[known_labels]
        soft = None
        if settings.method in DISTILLING_METHODS:
            allowed[~on_gold] = not_gold
            soft = teacher_targets(teacher_marginals[index], len(labels), outside, gold_ids)
            soft[on_gold] = 0.0
        elif settings.isolates:  # target spans here, no target type elsewhere
            allowed[~on_gold] = not_gold
        elif settings.method == "cpfd":  # the pseudo-labels dropped as unsure are left open
            allowed[unsure_labels] = not_gold
        else:  # self-training with a confidence threshold: unsure teacher tokens are left open
            unsure = ~on_gold & (teacher_marginals[index].max(axis=1) < settings.min_confidence)
            allowed[unsure] = not_gold
        states = teacher_states[index] if objective.states_weight > 0 else None
        result.append(dataclasses.replace(item, labels=known_labels, allowed=allowed, soft=soft, states=states))
    return result


UNSURE_ID = -1  # cpfd: a token whose pseudo-label was dropped (any non-target label will do)


def entropy(marginals: np.ndarray) -> np.ndarray:
    """Each token's entropy of its label distribution (nats)."""
    return -np.sum(np.where(marginals > 0, marginals * np.log(np.maximum(marginals, 1e-30)), 0.0), axis=-1)


def confident_pseudo_labels(items: Sequence[Encoded], teacher_marginals: Sequence[np.ndarray],
                            labels: Sequence[str], gold_types) -> List[Encoded]:
    """CPFD's type-specific thresholds on pseudo-labels: a teacher span (in ``items``' labels) of an
    old type is kept when its mean token entropy under the teacher is at most the median over that
    type's spans in the target data; the tokens of the other spans become ``UNSURE_ID``."""
    gold = set(gold_types)
    found = []  # (item index, span, mean entropy)
    for index, (item, marginals) in enumerate(zip(items, teacher_marginals)):
        token_entropy = entropy(marginals)
        for span in tagging.spans([labels[i] for i in item.labels]):
            if span.type not in gold:
                found.append((index, span, float(token_entropy[span.start:span.end].mean())))
    thresholds = {kind: float(np.median([e for _, sp, e in found if sp.type == kind]))
                  for kind in {sp.type for _, sp, _ in found}}
    result = [dataclasses.replace(item, labels=item.labels.copy()) for item in items]
    for index, span, value in found:
        if value > thresholds[span.type]:
            result[index].labels[span.start:span.end] = UNSURE_ID
    return result


# early stopping ---------------------------------------------------------------------------------
def group_score(report: Report, types) -> Score:
    """The micro-averaged score of ``types`` in ``report``."""
    scores = [report.by_type[t] for t in types if t in report.by_type]
    return Score(sum(s.gold for s in scores), sum(s.predicted for s in scores), sum(s.correct for s in scores))


def _f1_or_agreement(score: Score) -> float:
    """F1, except that nothing to find and nothing found is full agreement (100), not 0."""
    return 100.0 if score.gold == 0 and score.predicted == 0 else score.f1


def update_scores(report: Report, gold_types, retention_weight: float) -> DevScore:
    """The selection rule of an update, from a report on the dev split annotated with the gold
    spans of ``gold_types`` and the teacher's predictions of every other type:

    - target F1: the gold types' spans, as a person annotated them;
    - retention F1: agreement with the teacher on the other types (its predictions are the
      reference: what the source model found, the update should still find);
    - score = (1 - retention_weight) * target F1 + retention_weight * retention F1;
    - early stopping waits (``ready`` False) until at least one gold span is found: before that the
      score only measures how little the network has moved yet.
    """
    target = group_score(report, gold_types)
    other = group_score(report, [t for t in report.by_type if t not in set(gold_types)])
    target_f1, retention_f1 = _f1_or_agreement(target), _f1_or_agreement(other)
    score = (1 - retention_weight) * target_f1 + retention_weight * retention_f1
    return DevScore(score, details={"target_f1": target_f1, "retention_f1": retention_f1,
                                    "target_spans": target.gold, "teacher_spans": other.gold},
                    ready=target.correct > 0)


SMOOTHING_EPOCHS = 3


def update_selection(annotated_dev: Corpus, gold_types, retention_weight: float, window: int = SMOOTHING_EPOCHS,
                     earlier: Sequence[float] = ()):
    """Scores each epoch by ``update_scores`` averaged over the last ``window`` epochs: a dev split of
    a few hundred target sentences holds a handful of target spans, and one lucky epoch (3 of 6
    found) would otherwise be kept over a model that finds them steadily. ``earlier``: the epoch
    scores of a run being resumed."""
    recent: List[float] = list(earlier)
    evaluate = dev_evaluator(annotated_dev)

    def select(tagger: Tagger) -> DevScore:
        scored = update_scores(evaluate(tagger), gold_types, retention_weight)
        recent.append(scored.score)
        smoothed = float(np.mean(recent[-window:]))
        return dataclasses.replace(scored, score=smoothed, noise=smoothed_noise(recent, window),
                                   details={**scored.details, "epoch_score": scored.score})

    return select


NOISE_EPOCHS = 10  # the recent epochs whose spread says how much the score moves by chance


def smoothed_noise(scores: Sequence[float], window: int, recent: int = NOISE_EPOCHS) -> float:
    """The chance movement of a mean of ``window`` epoch scores: the epoch-to-epoch spread of the
    last ``recent`` scores (the standard deviation of their successive differences over sqrt 2, which
    a steady trend barely inflates) over sqrt ``window``. 0 with fewer than 4 scores."""
    last = np.asarray(scores[-recent:], np.float64)
    if len(last) < 4:
        return 0.0
    return float(np.std(np.diff(last)) / math.sqrt(2) / math.sqrt(window))


def dev_evaluator(dev: Corpus):
    """``tagger -> Report`` on ``dev``, encoded once for a tagger rather than again every epoch."""
    encoded: Dict[int, List[Encoded]] = {}

    def report(tagger: Tagger) -> Report:
        if id(tagger) not in encoded:
            encoded.clear()
            encoded[id(tagger)] = tagger.encode_corpus(dev)
        return tagger.evaluate(dev, encoded=encoded[id(tagger)])[0]

    return report


# the precedence of the source's confident old types ---------------------------------------------
PRECEDENCE_GRID = (0.99, 0.95, 0.9, 0.8, 0.7, 0.5)  # from the least intervention to the most


def with_chosen_precedence(tagger: Tagger, dev: Corpus, gold_types, retention_weight: float, say,
                           scores=None) -> Tagger:
    """``tagger`` with the precedence (``model.NeuronerModel.with_precedence``) of its last adapter set
    to the threshold of ``PRECEDENCE_GRID`` (or none) under which the update's selection score
    (``update_scores``) on ``dev`` is highest: the new type's false positives on names the source is
    sure are an old type, the one way an isolated update changes the old types, against the new
    type's recall where the source was sure and wrong. Each threshold costs one Viterbi pass over
    dev's scores, computed once; a tie keeps the lesser intervention."""
    import tensorflow as tf

    from .evaluation import evaluate
    from .model import precedence_masks, without_labels_where_sure

    heads = tagger.heads
    earlier, own = precedence_masks(heads, len(tagger.labels), len(heads["adapters"]) - 1)
    if not own.any():  # a known type's residual: its labels are old ones
        return tagger
    network, constrained, labels = tagger.network, tagger.constrained, tagger.labels
    scores = scores if scores is not None else emission_scores(tagger, dev)
    probability = tf.function(lambda p, n: network.earlier_entity_probability(p, n, constrained, earlier),
                              reduce_retracing=True)
    decode = tf.function(lambda p, n: network.crf.decode(p, n, constrained)[0], reduce_retracing=True)
    probabilities = [probability(p, n) for p, n in zip(scores.potentials, scores.lengths)]
    gold = [[labels[i] for i in row[:n]] for batch, lengths in zip(scores.gold, scores.lengths)
            for row, n in zip(batch.numpy(), lengths.numpy())]
    gold = [tagging.convert(row, "IOB2") for row in gold]

    def score_at(threshold: Optional[float]) -> DevScore:
        predicted = []
        for potentials, lengths, chance in zip(scores.potentials, scores.lengths, probabilities):
            if threshold is not None:
                potentials = without_labels_where_sure(potentials, chance, threshold, own)
            tags = decode(potentials, lengths).numpy()
            predicted += [tagging.convert([labels[i] for i in row[:n]], "IOB2") for row, n in zip(tags, lengths.numpy())]
        return update_scores(evaluate(gold, predicted), gold_types, retention_weight)

    results = [(threshold, score_at(threshold)) for threshold in (None,) + PRECEDENCE_GRID]
    chosen, best = results[0]
    for threshold, scored in results[1:]:
        if scored.score > best.score:
            chosen, best = threshold, scored
    none = results[0][1]
    if chosen is None:
        say(f"precedence: none (the dev score {none.score:.2f} is highest without it)")
        return tagger
    say(f"precedence: tokens the source model puts inside an entity of its own types with probability ≥ "
        f"{chosen} stay out of {', '.join(gold_types)} (dev target F1 {none.details['target_f1']:.2f} -> "
        f"{best.details['target_f1']:.2f}, retention F1 {none.details['retention_f1']:.2f} -> "
        f"{best.details['retention_f1']:.2f})")
    adapters = [dict(spec) for spec in heads["adapters"]]
    adapters[-1]["precedence"] = chosen
    return rebuilt(tagger, {**heads, "adapters": adapters})


def rebuilt(tagger: Tagger, heads: dict) -> Tagger:
    """A new ``Tagger`` like ``tagger`` (its weights copied) whose network has ``heads``."""
    from .model import assign_weights, weight_arrays

    copy = Tagger(tagger.hp, tagger.words, tagger.chars, tagger.labels, word_dim=tagger.word_dim,
                  history=tagger.history, provenance=tagger.provenance, heads=heads)
    assign_weights(copy.network, weight_arrays(tagger.network))
    return copy


# the pipeline -------------------------------------------------------------------------------------
@dataclasses.dataclass
class UpdateResult:
    tagger: Tagger
    folder: Optional[Path]
    new_types: List[str]
    forgotten_types: List[str]
    pseudo_labels: Dict[str, int]
    dev_report: Report  # on the dev split: gold target spans plus the teacher's other types
    dev_scores: dict  # the best epoch's target F1, retention F1 and selection score
    best_epoch: int
    messages: List[str]
    history: List[dict]
    settings: UpdateSettings
    test_report: Optional[Report] = None
    seconds: float = 0.0


def update(model, target, entity_types: Sequence[str], output, *, options: Optional[Mapping[str, object]] = None,
           forget: bool = False, dev=None, test=None, annotated: bool = False, embeddings=None,
           scheme: Optional[str] = None, force: bool = False, resume: bool = False, restart: bool = False,
           verbose: bool = True, devices=None) -> UpdateResult:
    """Update a trained model with target data annotated only with ``entity_types``.

    ``annotated``: the target data's spans of *other* types are complete too (e.g. the output of
    ``annotate``, corrected by hand) and are used as given instead of the teacher's predictions.
    ``options``: the one mapping of settings (``update_options``: ``UpdateSettings`` fields, and
    training fields of the source's hyperparameters to change; the training budget,
    ``UPDATE_BUDGET``, is the package default, not the source's, unless given). The source model is
    never written. ``resume`` carries on from
    the checkpoint of an interrupted update to the same ``output``; ``restart`` drops it.
    ``devices`` (``devices.Devices``): where to fine-tune.

    The steps: the target's splits and types (``_target_splits``); the source labels the other types
    (``pseudo.annotate``); surgery widens the network and grows its vocabularies (``_operate``); the
    network is fine-tuned with the method's objective, early stopping on ``update_selection``; the
    update is recorded in the model's provenance (``_update_record``) and the model saved.
    """
    from .model_io import load_tagger
    from .pseudo import annotate
    from .progress import Progress
    from .training import Trainer, seed_everything

    started = time.perf_counter()
    settings, hyperparameters = update_options(options)
    progress = Progress(verbose)
    messages: List[str] = []

    def say(message: str) -> None:
        messages.append(message)
        progress.log(message)

    output = Path(output) if output is not None else None
    if output is not None and not isinstance(model, Tagger) and output.resolve() == Path(model).resolve():
        raise NeuronerError(f"{output} is the source model; an update is always written to a new folder")
    inputs = [None if isinstance(model, Tagger) else model, embeddings] + [path_of(x) for x in (target, dev, test)]
    with RunFolder(output, force=force, resume=resume, restart=restart, inputs=inputs,
                   command="update", say=say, devices=devices) as run:
        source = model if isinstance(model, Tagger) else load_tagger(model)
        hp = update_hyperparameters(source, hyperparameters)
        seed_everything(hp.seed)
        splits = _target_splits(source, target, entity_types, dev, scheme, annotated, forget, settings, hp, say)
        settings = settings.for_task(splits.new_types, splits.known)
        if settings.method == "column" and "patience_steps" not in hyperparameters:
            hp = hp.replace(patience_steps=COLUMN_PATIENCE_STEPS)
        if settings.method != "isolate":  # isolate's frozen source reads no vectors
            embeddings = vectors_for_update(source, embeddings, say)
        annotated_train = annotate(source, splits.train, splits.gold_types)
        annotated_dev = annotate(source, splits.dev, splits.gold_types)
        uses_pseudo_labels = settings.uses_pseudo_labels
        say(f"method {settings.method}: " + _describe_method(settings))
        say(f"the source model's predictions on {len(splits.train)} target sentences: "
            + (", ".join(f"{k} {v}" for k, v in annotated_train.added.items()) or "none")
            + (" (used as labels)" if uses_pseudo_labels else
               " (distilled as marginals)" if settings.method in DISTILLING_METHODS else " (not used)"))
        tagger = _operate(source, splits, forget, settings, hp, embeddings, say)

        teacher_marginals = teacher_states = None
        wants_marginals = settings.method in DISTILLING_METHODS + ("cpfd",) or settings.min_confidence > 0
        if wants_marginals or settings.method == "distill-states":
            source_items = encode([s.tokens for s in splits.train.sentences], source.encoder)
            teacher_marginals = source.predict_marginals(source_items) if wants_marginals else None
            teacher_states = source.predict_states(source_items) if settings.method == "distill-states" else None
        training_corpus = annotated_train.corpus if uses_pseudo_labels else splits.train.converted("IOB2")
        items = tagger.encode_corpus(training_corpus)
        if settings.method == "cpfd":
            items = confident_pseudo_labels(items, teacher_marginals, tagger.labels, splits.gold_types)
        items = with_update_targets(items, settings, tagger.labels, splits.gold_types, teacher_marginals,
                                    teacher_states)
        run.check_fingerprint({"source model": source_fingerprint(source),
                               "target data": fingerprint_of_corpus(splits.target),
                               "dev data": fingerprint_of_corpus(splits.dev),
                               "vectors": file_fingerprint(embeddings) if embeddings else "none",
                               "settings": fingerprint_of_value([settings.to_dict(), hp.to_dict(), splits.gold_types,
                                                                 forget])})
        staging = run.checkpoint
        importance = None
        if settings.method == "ewc":
            importance = widened_importance(fisher_information(source, annotated_train.corpus), tagger)
        frozen, masks = settings.frozen_layers(), None
        if settings.isolates:
            frozen, masks = isolated_training(tagger, splits.entity_types)
        trainer = Trainer(tagger, learning_rate=settings.training_rate, progress=progress, checkpoint_dir=staging,
                          log_dir=staging / "logs" if staging else None, objective=settings.objective(),
                          frozen=frozen, update_masks=masks, importance=importance, devices=devices)
        source_history = list(source.history)
        selection = update_selection(annotated_dev.corpus, splits.gold_types, settings.retention_weight,
                                     earlier=_epoch_scores(run.saved_state) if run.resuming else ())
        if settings.isolates and _too_few_to_select(splits, say):
            selection = None
            trainer.hp = dataclasses.replace(trainer.hp, max_epochs=fixed_budget_epochs(len(items), trainer.hp))
        trainer.fit(items, selection=selection, resume=run.resuming)
        # dev's emission scores, computed once: the precedence and the temperature only re-run the CRF
        scores = emission_scores(tagger, annotated_dev.corpus)
        if settings.isolates and settings.precedence == "dev":
            tagger = with_chosen_precedence(tagger, annotated_dev.corpus, splits.gold_types,
                                            settings.retention_weight, say, scores)
        calibrated = calibrate_on_dev(tagger, annotated_dev.corpus, training_corpus, say, scores)
        update_history = tagger.history
        tagger.history = source_history
        dev_report = tagger.evaluate(annotated_dev.corpus)[0]
        best = update_scores(dev_report, splits.gold_types, settings.retention_weight)
        dev_scores = {"score": best.score, **best.details}
        say(f"best epoch {trainer.best_epoch}: dev target F1 {best.details['target_f1']:.2f} "
            f"({', '.join(splits.gold_types)}, gold), retention F1 {best.details['retention_f1']:.2f} "
            f"(agreement with the source model on the other types)")
        test_report = None
        if test is not None:
            test_report = tagger.evaluate(require_labels(load_corpus(test, scheme), "test"))[0]
            say(f"test F1 {test_report.f1:.2f}")
        seconds = round(time.perf_counter() - started, 1)
        tagger.provenance.setdefault("updates", []).append(_update_record(
            splits, target, forget, settings, hp, annotated_train.added, trainer.best_epoch, dev_scores,
            update_history, seconds))
        if output is not None:
            # the dev report mixes gold target spans and the source's labels: never shown as "dev F1"
            reports = {"dev_with_source_labels": dev_report.to_dict(), "dev_scores": dev_scores,
                       "test": test_report.to_dict() if test_report else None, "best_epoch": trainer.best_epoch,
                       "calibration": calibrated}
            atomic_write_text(staging / "evaluation.json", json.dumps(reports, indent=2) + "\n")
            run.save_model(tagger, update_history, "update.png", extra_names=("evaluation.json",))
            say(f"updated model saved to {output}" if run.writes_model else "worker done (the chief saves the model)")
        return UpdateResult(tagger, output, splits.new_types, splits.known if forget else [], annotated_train.added,
                            dev_report, dev_scores, trainer.best_epoch, messages, update_history, settings,
                            test_report, seconds)


MIN_DEV_TARGET_SPANS = 10  # fewer gold target spans in dev cannot tell one epoch from another
FIXED_BUDGET_STEPS = 1500  # optimizer steps of an update that cannot select on dev


def _too_few_to_select(splits: "TargetSplits", say) -> bool:
    """Whether dev holds too few gold target spans to select an epoch on. Only ``isolate`` then trains
    for a fixed budget: its old types are safe whatever the epoch; the other methods keep selecting
    on dev (a later epoch would cost them the old types)."""
    found = sum(span_counts(splits.dev).get(kind, 0) for kind in splits.gold_types)
    if found >= MIN_DEV_TARGET_SPANS:
        return False
    say(f"the dev split holds {found} target span{'s' if found != 1 else ''}: too few to select an epoch on; "
        f"training for a fixed budget of about {FIXED_BUDGET_STEPS} steps and keeping the last epoch "
        f"(pass --dev FILE with more {', '.join(splits.gold_types)} spans to select on dev)")
    return True


def fixed_budget_epochs(sentences: int, hp: Hyperparameters) -> int:
    """Epochs for about ``FIXED_BUDGET_STEPS`` steps, at least 5 and at most ``hp.max_epochs``."""
    per_epoch = max(1, -(-sentences // hp.batch_size))
    return int(min(hp.max_epochs, max(5, -(-FIXED_BUDGET_STEPS // per_epoch))))


def isolated_training(tagger: Tagger, types: Sequence[str]):
    """What the ``isolate`` method trains: (the layers to freeze: the source network and the adapters
    of earlier updates, {"crf/transitions": 0/1 mask of the entries into or out of the labels of
    ``types``}). Surgery gave the last adapter the labels of ``types``."""
    from .surgery import TRANSITIONS

    earlier = [f"adapter_{number}" for number in range(len(tagger.heads["adapters"]) - 1)]
    frozen = tuple(name for name in ISOLATE_FROZEN if getattr(tagger.network, name, None) is not None) + tuple(earlier)
    owned = label_ids_of_types(tagger.labels, types)
    mask = np.zeros((len(tagger.labels) + 2,) * 2, np.float32)
    mask[owned, :] = 1.0
    mask[:, owned] = 1.0
    return frozen, {TRANSITIONS: mask}


def fisher_information(source: Tagger, corpus: Corpus, limit: int = 500) -> Dict[str, np.ndarray]:
    """The diagonal Fisher information of ``source``'s weights, by path: the mean over (at most
    ``limit``) sentences of ``corpus`` of the squared gradient of the log-likelihood of the source's
    own predictions (no labels needed; the target types' gold spans are not the source's to score)."""
    import tensorflow as tf

    from .batching import pad
    from .model import CHAR_INPUT, WORD_INPUT

    network = source.network
    variables = network.trainable_variables
    sentences = corpus.sentences[:limit]
    items = encode([s.tokens for s in sentences], source.encoder, source.predict(sentences),
                   {label: i for i, label in enumerate(source.labels)})

    @tf.function(reduce_retracing=True)
    def squared_gradients(words, chars, labels):
        with tf.GradientTape() as tape:
            potentials = network({WORD_INPUT: words, CHAR_INPUT: chars}, training=False)
            loss = -tf.reduce_sum(network.crf.log_likelihood(potentials, labels, network.lengths({WORD_INPUT: words})))
        return [tf.square(tf.convert_to_tensor(g)) if g is not None else tf.zeros_like(v)
                for g, v in zip(tape.gradient(loss, variables), variables)]

    totals = [np.zeros(v.shape, np.float32) for v in variables]
    for index in range(len(items)):
        batch = pad(items, [index])
        for total, value in zip(totals, squared_gradients(batch.words, batch.chars, batch.labels)):
            total += value.numpy()
    return {v.path: total / max(len(items), 1) for v, total in zip(variables, totals)}


def widened_importance(fisher: Dict[str, np.ndarray], tagger: Tagger) -> Dict[str, np.ndarray]:
    """The source's Fisher information laid out on the updated network's weights: old entries where
    surgery put them (the CRF's start and end rows moved), 0 for what surgery added."""
    from .surgery import TRANSITIONS, crf_index_map

    result = {}
    for variable in tagger.network.model_weights():
        value = fisher.get(variable.path)
        if value is None:
            continue
        widened = np.zeros(variable.shape, np.float32)
        if variable.path == TRANSITIONS:
            index = crf_index_map(value.shape[0] - 2, widened.shape[0] - 2)
            widened[np.ix_(index, index)] = value
        else:
            widened[tuple(slice(0, n) for n in value.shape)] = value
        result[variable.path] = widened
    return result


def update_options(options: Optional[Mapping[str, object]]):
    """(``UpdateSettings``, hyperparameter changes) from the one mapping of an update's settings."""
    setting_values, hyperparameters = split_update_options(options or {})
    return make_settings(setting_values), hyperparameters


def update_hyperparameters(source: Tagger, changes: Mapping[str, object]) -> Hyperparameters:
    """The source's hyperparameters with the update's training budget and the changes asked for."""
    # How long to train is the update's own business: the source's budget was set for its own data
    # (a protocol's M_S stopped at 30 epochs with patience 5 gave an update on 180 sentences 180 steps).
    budget = {name: getattr(Hyperparameters, name) for name in UPDATE_BUDGET}
    return Hyperparameters.from_dict({**source.hp.to_dict(), **budget, **changes})


@dataclasses.dataclass
class TargetSplits:
    target: Corpus  # everything the user gave
    train: Corpus  # what the update learns from
    dev: Corpus  # early stopping
    entity_types: List[str]  # the target types asked for (-e)
    gold_types: List[str]  # the types a person annotated
    known: List[str]  # target types the source model has
    new_types: List[str]  # target types it lacks


def _target_splits(source: Tagger, target, entity_types, dev, scheme, annotated: bool, forget: bool,
                   settings: UpdateSettings, hp: Hyperparameters, say) -> TargetSplits:
    """Read and check the target data, say what each type will go through, set aside the spans of
    types not asked for (unless ``annotated``), split off dev."""
    entity_types = check_types(entity_types)
    target_corpus = require_labels(load_corpus(target, scheme), "target")
    if target_corpus.scheme != "IOB2":
        say(f"target labels are written in {target_corpus.scheme}; read as entity spans and converted to "
            f"{tagging.canonical_scheme(hp.tag_scheme)}")
    check_target_has_types(target_corpus, entity_types, source, path_of(target))
    gold_types = list(dict.fromkeys(list(entity_types) + (target_corpus.entity_types() if annotated else [])))
    known = [t for t in entity_types if t in source.entity_types]
    new_types = [t for t in entity_types if t not in source.entity_types]
    _announce_types(say, source, hp, known, new_types, forget)
    _check_other_types_are_known(target_corpus, entity_types, gold_types, source, path_of(target))
    dev_corpus = require_labels(load_corpus(dev, scheme), "dev") if dev is not None else None
    if dev_corpus is not None:
        _check_other_types_are_known(dev_corpus, entity_types, gold_types, source, path_of(dev))
    if not annotated:
        target_corpus = _without_other_types(target_corpus, entity_types, path_of(target), say)
        dev_corpus = dev_corpus and _without_other_types(dev_corpus, entity_types, path_of(dev), say)
    train_part = target_corpus
    if dev_corpus is None:
        train_part, dev_corpus = hold_out_dev(target_corpus, settings.dev_fraction, hp.seed, say,
                                              stratify=gold_types)
    _check_split_counts(say, train_part, dev_corpus, gold_types, dev is None)
    return TargetSplits(target_corpus, train_part, dev_corpus, entity_types, gold_types, known, new_types)


def _operate(source: Tagger, splits: TargetSplits, forget: bool, settings: UpdateSettings, hp: Hyperparameters,
             embeddings, say) -> Tagger:
    """The source network rebuilt for the new labels, words and characters (``surgery.ModelSurgeon``)."""
    from .embeddings import find_vector, load_vectors
    from .surgery import ModelSurgeon
    from .vocabulary import count_words, replace_digits

    vectors = load_vectors(embeddings) if embeddings else None
    if vectors is not None and vectors.vector_size != source.word_dim:
        raise DataFormatError(f"the vectors have {vectors.vector_size} dimensions, the model's word embeddings "
                              f"{source.word_dim}: use vectors of the dimension the model was trained with",
                              embeddings)
    normalize = replace_digits if hp.replace_digits else (lambda t: t)
    counts = count_words((s.tokens for s in splits.train.sentences), normalize)
    new_words = sorted(w for w, c in counts.items() if w not in source.words and
                       (c >= hp.min_word_count or (vectors is not None and find_vector(vectors, w) is not None)))
    if vectors is not None:
        found = sum(find_vector(vectors, w) is not None for w in new_words)
        say(f"embeddings {embeddings}: {found}/{len(new_words)} new words have a pretrained vector")
    new_chars = sorted({c for s in splits.train.sentences for t in s.tokens for c in normalize(t)}
                       - set(source.chars.entries))
    isolate = splits.entity_types if settings.isolates else ()
    if isolate:  # the frozen encoders must see every input as the source saw it; a column has words of its own
        new_chars = []
        if settings.method == "column":
            new_words = new_words + _dev_words_with_vectors(splits.dev, vectors, set(new_words), source, normalize)
        else:
            new_words = []
            if vectors is not None:
                say("isolate: the vectors are not used (the source's word embeddings stay frozen)")
    tagger = ModelSurgeon(source, hp.seed).operate(
        new_types=splits.new_types, forget_types=splits.known if forget else (), new_words=new_words,
        new_chars=new_chars, vectors=vectors, init=settings.init, isolate=isolate,
        adapter_units=settings.adapter_units, column=settings.method == "column",
        column_chars=settings.column_characters)
    say(f"surgery: {len(source.labels)} -> {len(tagger.labels)} labels, vocabulary {len(source.words)} -> "
        f"{len(tagger.words)} words, {len(source.chars)} -> {len(tagger.chars)} characters")
    tagger.hp = hp
    return tagger


def vectors_for_update(source: Tagger, embeddings, say):
    """The vectors an update gives its new words: ``embeddings`` when given, else those the source
    model was trained with (its provenance names the file) when the file is still there."""
    recorded = (source.provenance or {}).get("embeddings")
    if embeddings is not None or not recorded:
        return embeddings
    if Path(recorded).is_file():
        say(f"vectors: {recorded}, which the source model was trained with (--embeddings FILE gives others)")
        return recorded
    say(f"the source model was trained with the vectors {recorded}, which are not there: new words start "
        f"without pretrained vectors (--embeddings FILE gives them)")
    return None


def _dev_words_with_vectors(dev: Corpus, vectors, taken, source: Tagger, normalize) -> List[str]:
    """The dev split's words the source lacks that have a pretrained vector (a column's rows for
    them start from it; a dev word without one stays UNK, as a row no sentence trains would be noise)."""
    from .embeddings import find_vector

    if vectors is None:
        return []
    words = {normalize(t) for s in dev.sentences for t in s.tokens}
    return sorted(w for w in words if w not in taken and w not in source.words and find_vector(vectors, w) is not None)


def _update_record(splits: TargetSplits, target, forget: bool, settings: UpdateSettings, hp: Hyperparameters,
                   pseudo_labels: dict, best_epoch: int, dev_scores: dict, history: list, seconds: float) -> dict:
    """What the model's provenance keeps of an update."""
    return {"target": describe_corpus(splits.train, "target", path_of(target)),
            "entity_types": splits.entity_types,
            "gold_types": splits.gold_types, "new_types": splits.new_types,
            "forgotten_types": splits.known if forget else [], "settings": settings.to_dict(),
            "hyperparameters": {name: getattr(hp, name) for name in UPDATE_HYPERPARAMETERS},
            "pseudo_labels": pseudo_labels, "best_epoch": best_epoch, "dev": dev_scores,
            "epochs": len(history), "history": history, "seconds": seconds}


def _epoch_scores(state: Optional[dict]) -> List[float]:
    """The unsmoothed epoch scores recorded in a checkpoint's history (to resume the smoothing)."""
    return [record["dev_details"]["epoch_score"] for record in (state or {}).get("history", [])
            if record.get("dev_details")]


def source_fingerprint(source: Tagger) -> str:
    """The source model's labels, vocabularies and weights."""
    digest = hashlib.sha256(fingerprint_of_value([source.labels, source.words.entries, source.chars.entries]).encode())
    for weight in source.network.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _check_other_types_are_known(corpus: Corpus, entity_types, gold_types, source: Tagger, path) -> None:
    """Every type the target annotates must be a target type (-e) or one the model knows."""
    unknown = [t for t in corpus.entity_types() if t not in entity_types and t not in source.entity_types]
    if unknown:
        names = ", ".join(unknown)
        raise UpdateError(f"{path or 'the target data'}: annotates {names}, which is neither a target type nor "
                          f"known to the model ({', '.join(source.entity_types)}); add -e {unknown[0]} to learn "
                          f"it, or remove those labels")


def _without_other_types(corpus: Corpus, entity_types, path, say) -> Corpus:
    """``corpus`` without its spans of types other than ``entity_types`` (types the model knows), and
    a line saying so: without ``annotated``, the model's own predictions label those types, for every
    method and for early stopping alike."""
    others = [t for t in corpus.entity_types() if t not in entity_types]
    if not others:
        return corpus
    names = ", ".join(others)
    which = "are not target types" if len(others) > 1 else "is not a target type"
    say(f"{path or 'the target data'}: annotates {names}, which {which} (-e {', '.join(entity_types)}): those labels "
        f"are ignored and the model's own predictions are used for {names}; pass -e {others[0]} to learn them too, "
        f"or --annotated to use them as given")
    return corpus.keeping_types(entity_types)


def _announce_types(say, source: Tagger, hp, known, new_types, forget: bool) -> None:
    if forget and new_types:
        raise UpdateError(f"--forget re-learns types the model has; {', '.join(new_types)} "
                            f"{'is' if len(new_types) == 1 else 'are'} new to it (it knows "
                            f"{', '.join(source.entity_types)}). Drop --forget to add "
                            f"{'it' if len(new_types) == 1 else 'them'}")
    for kind in known:
        if forget:
            say(f"{kind}: the model knows this type; its weights are re-drawn and it is learnt again from "
                f"the target data (task ii)")
        else:
            say(f"{kind}: the model already knows this type; fine-tuning on the target data adds to it "
                f"(task i). Use --forget to re-learn it from scratch instead")
    for kind in new_types:
        say(f"{kind}: new to the model; labels {', '.join(tagging.labels_for_types([kind], hp.tag_scheme)[1:])} "
            f"are added (task iii)")


def _describe_method(settings: UpdateSettings) -> str:
    return {"column": "the source network frozen; the target labels learnt by a column of their own (a trainable "
                      "copy of the source's word rows, token BiLSTM and hidden layer, with the target's own words, "
                      "lateral inputs from the frozen source) and their transitions, by the partial likelihood",
            "isolate": f"the source network frozen; the target labels learnt by an adapter of their own "
                       f"({settings.adapter_units} units) and their transitions, by the partial likelihood",
            "ewc": f"distill plus EWC (Fisher of the source on the target sentences, weight {settings.ewc_weight})",
            "distill-states": f"distill plus the token BiLSTM states distilled (weight {settings.states_weight})",
            "cpfd": "self-training whose pseudo-labels above their type's median entropy are left open",
            "distill": f"gold spans by likelihood, the other types distilled from the source model's marginals "
                       f"(weight {settings.distill_weight})",
            "paper": "the paper's method: self-training at learning rate 0.005",
            "self-training": "gold spans plus the source model's predictions as labels"
                             + (f", tokens under confidence {settings.min_confidence} left open"
                                if settings.min_confidence > 0 else ""),
            "l2-sp": f"self-training plus L2-SP towards the source weights (weight {settings.l2sp_weight})",
            "finetune": "gold spans only, every other token O (no protection against forgetting)"}[settings.method]


def _check_split_counts(say, train: Corpus, dev: Corpus, gold_types, dev_was_split: bool) -> None:
    """An error when the training part has no example of a gold type; a warning when dev has few."""
    train_counts, dev_counts = span_counts(train), span_counts(dev)
    for kind in gold_types:
        in_train, in_dev = train_counts.get(kind, 0), dev_counts.get(kind, 0)
        if in_train == 0:
            raise NeuronerError(f"the training part of the target data has no {kind} span ({in_dev} in dev); "
                                f"annotate more sentences" + (" or pass --dev" if dev_was_split else ""))
        if in_dev < 10:
            say(f"warning: only {in_dev} {kind} spans in the dev split ({in_train} for training): early "
                f"stopping will be noisy; pass --dev FILE or a larger dev_fraction")

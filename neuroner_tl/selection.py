"""Active learning: the sentences or documents most worth annotating, by the CRF's uncertainty and their diversity."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import tags as tagging
from .errors import NeuronerError
from .predicted import SentenceDistribution
from .tokenizer import split_sentences
from .vocabulary import replace_digits

MEASURES = ("least-confidence", "entropy", "changes")
DEFAULT_MEASURE = "least-confidence"
PER = ("token", "item")
DEFAULT_DIVERSITY = 1.0


@dataclasses.dataclass(frozen=True)
class SelectionSettings:
    """How items are scored and chosen (docs/active_learning.md).

    ``measure``, how unsure the CRF is of a sentence, each from one forward–backward pass on the
    calibrated CRF (``NeuronerModel.uncertainty``; ``calibrated=False`` on the tagger: the raw one):

    - ``least-confidence``: ``-log P(ŷ | x)``, the Viterbi path's negative log-probability (least
      confidence in log space, where it adds over sentences; ``1 - exp(-score)`` is the textbook
      ``1 - P(ŷ | x)``);
    - ``entropy``: the sum over tokens of each token's marginal entropy ``-Σ_j p_tj log p_tj``
      (token entropy, Settles & Craven 2008);
    - ``changes``: the sum over tokens of ``1 - P(y_t = ŷ_t | x)``, the expected number of tokens
      whose label an annotator changes if the true labels follow the CRF's distribution.

    The default is least confidence per token, the length-normalised least confidence (MNLP) that
    Shen et al. (ICLR 2018, "Deep Active Learning for Named Entity Recognition") found best among
    the uncertainty measures for a CRF tagger. Of the three it is the one that judges the tagging as
    a whole, as the CRF models it: two tokens that are unsure together (where an entity ends) are one
    doubt, not two, while entropy and changes add up every token's doubt as if independent. Entropy
    also grows with probability spread among labels nobody would pick, which right after a widening
    for a new type (several new labels with a little mass each) measures how young those labels are
    rather than the sentence. Changes is the easiest to read (expected corrections).

    ``types`` (the types an update is learning; empty: every label): only those types' labels count,
    every other label, O included, being one class "not these types". Least confidence becomes
    ``-log P`` that the types' entities are exactly the path's whatever the other types do
    (``crf.crf_projected_log_likelihood``); entropy and changes are taken over the collapsed
    marginals. A sentence the model doubts only between two old types then scores 0: annotating it
    would teach the new type nothing. A model that lacks the types cannot score them: before the
    first update, score over every label (the source model's doubt about what is an entity).

    ``per="token"`` divides an item's total by its number of tokens: uncertainty per token an
    annotator reads, so that long sentences do not win by their length alone (unnormalised least
    confidence picks the longest sentences, Shen et al.); ``per="item"``: the total. A document's
    total is the sum of its sentences' (they are tagged independently, so its path's probability is
    the product of theirs): per token, a document scores the token-weighted mean of its sentences.

    ``diversity``: items are chosen greedily, each step the one with the highest
    ``score · (1 - s) ** diversity``, ``s`` its largest cosine similarity to the items already
    chosen on TF-IDF vectors of lowercased words (digits as 0) and word bigrams (``greedy_order``).
    A near-duplicate of a chosen item scores near 0; an exact duplicate (the same tokens) is no
    candidate at all, so it is never chosen twice. 0: uncertainty alone.
    """

    measure: str = DEFAULT_MEASURE
    per: str = "token"
    types: Tuple[str, ...] = ()
    diversity: float = DEFAULT_DIVERSITY

    def __post_init__(self):
        object.__setattr__(self, "types", tuple(dict.fromkeys(self.types)))
        if self.measure not in MEASURES:
            raise NeuronerError(f"--measure must be one of {', '.join(MEASURES)}, not {self.measure!r}")
        if self.per not in PER:
            raise NeuronerError(f"--per must be one of {', '.join(PER)}, not {self.per!r}")
        diversity = self.diversity
        if isinstance(diversity, bool) or not isinstance(diversity, (int, float)) or not math.isfinite(diversity) \
                or diversity < 0:
            raise NeuronerError(f"--diversity must be a number of at least 0 (0: uncertainty alone), not {diversity!r}")

    def describe(self) -> str:
        """``least-confidence per token over Address``: what the scores are, for the output."""
        over = f" over {', '.join(self.types)}" if self.types else ""
        return f"{self.measure} per {self.per}{over}"


# Which labels count ----------------------------------------------------------------------------
def kept_labels(labels: Sequence[str], types: Sequence[str]) -> np.ndarray:
    """One boolean per label: whether its type is one of ``types`` (every label when ``types`` is empty)."""
    if not types:
        return np.ones(len(labels), bool)
    wanted = set(types)
    return np.array([tagging.split_tag(label)[1] in wanted for label in labels], bool)


def checked_types(types: Sequence[str], known: Sequence[str]) -> Tuple[str, ...]:
    """``types``, each one the model's (``known``); a type it lacks is an error naming it."""
    for kind in types:
        if kind not in known:
            raise NeuronerError(f"--types {kind}: the model has no type {kind!r} (its types: {', '.join(known)}); "
                                f"a type it has not learnt yet cannot be scored: leave --types out")
    return tuple(dict.fromkeys(types))


def newest_types(provenance: dict) -> Tuple[str, ...]:
    """The types a model's last update learnt (``provenance.json``'s last ``updates`` record)."""
    updates = provenance.get("updates") or []
    if not updates:
        raise NeuronerError("--newest: the model was never updated, so it has no newest types; name them with "
                            "--types or leave both out")
    return tuple(updates[-1].get("entity_types", ()))


# One sentence ----------------------------------------------------------------------------------
def collapsed(marginals: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``[T, K]`` marginals of the kept labels, plus a last column for all the others together when
    some label is not kept."""
    if kept.all():
        return marginals
    return np.concatenate([marginals[:, kept], marginals[:, ~kept].sum(axis=1, keepdims=True)], axis=1)


def token_entropy(probabilities: np.ndarray) -> np.ndarray:
    """``[T]``: each row's entropy in nats (``0 log 0 = 0``)."""
    safe = np.where(probabilities > 0, probabilities, 1.0)
    return -(probabilities * np.log(safe)).sum(axis=1)


def token_changes(distribution: SentenceDistribution, kept: np.ndarray) -> np.ndarray:
    """``[T]``: the probability that a token's label is not the path's (for a label that is not kept:
    that it is a kept one)."""
    marginals, tags = distribution.marginals, np.asarray(distribution.tag_ids, int)
    positions = np.arange(len(tags))
    agree = np.where(kept[tags], marginals[positions, tags], marginals[:, ~kept].sum(axis=1))
    return np.clip(1.0 - agree, 0.0, 1.0)


def least_confidence(distribution: SentenceDistribution) -> float:
    """``-log P(the kept labels as the path puts them)``, never below 0 (float32 rounding)."""
    return max(0.0, -float(distribution.kept_log_likelihood))


def sentence_total(distribution: SentenceDistribution, kept: np.ndarray, measure: str) -> float:
    """A sentence's uncertainty by ``measure`` (one of ``MEASURES``), summed over its tokens."""
    if measure == "least-confidence":
        return least_confidence(distribution)
    if measure == "entropy":
        return float(token_entropy(collapsed(distribution.marginals, kept)).sum())
    if measure == "changes":
        return float(token_changes(distribution, kept).sum())
    raise ValueError(f"unknown measure {measure!r}")


def item_score(totals: Sequence[float], lengths: Sequence[int], per: str) -> float:
    """An item's score from its sentences' totals: their sum, divided by its tokens with ``per="token"``
    (0 for an item without tokens)."""
    total, tokens = float(sum(totals)), int(sum(lengths))
    if per == "item":
        return total
    return total / tokens if tokens else 0.0


# Scoring with a tagger ------------------------------------------------------------------------
TokenLists = Sequence[Sequence[str]]


def item_scores(tagger, items: Sequence[TokenLists], settings: SelectionSettings = SelectionSettings(),
                batch_size: int = 128) -> List[float]:
    """Each item's score (an item: the token lists of its sentences), by ``settings``; the tagger's
    ``calibrated`` and ``constrained`` apply. Sentences without tokens count for nothing."""
    from .batching import check_tokens, encode

    kept = kept_labels(tagger.labels, checked_types(settings.types, tagger.entity_types))
    flat = [list(tokens) for item in items for tokens in item if len(tokens)]
    check_tokens(flat)
    distributions = iter(tagger.predict_distributions(encode(flat, tagger.encoder), kept, batch_size)) if flat \
        else iter(())
    scores = []
    for item in items:
        lengths = [len(tokens) for tokens in item if len(tokens)]
        totals = [sentence_total(next(distributions), kept, settings.measure) for _ in lengths]
        scores.append(item_score(totals, lengths, settings.per))
    return scores


def document_uncertainty(tagger, documents: Sequence[Union[str, object]],
                         settings: SelectionSettings = SelectionSettings(), batch_size: int = 128) -> List[float]:
    """Each document's score (higher: more worth annotating), by ``settings`` (default: least confidence
    per token over every label): what a Label Studio backend reports per task. A document is a text,
    or anything with a ``text`` (``spans.SpanDocument``); it is split into sentences and tokens as
    every reader of raw text does (``tokenizer.split_sentences``)."""
    texts = [d if isinstance(d, str) else d.text for d in documents]
    items = [[[token[0] for token in sentence] for sentence in split_sentences(text)] for text in texts]
    return item_scores(tagger, items, settings, batch_size)


# Diversity -----------------------------------------------------------------------------------
def surface_features(tokens: Sequence[str]) -> List[str]:
    """What two items are compared by: their words lowercased with digits as 0, and word bigrams."""
    words = [replace_digits(token.lower()) for token in tokens]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class FeatureColumns(NamedTuple):
    """TF-IDF vectors (L2-normalised rows) of ``items`` items, held by feature: the items that have
    feature ``f`` are ``items[start[f]:start[f + 1]]`` with weights ``weights[...]``; ``rows[i]`` is
    item ``i``'s ``(features, weights)``."""

    start: np.ndarray
    item_ids: np.ndarray
    weights: np.ndarray
    rows: List[Tuple[np.ndarray, np.ndarray]]


def tfidf_columns(feature_lists: Sequence[Sequence[str]]) -> FeatureColumns:
    """TF-IDF (``tf · (log((1 + N) / (1 + df)) + 1)``, scikit-learn's smoothed idf), each row of unit length."""
    index: Dict[str, int] = {}
    counted = [Counter(index.setdefault(f, len(index)) for f in features) for features in feature_lists]
    frequency = np.zeros(len(index))
    for counts in counted:
        frequency[list(counts)] += 1
    idf = np.log((1 + len(counted)) / (1 + frequency)) + 1
    rows, entries = [], []
    for item, counts in enumerate(counted):
        features = np.array(sorted(counts), int)
        values = np.array([counts[f] for f in features], float) * idf[features] if len(features) else np.zeros(0)
        norm = np.linalg.norm(values)
        values = values / norm if norm else values
        rows.append((features, values))
        entries.extend((f, item, v) for f, v in zip(features.tolist(), values.tolist()))
    entries.sort()
    by_feature = np.array([e[0] for e in entries], int)
    start = np.searchsorted(by_feature, np.arange(len(index) + 1))
    return FeatureColumns(start, np.array([e[1] for e in entries], int), np.array([e[2] for e in entries], float),
                          rows)


def similarities_to(columns: FeatureColumns, item: int) -> np.ndarray:
    """Cosine similarity of item ``item`` to every item, ``[N]``."""
    result = np.zeros(len(columns.rows))
    features, values = columns.rows[item]
    for feature, value in zip(features, values):
        begin, end = columns.start[feature], columns.start[feature + 1]
        result[columns.item_ids[begin:end]] += value * columns.weights[begin:end]
    return np.clip(result, 0.0, 1.0)


def first_of_each(keys: Sequence[object]) -> List[int]:
    """The index of the first item of each distinct key (exact duplicates after it are not candidates)."""
    seen, first = set(), []
    for index, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            first.append(index)
    return first


def greedy_order(scores: Sequence[float], feature_lists: Sequence[Sequence[str]], count: int,
                 diversity: float = DEFAULT_DIVERSITY, candidates: Optional[Sequence[int]] = None) -> List[int]:
    """Up to ``count`` of ``candidates`` (default: every item), in the order chosen: each step the
    highest ``score · (1 - similarity to the closest chosen item) ** diversity``, the earlier item on a
    tie."""
    candidates = list(range(len(scores))) if candidates is None else list(candidates)
    scores = np.asarray(scores, float)
    columns = tfidf_columns(feature_lists) if diversity > 0 else None
    closest = np.zeros(len(scores))
    open_ = np.zeros(len(scores), bool)
    open_[candidates] = True
    order: List[int] = []
    while len(order) < count and open_.any():
        adjusted = scores * (1.0 - closest) ** diversity if columns is not None else scores.copy()
        adjusted[~open_] = -np.inf
        best = int(np.argmax(adjusted))
        order.append(best)
        open_[best] = False
        if columns is not None:
            closest = np.maximum(closest, similarities_to(columns, best))
    return order


def candidates(items: Sequence[TokenLists]) -> List[int]:
    """The items that may be chosen: those with tokens, the first of each set of exact duplicates."""
    keys = [tuple(tuple(tokens) for tokens in item if len(tokens)) for item in items]
    return [index for index in first_of_each(keys) if keys[index]]


def choose(scores: Sequence[float], items: Sequence[TokenLists], count: int,
           diversity: float = DEFAULT_DIVERSITY) -> List[int]:
    """The indices of up to ``count`` items to annotate, best first (``greedy_order``): an item
    without tokens is never chosen, nor a second copy of an item (the same tokens)."""
    features = [surface_features([token for tokens in item for token in tokens]) for item in items]
    return greedy_order(scores, features, count, diversity, candidates(items))

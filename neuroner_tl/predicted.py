"""What the tagger predicts for a sentence: its tags and, when asked for, how sure the CRF is of
them, per token and per entity."""

from __future__ import annotations

import dataclasses
from typing import List, NamedTuple, Optional

import numpy as np

from . import tags as tagging


@dataclasses.dataclass
class Prediction:
    """One sentence's tags; with ``confidence`` asked for, also how sure the CRF is of them."""

    tags: List[str]
    log_probability: float  # log P(tags | tokens) under the CRF (0.0 unless asked for)
    token_confidences: Optional[List[float]] = None  # P(token's tag | sentence), the marginal
    span_confidences: Optional[List[float]] = None  # per token: its entity's confidence (O: the marginal)

    @property
    def probability(self) -> float:
        return float(np.exp(self.log_probability))

    def entities(self) -> List["ScoredSpan"]:
        """The entity spans with their confidence: the probability that the span's tokens carry exactly
        these tags and that the entity ends where it does (``crf.crf_confidences``)."""
        return [ScoredSpan(span.type, span.start, span.end,
                           self.span_confidences[span.start] if self.span_confidences else None)
                for span in tagging.spans(self.tags)]


class ScoredSpan(NamedTuple):
    """An entity: type, token offsets (end exclusive) and confidence (None when not computed)."""

    type: str
    start: int
    end: int
    confidence: Optional[float]


class SentenceDistribution(NamedTuple):
    """What the CRF says of one sentence beyond its tags, for active learning (``selection``): the
    Viterbi path's label ids ``[T]``, the log-probability that the kept labels are where the path
    puts them (every label kept: the path's log-probability) and each token's marginals ``[T, C]``."""

    tag_ids: np.ndarray
    kept_log_likelihood: float
    marginals: np.ndarray

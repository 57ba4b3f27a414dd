"""Pseudo-labelling: the source model labels the entity types the target data leave unannotated.

The target data's own spans are authoritative: predicted spans of the target types are dropped,
and so are predicted spans that overlap a gold span.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Dict, List, Optional, Sequence

from . import tags as tagging
from .corpus import Corpus
from .predicted import ScoredSpan
from .tagger import Tagger


@dataclasses.dataclass
class Annotation:
    corpus: Corpus  # IOB2, gold spans plus the accepted predictions
    added: Dict[str, int]  # accepted predicted spans per type
    dropped_target: int  # predictions of a target type, ignored
    dropped_overlap: int  # predictions overlapping a gold span, ignored
    # with confidence asked for: each sentence's spans (the model's with their confidence, the
    # annotated ones with None) and its tokens' confidences (1.0 inside an annotated span: not the
    # model's to decide)
    entities: Optional[List[List[ScoredSpan]]] = None
    token_confidences: Optional[List[List[float]]] = None


def merge_spans(gold: Sequence[tagging.Span], predicted: Sequence[tagging.Span], target_types: set):
    """(spans to keep, accepted predictions, dropped as target type, dropped as overlapping)."""
    accepted, target, overlap = [], 0, 0
    for span in predicted:
        if span.type in target_types:
            target += 1
        elif any(span.start < g.end and g.start < span.end for g in gold):
            overlap += 1
        else:
            accepted.append(span)
    return sorted(list(gold) + accepted, key=lambda s: s.start), accepted, target, overlap


def annotate(tagger: Tagger, corpus: Corpus, target_types: Sequence[str], batch_size: int = 128,
             confidence: bool = False) -> Annotation:
    """Label the non-target types of ``corpus`` with ``tagger``'s predictions (``confidence``: and
    keep how sure the model is of them, ``Annotation.entities``)."""
    targets = set(target_types)
    predictions = tagger.predict_with_confidence(corpus.sentences, batch_size, confidence=confidence)
    added: collections.Counter = collections.Counter()
    dropped_target = dropped_overlap = 0
    sentences, entities, token_confidences = [], [], []
    for sentence, prediction in zip(corpus.sentences, predictions):
        gold = tagging.spans(sentence.labels)
        predicted = tagging.spans(tagging.convert(prediction.tags, "IOB2"))
        kept, accepted, target, overlap = merge_spans(gold, predicted, targets)
        added.update(s.type for s in accepted)
        dropped_target += target
        dropped_overlap += overlap
        sentences.append(sentence.with_labels(tagging.tags_from_spans(kept, len(sentence), "IOB2")))
        if confidence:
            entities.append(scored_spans(kept, set(accepted), prediction.span_confidences))
            token_confidences.append(model_confidences(gold, prediction.token_confidences))
    return Annotation(Corpus(sentences, "IOB2", corpus.path), dict(sorted(added.items())), dropped_target,
                      dropped_overlap, entities if confidence else None, token_confidences if confidence else None)


def scored_spans(kept: Sequence[tagging.Span], accepted: set, span_confidences: Sequence[float]) -> List[ScoredSpan]:
    return [ScoredSpan(s.type, s.start, s.end, span_confidences[s.start] if s in accepted else None) for s in kept]


def model_confidences(gold: Sequence[tagging.Span], token_confidences: Sequence[float]) -> List[float]:
    inside = {position for span in gold for position in range(span.start, span.end)}
    return [1.0 if position in inside else value for position, value in enumerate(token_confidences)]

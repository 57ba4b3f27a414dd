"""Pseudo-labelling: the source model labels the entity types the target data leave unannotated.

The target data's own spans are authoritative: predicted spans of the target types are dropped,
and so are predicted spans that overlap a gold span.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Dict, Sequence

from . import tags as tagging
from .conll import Corpus
from .tagger import Tagger


@dataclasses.dataclass
class Annotation:
    corpus: Corpus  # IOB2, gold spans plus the accepted predictions
    added: Dict[str, int]  # accepted predicted spans per type
    dropped_target: int  # predictions of a target type, ignored
    dropped_overlap: int  # predictions overlapping a gold span, ignored


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


def annotate(tagger: Tagger, corpus: Corpus, target_types: Sequence[str], batch_size: int = 128) -> Annotation:
    """Label the non-target types of ``corpus`` with ``tagger``'s predictions."""
    targets = set(target_types)
    predictions = tagger.predict(corpus.sentences, batch_size, scheme="IOB2")
    added: collections.Counter = collections.Counter()
    dropped_target = dropped_overlap = 0
    sentences = []
    for sentence, predicted in zip(corpus.sentences, predictions):
        gold = tagging.spans(sentence.labels)
        kept, accepted, target, overlap = merge_spans(gold, tagging.spans(predicted), targets)
        added.update(s.type for s in accepted)
        dropped_target += target
        dropped_overlap += overlap
        sentences.append(sentence.with_labels(tagging.tags_from_spans(kept, len(sentence), "IOB2")))
    return Annotation(Corpus(sentences, "IOB2", corpus.path), dict(sorted(added.items())), dropped_target,
                      dropped_overlap)

"""Entity-level precision, recall and F1 with conlleval's semantics, per type and overall."""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import TYPE_CHECKING, Dict, Iterable, List, Sequence

from . import tags as tagging
from .corpus import Corpus

if TYPE_CHECKING:
    from .tagger import Tagger

OVERALL = "All"


@dataclasses.dataclass(frozen=True)
class Score:
    gold: int  # entities in the reference
    predicted: int  # entities the model found
    correct: int  # found with the same type, start and end

    @property
    def precision(self) -> float:
        return 100.0 * self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return 100.0 * self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> Dict[str, float]:
        return {"gold": self.gold, "predicted": self.predicted, "correct": self.correct,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclasses.dataclass(frozen=True)
class Report:
    """conlleval's figures: per-type scores, the overall score, token accuracy (percentages)."""

    by_type: Dict[str, Score]
    overall: Score
    tokens: int
    correct_tokens: int

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct_tokens / self.tokens if self.tokens else 0.0

    @property
    def f1(self) -> float:
        return self.overall.f1

    def to_dict(self) -> dict:
        return {"overall": self.overall.to_dict(), "accuracy": self.accuracy, "tokens": self.tokens,
                "types": {k: v.to_dict() for k, v in sorted(self.by_type.items())}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def format_table(self) -> str:
        rows = [("type", "gold", "found", "correct", "precision", "recall", "F1")]
        for kind, score in sorted(self.by_type.items()):
            rows.append(_score_row(kind, score))
        rows.append(_score_row(OVERALL, self.overall))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                           for i, cell in enumerate(row)) for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"token accuracy {self.accuracy:.2f}% on {self.tokens} tokens")
        return "\n".join(lines)

    def format_conlleval(self) -> str:
        """The summary lines conlleval prints, in its own layout."""
        o = self.overall
        lines = [f"processed {self.tokens} tokens with {o.gold} phrases; found: {o.predicted} phrases; "
                 f"correct: {o.correct}."]
        if self.tokens:
            lines.append(f"accuracy: {self.accuracy:6.2f}%; precision: {o.precision:6.2f}%; "
                         f"recall: {o.recall:6.2f}%; FB1: {o.f1:6.2f}")
        for kind, score in sorted(self.by_type.items()):
            lines.append(f"{kind:>17}: precision: {score.precision:6.2f}%; recall: {score.recall:6.2f}%; "
                         f"FB1: {score.f1:6.2f}")
        return "\n".join(lines)


def _score_row(kind: str, score: Score):
    return (kind, str(score.gold), str(score.predicted), str(score.correct),
            f"{score.precision:.2f}", f"{score.recall:.2f}", f"{score.f1:.2f}")


def evaluate(gold: Iterable[Sequence[str]], predicted: Iterable[Sequence[str]]) -> Report:
    """Score predicted tag sequences against gold ones (any scheme, one sequence per sentence)."""
    gold_counts: collections.Counter = collections.Counter()
    found_counts: collections.Counter = collections.Counter()
    correct_counts: collections.Counter = collections.Counter()
    tokens = correct_tokens = 0
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"a sentence has {len(gold_tags)} gold tags but {len(predicted_tags)} predicted")
        gold_spans = set(tagging.spans(gold_tags))
        found_spans = set(tagging.spans(predicted_tags))
        gold_counts.update(s.type for s in gold_spans)
        found_counts.update(s.type for s in found_spans)
        correct_counts.update(s.type for s in gold_spans & found_spans)
        tokens += len(gold_tags)
        correct_tokens += sum(g == p for g, p in zip(_as_chunk_tags(gold_tags), _as_chunk_tags(predicted_tags)))
    types = sorted(set(gold_counts) | set(found_counts))
    by_type = {t: Score(gold_counts[t], found_counts[t], correct_counts[t]) for t in types}
    overall = Score(sum(gold_counts.values()), sum(found_counts.values()), sum(correct_counts.values()))
    return Report(by_type, overall, tokens, correct_tokens)


def _as_chunk_tags(tags: Sequence[str]) -> List[str]:
    """conlleval's token accuracy compares tags as written, IO labels read as I-TYPE."""
    return ["O" if t == "O" else "-".join(tagging.split_tag(t)) for t in tags]


def gold_tags(corpus: Corpus) -> List[List[str]]:
    """A labelled corpus's tags in IOB2, the scheme every evaluation scores in."""
    return [tagging.convert(s.labels, "IOB2") for s in corpus.sentences]


def evaluate_tagger(tagger: "Tagger", corpus: Corpus, batch_size: int = 128, min_confidence=None, encoded=None):
    """(conlleval report, predicted IOB2 tags) on a labelled corpus; both sides are scored in IOB2,
    as NeuroNER does, since conlleval has no rule for BIOES. Entities below ``min_confidence``
    are dropped first, as ``predict`` drops them. ``encoded``: the corpus's encoding by the tagger,
    when it was made before (an update scores its dev set every epoch)."""
    if encoded is not None and min_confidence is None:
        predictions = tagger.predict_encoded(encoded, batch_size)
    else:
        predictions = tagger.predict_with_confidence(corpus.sentences, batch_size, confidence=False,
                                                     min_confidence=min_confidence)
    predicted = [tagging.convert(p.tags, "IOB2") for p in predictions]
    return evaluate(gold_tags(corpus), predicted), predicted

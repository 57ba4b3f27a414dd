#!/usr/bin/env python3
"""Are the entity confidences calibrated? A reliability table and the expected calibration error.

    python3 experiments/calibration.py MODEL [MODEL ...] --data ../shared/data/conll2003/test.txt

Every predicted entity of the labelled ``--data`` is correct when the gold data have the same type
and boundaries (conlleval's rule). Entities are put in confidence bins; a bin's precision should be
its mean confidence. ECE = sum over bins of (entities in bin / all entities) x |precision - mean
confidence|. The table is printed for each model (Markdown), then the ECE of each model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuroner_tl import api  # noqa: E402
from neuroner_tl import tags as tagging  # noqa: E402

EDGES = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0 + 1e-9]


def scored_entities(model: Path, data: Path):
    """(confidence, correct) for every predicted entity."""
    tagger = api.load_tagger(model)
    corpus = api.load_corpus(data)
    predictions = tagger.predict_with_confidence(corpus.sentences)
    pairs = []
    for sentence, prediction in zip(corpus.sentences, predictions):
        gold = set(tagging.spans(sentence.labels))
        for entity in prediction.entities():
            pairs.append((entity.confidence, tagging.Span(entity.type, entity.start, entity.end) in gold))
    return pairs


def reliability(pairs):
    rows, ece = [], 0.0
    for low, high in zip(EDGES, EDGES[1:]):
        inside = [(c, ok) for c, ok in pairs if low <= c < high]
        if not inside:
            rows.append((low, high, 0, None, None))
            continue
        confidence = statistics.mean(c for c, _ in inside)
        precision = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(pairs) * abs(precision - confidence)
        rows.append((low, high, len(inside), confidence, precision))
    return rows, ece


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "conll2003" / "test.txt")
    args = parser.parse_args(argv)
    eces = []
    for model in args.models:
        pairs = scored_entities(model, args.data)
        rows, ece = reliability(pairs)
        eces.append(ece)
        print(f"\n{model} on {args.data.name}: {len(pairs)} predicted entities, precision "
              f"{100 * sum(ok for _, ok in pairs) / len(pairs):.2f}%, ECE {100 * ece:.2f} points\n")
        print("| confidence | entities | share | mean confidence | precision | gap |\n|---|---:|---:|---:|---:|---:|")
        for low, high, count, confidence, precision in rows:
            if count:
                print(f"| [{low:.2f}, {min(high, 1.0):.2f}{']' if high > 1 else ')'} | {count} | "
                      f"{100 * count / len(pairs):.1f}% | {100 * confidence:.1f} | {100 * precision:.1f} | "
                      f"{100 * (precision - confidence):+.1f} |")
    if len(eces) > 1:
        print(f"\nECE over {len(eces)} models: {100 * statistics.mean(eces):.2f} ± {100 * statistics.stdev(eces):.2f} points")


if __name__ == "__main__":
    main()

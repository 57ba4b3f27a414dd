#!/usr/bin/env python3
"""Are the entity confidences calibrated? Reliability tables and the expected calibration error
(ECE), raw and with a temperature fitted on dev data (``neuroner_tl.calibration``), by each objective.

    python3 experiments/calibration.py MODEL [MODEL ...] [--diagram docs/reliability.png]

For each CoNLL-2003 model: the raw confidences; the temperature fitted on CoNLL-2003 dev (what
``train`` does at its end) by each objective (``spans``: the log-loss of the predicted entities'
correctness; ``likelihood``: the gold paths' likelihood); and the temperature fitted on WNUT-17 dev
(what ``neuroner-tl calibrate`` does with a customer's labelled sample). Every predicted entity of
each test set is scored right or wrong (conlleval: same type and boundaries). Test sets: CoNLL-2003
test, and WNUT-17 test with the protocol's mapping (person -> PER, location -> LOC, corporation ->
ORG; the other WNUT types are O there); on WNUT only the entities of the mapped types are scored
(MISC has no WNUT counterpart to be right against). ECE = sum over bins of (entities in bin / all
entities) x |precision - mean confidence|. F1 is checked to be the same under every temperature.
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
sys.path.insert(0, str(ROOT / "experiments"))

from neuroner_tl import api  # noqa: E402
from neuroner_tl import calibration  # noqa: E402
from run_task import load_split  # noqa: E402

WNUT_MAPPING = {"person": "PER", "location": "LOC", "corporation": "ORG"}
SCORED_TYPES = {"conll": None, "wnut": set(WNUT_MAPPING.values())}
SPLITS = {
    ("conll", "dev"): {"path": "../shared/data/conll2003/valid.txt"},
    ("conll", "test"): {"path": "../shared/data/conll2003/test.txt"},
    ("wnut", "dev"): {"path": "../shared/data/wnut17/dev.conll", "relabel": WNUT_MAPPING},
    ("wnut", "test"): {"path": "../shared/data/wnut17/test.conll", "relabel": WNUT_MAPPING},
}
NAMES = {"conll": "CoNLL-2003 test", "wnut": "WNUT-17 test"}


def scored(tagger, corpus, types=None):
    pairs = calibration.scored_entities(tagger.predict_with_confidence(corpus.sentences), corpus)
    return [p for p in pairs if types is None or p[0] in types]


def evaluate(tagger, data, test_sets, f1s, label, rows, curves):
    """ECE of each test set under the tagger's current temperature, recorded under ``label``."""
    for name in test_sets:
        corpus = data[(name, "test")]
        assert abs(tagger.evaluate(corpus)[0].f1 - f1s[name]) < 1e-9, "the temperature changed F1"
        pairs = scored(tagger, corpus, SCORED_TYPES[name])
        bins, ece = calibration.reliability(pairs)
        rows.setdefault((name, label), []).append(100 * ece)
        curves.append((name, label, bins, ece))
        print(f"\n{NAMES[name]}, {label} (T = {tagger.temperature:.3f}): {len(pairs)} entities, precision "
              f"{100 * sum(r for *_, r in pairs) / len(pairs):.2f}%, F1 {f1s[name]:.2f}, ECE {100 * ece:.2f}\n")
        print(calibration.reliability_markdown(bins))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--diagram", type=Path, help="Write the first model's reliability diagrams beside this "
                                                     "name, one PNG per test set.")
    args = parser.parse_args(argv)
    data = {key: load_split(spec) for key, spec in SPLITS.items()}
    rows = {}
    for number, model in enumerate(args.models):
        print(f"\n## {model}")
        tagger = api.load_tagger(model)
        tagger.network.crf.temperature.assign(1.0)  # the raw model, whatever it was saved with
        f1s = {name: tagger.evaluate(data[(name, "test")])[0].f1 for name in NAMES}
        curves = []
        evaluate(tagger, data, NAMES, f1s, "raw", rows, curves)
        for fitted_on in NAMES:
            for objective in calibration.OBJECTIVES:
                fit = calibration.fit_temperature(tagger, data[(fitted_on, "dev")], objective)
                print(f"\nfitted on {fitted_on} dev by {objective}: T = {fit.temperature:.3f} "
                      f"(loss {fit.loss_before:.4f} -> {fit.loss_after:.4f})")
                tests = NAMES if fitted_on == "conll" else ["wnut"]
                evaluate(tagger, data, tests, f1s, f"{objective}, {fitted_on} dev", rows, curves)
        if args.diagram and number == 0:
            for name in NAMES:
                chosen = [("raw", "raw"), ("likelihood, conll dev", "train's fit on CoNLL dev")]
                if name == "wnut":
                    chosen.append(("spans, wnut dev", "calibrate on WNUT dev"))
                shown = [(title, bins, ece) for test, label, bins, ece in curves
                         for key, title in chosen if test == name and label == key]
                calibration.reliability_diagram(shown, args.diagram.with_name(f"{args.diagram.stem}-{name}.png"),
                                                title=f"{model.name} on {NAMES[name]}")
    print(f"\nECE in points over {len(args.models)} model(s):\n\n| test set | confidences | ECE |\n|---|---|---:|")
    for (name, label), values in rows.items():
        print(f"| {NAMES[name]} | {label} | {_mean_std(values)} |")


def _mean_std(values):
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


if __name__ == "__main__":
    main()

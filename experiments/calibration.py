#!/usr/bin/env python3
"""Are the entity confidences calibrated? Reliability tables and the expected calibration error
(ECE), raw and with the temperature fitted on dev (``neuroner_tl.calibration``).

    python3 experiments/calibration.py MODEL [MODEL ...] [--dev ../shared/data/conll2003/valid.txt]
        [--diagram docs/reliability.png] [--compare-span-fit]

Each model's temperature is fitted on ``--dev`` by the gold paths' likelihood (what ``train`` does
at its end), then every predicted entity of each test set is scored right or wrong (conlleval: same
type and boundaries). Test sets: CoNLL-2003 test, and WNUT-17 test with the protocol's mapping
(person -> PER, location -> LOC, corporation -> ORG; the other WNUT types are O there). On WNUT only
the entities of the mapped types are scored (MISC has no WNUT counterpart to be right against).
ECE = sum over bins of (entities in bin / all entities) x |precision - mean confidence|.

``--compare-span-fit`` also fits the temperature the other way (the grid value with the lowest
span-level ECE on dev) and reports its test ECE: the figures that chose the likelihood.
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

DATA = ROOT.parent / "shared" / "data"
WNUT_MAPPING = {"person": "PER", "location": "LOC", "corporation": "ORG"}
TEST_SETS = {
    "CoNLL-2003 test": ({"path": "../shared/data/conll2003/test.txt"}, None),
    "WNUT-17 test": ({"path": "../shared/data/wnut17/test.conll", "relabel": WNUT_MAPPING},
                     set(WNUT_MAPPING.values())),
}
SPAN_FIT_GRID = [1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0]


def scored(tagger, corpus, types=None):
    pairs = calibration.scored_entities(tagger.predict_with_confidence(corpus.sentences), corpus)
    return [p for p in pairs if types is None or p[0] in types]


def span_fit(tagger, dev):
    """The grid temperature with the lowest span-level ECE on dev."""
    best = None
    for temperature in SPAN_FIT_GRID:
        tagger.network.crf.temperature.assign(temperature)
        ece = calibration.reliability(scored(tagger, dev))[1]
        if best is None or ece < best[1]:
            best = (temperature, ece)
    return best[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--dev", type=Path, default=DATA / "conll2003" / "valid.txt")
    parser.add_argument("--diagram", type=Path, help="Write the first model's reliability diagrams here (PNG).")
    parser.add_argument("--compare-span-fit", action="store_true")
    args = parser.parse_args(argv)
    dev = api.load_corpus(args.dev).converted("IOB2")
    tests = {name: load_split(spec) for name, (spec, _) in TEST_SETS.items()}
    summary = {name: {"raw": [], "calibrated": [], "span-fit": []} for name in TEST_SETS}
    for number, model in enumerate(args.models):
        tagger = api.load_tagger(model)
        tagger.network.crf.temperature.assign(1.0)  # the raw model, whatever it was saved with
        raw = {name: scored(tagger, corpus, TEST_SETS[name][1]) for name, corpus in tests.items()}
        raw_f1 = {name: tagger.evaluate(corpus)[0].f1 for name, corpus in tests.items()}
        fit = calibration.fit_temperature(tagger, dev)
        print(f"\n## {model}: temperature {fit.temperature:.3f} (dev gold-path NLL per sentence "
              f"{fit.nll_before:.4f} -> {fit.nll_after:.4f}, {fit.sentences} sentences)")
        fitted = {name: scored(tagger, corpus, TEST_SETS[name][1]) for name, corpus in tests.items()}
        for name, corpus in tests.items():
            assert abs(tagger.evaluate(corpus)[0].f1 - raw_f1[name]) < 1e-9, "calibration changed F1"
        curves = []
        for name in tests:
            for kind, pairs in (("raw", raw[name]), ("calibrated", fitted[name])):
                bins, ece = calibration.reliability(pairs)
                summary[name][kind].append(100 * ece)
                curves.append((f"{name}, {kind}", bins, ece))
                print(f"\n{name}, {kind}: {len(pairs)} entities, precision "
                      f"{100 * sum(r for *_, r in pairs) / len(pairs):.2f}%, F1 {raw_f1[name]:.2f}, "
                      f"ECE {100 * ece:.2f} points\n")
                print(calibration.reliability_markdown(bins))
        if args.diagram and number == 0:
            for name in tests:
                calibration.reliability_diagram([c for c in curves if c[0].startswith(name)],
                                                args.diagram.with_name(f"{args.diagram.stem}-"
                                                                       f"{name.split()[0].lower()}.png"),
                                                title=f"{model.name} on {name}")
        if args.compare_span_fit:
            temperature = span_fit(tagger, dev)
            tagger.network.crf.temperature.assign(temperature)
            for name, corpus in tests.items():
                ece = calibration.reliability(scored(tagger, corpus, TEST_SETS[name][1]))[1]
                summary[name]["span-fit"].append(100 * ece)
                print(f"span-level fit: temperature {temperature}, {name} ECE {100 * ece:.2f}")
    print("\n| test set | ECE raw | ECE calibrated (likelihood fit) |"
          + (" ECE span-level fit |" if args.compare_span_fit else "")
          + "\n|---|---:|---:|" + ("---:|" if args.compare_span_fit else ""))
    for name, rows in summary.items():
        cells = [rows["raw"], rows["calibrated"]] + ([rows["span-fit"]] if args.compare_span_fit else [])
        print(f"| {name} | " + " | ".join(_mean_std(values) for values in cells) + " |")


def _mean_std(values):
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What a column costs: parameters, model-folder size and prediction time of a source model and of
one, two and three updates on top of it, for the ``column`` and ``isolate`` methods, measured side by
side in one process.

    python experiments/column_cost.py runs/bc5cdr/models/source-conll

Updates (2 epochs each: the cost does not depend on how well they learnt): BC5CDR ``Chemical``, then
``Disease`` (200 sentences each), then WNUT-17 ``creative-work`` (200 sentences). Prediction: the
CoNLL-2003 test set (3,453 sentences), best of 3, through ``Tagger.predict`` (no confidences) and
with confidences (``predict_with_confidence``, what ``predict`` gives a user).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from protocol import target_sample  # noqa: E402
from run_task import keep_only, load_split  # noqa: E402

from neuroner_tl import api  # noqa: E402
from neuroner_tl.model_io import save_tagger  # noqa: E402

UPDATES = [("Chemical", {"path": "../shared/data/bc5cdr/train.tsv"}),
           ("Disease", {"path": "../shared/data/bc5cdr/train.tsv"}),
           ("creative-work", {"path": "../shared/data/wnut17/train.conll",
                              "relabel": {"creative-work": "creative-work"}})]


def folder_bytes(tagger) -> int:
    with tempfile.TemporaryDirectory() as folder:
        save_tagger(tagger, Path(folder) / "model")
        return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def best_seconds(function, repeats: int = 3) -> float:
    function()  # traced once
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--methods", default="column,isolate")
    args = parser.parse_args(argv)
    test = load_split({"path": "../shared/data/conll2003/test.txt"}).sentences
    source = api.as_tagger(args.source)
    rows = []

    def measure(name, tagger):
        parameters = sum(int(w.numpy().size) for w in tagger.network.model_weights())
        plain = best_seconds(lambda: tagger.predict(test))
        confident = best_seconds(lambda: tagger.predict_with_confidence(test))
        rows.append((name, parameters, folder_bytes(tagger), plain, confident))
        print(f"{name:22s} {parameters:>11,d} parameters  {rows[-1][2] / 2**20:7.1f} MiB  "
              f"predict {plain:6.2f} s ({plain / rows[0][3]:.2f}x)  with confidences {confident:6.2f} s "
              f"({confident / rows[0][4]:.2f}x)", flush=True)

    measure("source", source)
    for method in args.methods.split(","):
        tagger = source
        for number, (kind, pool) in enumerate(UPDATES, start=1):
            target = keep_only(target_sample(load_split(pool), 200, 0), [kind])
            tagger = api.update(tagger, target, [kind], None, method=method, max_epochs=2, patience_steps=10**6,
                                verbose=False).tagger
            measure(f"{method} x{number} (+{kind})", tagger)


if __name__ == "__main__":
    main()

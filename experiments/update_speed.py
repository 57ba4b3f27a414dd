#!/usr/bin/env python3
"""Wall time of an update by method, side by side in one process, on the same data and epochs.

    python experiments/update_speed.py runs/protocol/models/source-conll-no-ORG --type ORG

D_T is 1,000 sentences of CoNLL-2003 (training sentences 10,000-14,040, the protocol's sample) with
only ``--type`` annotated. Every method runs exactly ``--epochs`` epochs (no early stopping), twice
in alternation, and the faster of the two is reported, with the ratio to ``self-training``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from protocol import target_sample  # noqa: E402
from run_task import keep_only, load_split  # noqa: E402

from neuroner_tl import api  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--type", default="ORG")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--methods", default="self-training,distill,l2-sp,finetune")
    args = parser.parse_args(argv)
    pool = load_split({"path": "../shared/data/conll2003/train.txt", "sentences": [10000, 14041]})
    target = keep_only(target_sample(pool, args.size, 0), [args.type])
    source = api.as_tagger(args.model)
    methods = args.methods.split(",")
    best = {m: float("inf") for m in methods}
    for _ in range(2):
        for method in methods:
            started = time.perf_counter()
            api.update(source, target, [args.type], None, method=method, max_epochs=args.epochs,
                       patience=args.epochs, patience_steps=10**6, verbose=False)
            best[method] = min(best[method], time.perf_counter() - started)
    reference = best.get("self-training")
    rows = [{"method": m, "seconds": round(s, 1), "x self-training": round(s / reference, 2) if reference else None}
            for m, s in best.items()]
    print(f"update on {args.size} sentences, {args.epochs} epochs, cores {os.cpu_count()}")
    for row in rows:
        print(f"  {row['method']:14s} {row['seconds']:7.1f} s   {row['x self-training']}x self-training")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

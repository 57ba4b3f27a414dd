#!/usr/bin/env python3
"""Training speed of two source trees of neuroner_tl on CoNLL-2003, in interleaved pairs of runs.

    git worktree add /tmp/before 0a759b4
    python3 experiments/train_speed.py /tmp/before . --epochs 6 --repeats 3

Each run is a fresh process that imports the package from its tree, builds the defaults' tagger
(no pretrained vectors) on the full training set and trains for ``--epochs`` epochs (early stopping
on the first 200 dev sentences, so evaluation costs little). Runs alternate between the trees, so a
drift of the machine's speed hits both; printed per run: sentences/s of every epoch and the median
of all but the first (which builds kernels for new shapes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conll2003"

RUN = r"""
import json, sys
from neuroner_tl.config import Hyperparameters
from neuroner_tl.conll import read_conll
from neuroner_tl.corpus import Corpus
from neuroner_tl.progress import Progress
from neuroner_tl.training import Trainer, seed_everything
try:
    from neuroner_tl.tagger import build_tagger
except ImportError:  # trees from before the API split
    from neuroner_tl.api import build_tagger
data = sys.argv[1]
train = read_conll(f"{data}/train.txt")
dev = Corpus(read_conll(f"{data}/valid.txt").sentences[:200], "IOB2")
hp = Hyperparameters(max_epochs=int(sys.argv[2]), patience=100)
seed_everything(hp.seed)
tagger = build_tagger(hp, train, [dev])
history = Trainer(tagger, progress=Progress(False)).fit(tagger.encode_corpus(train), dev)
print(json.dumps([r.sentences_per_second for r in history]))
"""


def run(tree: Path, epochs: int) -> list:
    environment = dict(os.environ, PYTHONPATH=str(tree.resolve()), TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run([sys.executable, "-c", RUN, str(DATA), str(epochs)], capture_output=True,
                               text=True, env=environment, cwd="/")
    if completed.returncode != 0:
        raise SystemExit(f"{tree}: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", type=Path, nargs=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    medians = {str(tree): [] for tree in args.trees}
    for repeat in range(args.repeats):
        for tree in args.trees:
            speeds = run(tree, args.epochs)
            medians[str(tree)].append(statistics.median(speeds[1:]))
            print(f"{tree} run {repeat + 1}: " + ", ".join(f"{s:.1f}" for s in speeds)
                  + f"; median of epochs 2-{args.epochs}: {medians[str(tree)][-1]:.1f}", flush=True)
    for tree, values in medians.items():
        print(f"{tree}: median sentences/s per run {', '.join(f'{v:.1f}' for v in values)}; "
              f"mean {statistics.mean(values):.1f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Training and prediction speed of two source trees of neuroner_tl on CoNLL-2003, in interleaved
pairs of runs.

    git worktree add /tmp/before 0a759b4
    python3 experiments/train_speed.py /tmp/before . --epochs 6 --repeats 3
    python3 experiments/train_speed.py /tmp/before . --epochs 3 --repeats 3 --sentences 4000   # quicker

Each run is a fresh process that imports the package from its tree, builds the defaults' tagger
(no pretrained vectors) on the training set (its first ``--sentences``, default all) and trains for
``--epochs`` epochs (early stopping on the first 200 dev sentences, so evaluation costs little),
then tags the test set twice and times the second pass. Runs alternate between the trees, so a
drift of the machine's speed hits both; printed per run: training sentences/s of every epoch and
the median of all but the first (which builds kernels for new shapes), and prediction tokens/s.
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
import json, sys, time
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
if int(sys.argv[3]):
    train = Corpus(train.sentences[:int(sys.argv[3])], "IOB2")
dev = Corpus(read_conll(f"{data}/valid.txt").sentences[:200], "IOB2")
hp = Hyperparameters(max_epochs=int(sys.argv[2]), patience=100)
seed_everything(hp.seed)
tagger = build_tagger(hp, train, [dev])
history = Trainer(tagger, progress=Progress(False)).fit(tagger.encode_corpus(train), dev)
test = [s.tokens for s in read_conll(f"{data}/test.txt").sentences]
tagger.predict(test)
started = time.perf_counter()
tagger.predict(test)
tokens_per_second = sum(map(len, test)) / (time.perf_counter() - started)
print(json.dumps([[r.sentences_per_second for r in history], tokens_per_second]))
"""


def run(tree: Path, epochs: int, sentences: int):
    environment = dict(os.environ, PYTHONPATH=str(tree.resolve()), TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run([sys.executable, "-c", RUN, str(DATA), str(epochs), str(sentences)],
                               capture_output=True,
                               text=True, env=environment, cwd="/")
    if completed.returncode != 0:
        raise SystemExit(f"{tree}: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", type=Path, nargs=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=0, help="train on the first N sentences (0: all)")
    args = parser.parse_args(argv)
    medians = {str(tree): [] for tree in args.trees}
    predicting = {str(tree): [] for tree in args.trees}
    for repeat in range(args.repeats):
        for tree in args.trees:
            speeds, tokens_per_second = run(tree, args.epochs, args.sentences)
            medians[str(tree)].append(statistics.median(speeds[1:]))
            predicting[str(tree)].append(tokens_per_second)
            print(f"{tree} run {repeat + 1}: " + ", ".join(f"{s:.1f}" for s in speeds)
                  + f"; median of epochs 2-{args.epochs}: {medians[str(tree)][-1]:.1f} sentences/s; "
                  f"prediction {tokens_per_second:.0f} tokens/s", flush=True)
    for tree in medians:
        values, tokens = medians[tree], predicting[tree]
        print(f"{tree}: training sentences/s per run {', '.join(f'{v:.1f}' for v in values)}; "
              f"mean {statistics.mean(values):.1f}; prediction tokens/s {', '.join(f'{v:.0f}' for v in tokens)}; "
              f"mean {statistics.mean(tokens):.0f}")


if __name__ == "__main__":
    main()

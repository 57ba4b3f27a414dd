#!/usr/bin/env python3
"""CoNLL-2003 English test F1 with pretrained vectors: the defaults and the variants of issue #11.

    python3 ../shared/tools/glove_6b_50d.py glove.6B.50d.txt          # Stanford's GloVe 6B 50d
    python3 experiments/vectors_accuracy.py --vectors glove.6B.50d.txt                 # defaults, seeds 1-3
    python3 experiments/vectors_accuracy.py --vectors glove.6B.50d.txt \\
        --variants bioes,sgd-0.1,singleton-unk-0.5 --seeds 1                         # variants, one seed
    python3 experiments/vectors_accuracy.py --report                                  # the table only

KIND Wikinews (Italian), without vectors and with vectors trained on KIND's own training text:

    K=../shared/data/kind/evalita-2023
    python3 experiments/vectors_accuracy.py --kind-text kind_train.txt                # the raw text
    neuroner-tl embeddings kind_train.txt -o kind_w2v_100.txt --dim 100 --epochs 10
    python3 experiments/vectors_accuracy.py --train $K/WN_train.tsv --dev $K/WN_dev.tsv \
        --test $K/WN_test.tsv --output runs/kind_wn --variants no-vectors
    python3 experiments/vectors_accuracy.py --train $K/WN_train.tsv --dev $K/WN_dev.tsv \
        --test $K/WN_test.tsv --output runs/kind_wn --variants kind-w2v-100 --vectors kind_w2v_100.txt

Each (variant, seed) is one ``neuroner-tl train`` run (train on train, early stopping on dev, scored on
test) into ``<output>/<variant>-s<seed>``; a finished run is never redone. Every model is then scored
on dev and test with constrained decoding on and off (``Tagger.constrained``), so the effect of the
constraint is measured on the same weights. The table (mean ± sample std over seeds) is printed and
written to ``<output>/results.md``; every figure to ``<output>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "conll2003"

# name -> hyperparameters that differ from the package defaults
VARIANTS = {
    "defaults": {},
    "bioes": {"tag_scheme": "BIOES"},
    "singleton-unk-0.5": {"singleton_unk_probability": 0.5},
    "frozen-vectors": {"freeze_word_embeddings": True},
    "lstm-100": {"token_lstm_units": 100},
    "char-cap-60": {"max_word_length": 60},
    "sgd-0.1": {"optimizer": "sgd", "learning_rate": 0.1},
    "sgd-0.01": {"optimizer": "sgd", "learning_rate": 0.01},
    "bioes+singleton-unk-0.5": {"tag_scheme": "BIOES", "singleton_unk_probability": 0.5},
    # names for the KIND runs (the vectors, or their absence, are given by --vectors)
    "no-vectors": {},
    "kind-w2v-100": {},
}

KIND = ROOT.parent / "shared" / "data" / "kind"
KIND_TRAINING_TEXT = ["evalita-2023/WN_train.tsv", "evalita-2023/FIC_train.tsv", "evalita-2023/ADG_train.tsv",
                      "dataset/moro_train.tsv"]


def write_kind_text(output: Path) -> None:
    """The tokens of KIND's training splits (every domain; never dev or test), a sentence a line: the
    raw text a user without Italian vectors would give ``neuroner-tl embeddings``."""
    from neuroner_tl import api

    with output.open("w", encoding="utf-8") as stream:
        for relative in KIND_TRAINING_TEXT:
            for sentence in api.load_corpus(KIND / relative).sentences:
                stream.write(" ".join(sentence.tokens) + "\n")


def parse_variant(text: str):
    """``NAME`` (from ``VARIANTS``) or ``NAME:key=value;key=value`` (a new one)."""
    if ":" not in text:
        if text not in VARIANTS:
            raise SystemExit(f"unknown variant {text!r}; known: {', '.join(VARIANTS)} (or NAME:key=value;...)")
        return text, VARIANTS[text]
    name, settings = text.split(":", 1)
    return name, dict(part.split("=", 1) for part in settings.split(";") if part)


def train_one(name: str, settings: dict, seed: int, args) -> Path:
    folder = args.output / f"{name}-s{seed}"
    if (folder / "evaluation.json").exists():
        return folder
    command = [sys.executable, "-m", "neuroner_tl.cli", "train", str(args.train), "--dev", str(args.dev),
               "--test", str(args.test), "-o", str(folder), "--set", f"seed={seed}"]
    if args.vectors is not None:
        command += ["--embeddings", str(args.vectors)]
    for key, value in settings.items():
        command += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    if args.max_epochs:
        command += ["--epochs", str(args.max_epochs)]
    if (args.output / f".{folder.name}.checkpoint").exists():
        command.append("--resume")
    log = args.output / f"{folder.name}.log"
    print(f"training {folder.name} (log {log})", flush=True)
    started = time.time()
    with log.open("a", encoding="utf-8") as stream:
        completed = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        raise SystemExit(f"{folder.name} failed; see {log}")
    (folder / "wall_seconds.txt").write_text(f"{time.time() - started:.0f}\n")
    return folder


def score_one(folder: Path, args) -> dict:
    """dev and test F1 with the constraint on and off, cached in ``scores.json`` beside the model."""
    cached = folder / "scores.json"
    if cached.exists():
        return json.loads(cached.read_text())
    from neuroner_tl import api

    tagger = api.load_tagger(folder)
    dev, test = api.load_corpus(args.dev), api.load_corpus(args.test)
    evaluation = json.loads((folder / "evaluation.json").read_text())
    record = {"best_epoch": evaluation["best_epoch"], "epochs": len(tagger.history)}
    for constrained in (False, True):
        tagger.constrained = constrained
        key = "constrained" if constrained else "unconstrained"
        record[f"dev_{key}"] = round(tagger.evaluate(dev)[0].f1, 2)
        record[f"test_{key}"] = round(tagger.evaluate(test)[0].f1, 2)
    cached.write_text(json.dumps(record, indent=2) + "\n")
    return record


def mean_std(values) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report(output: Path) -> str:
    records = {}
    for scores in sorted(output.glob("*-s*/scores.json")):
        name, seed = scores.parent.name.rsplit("-s", 1)
        records.setdefault(name, {})[int(seed)] = json.loads(scores.read_text())
    lines = ["| variant | seeds | test F1, constrained | test F1, unconstrained | dev F1, constrained | "
             "best epoch |", "|---|---|---:|---:|---:|---:|"]
    for name, by_seed in records.items():
        rows = [by_seed[s] for s in sorted(by_seed)]
        lines.append(f"| {name} | {','.join(map(str, sorted(by_seed)))} | "
                     f"{mean_std([r['test_constrained'] for r in rows])} | "
                     f"{mean_std([r['test_unconstrained'] for r in rows])} | "
                     f"{mean_std([r['dev_constrained'] for r in rows])} | "
                     f"{', '.join(str(r['best_epoch']) for r in rows)} |")
    table = "\n".join(lines) + "\n"
    (output / "results.md").write_text(table)
    (output / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=Path, help="the vectors file (GloVe text, word2vec, fastText); "
                                                     "without it the runs train their embeddings from scratch")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train.txt, valid.txt, test.txt")
    parser.add_argument("--train", type=Path, help="training file (default: DATA/train.txt)")
    parser.add_argument("--dev", type=Path, help="dev file (default: DATA/valid.txt)")
    parser.add_argument("--test", type=Path, help="test file (default: DATA/test.txt)")
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "vectors")
    parser.add_argument("--variants", default="defaults", help="comma-separated; NAME or NAME:key=value;...")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--max-epochs", type=int, help="cap on epochs (default: the package's)")
    parser.add_argument("--report", action="store_true", help="only score finished runs and print the table")
    parser.add_argument("--train-only", action="store_true", help="train, but neither score nor report")
    parser.add_argument("--kind-text", type=Path, help="only write KIND's training text to this file")
    args = parser.parse_args(argv)
    if args.kind_text:
        write_kind_text(args.kind_text)
        return
    args.train = args.train or args.data / "train.txt"
    args.dev = args.dev or args.data / "valid.txt"
    args.test = args.test or args.data / "test.txt"
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.report:
        if args.vectors is not None and not args.vectors.is_file():
            raise SystemExit(f"no vectors file {args.vectors} (python3 ../shared/tools/glove_6b_50d.py OUT.txt "
                             f"makes GloVe 6B 50d)")
        for variant in args.variants.split(","):
            name, settings = parse_variant(variant)
            for seed in (int(s) for s in args.seeds.split(",")):
                train_one(name, settings, seed, args)
    if args.train_only:
        return
    for folder in sorted(args.output.glob("*-s*")):
        if folder.is_dir() and (folder / "evaluation.json").exists():
            score_one(folder, args)
    print(report(args.output))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Speed, memory and accuracy of neuroner_tl against flair and NeuroNER's regimen, in one run.

    python experiments/benchmark.py            # the full run on CoNLL-2003 (see docs/benchmarks.md)
    python experiments/benchmark.py --quick    # a smoke check in a few minutes
    python experiments/benchmark.py --device gpu --systems neuroner_tl,flair      # both on the GPU
    git worktree add /tmp/before v0.1 && python experiments/benchmark.py --baseline /tmp/before \
        --systems neuroner_tl,neuroner_tl-baseline,flair                         # before and after a change

Three systems with the same network sizes (char embedding 25, char BiLSTM 25 per direction, word
embeddings 300-d trained from scratch, token BiLSTM 128 per direction, CRF; no pretrained vectors):

* ``neuroner_tl``: the package's defaults (Adam 0.001, mini-batches of 32, bucketed by length);
* ``neuroner_tl-bs1``: the same with batch size 1, NeuroNER's regimen (the NeuroNER reference);
  any ``neuroner_tl-bsN`` in ``--systems`` runs the defaults with batch size N;
* ``flair``: flair's ``SequenceTagger`` (BiLSTM-CRF) over ``CharacterEmbeddings`` given a character
  dictionary built from the training corpus and ``OneHotEmbeddings.from_corpus`` (300-d, min count 2),
  no re-projection, dropout 0.5, trained with its default SGD (lr 0.1), mini-batches of 32.

Each system runs in its own process; reported: training sentences/s (median of the epochs after the
first, evaluation excluded), prediction tokens/s on the test set, peak resident memory of the
process, dev F1 per epoch against wall-clock time, and test F1 after the epoch budget. Ratios
against flair are computed from the figures of the same run. Install the peers with
``pip install ".[bench]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "conll2003"
SYSTEMS = ("neuroner_tl", "neuroner_tl-bs1", "flair", "neuroner_tl-baseline")
# the package a worker imports: this tree, or for ``neuroner_tl-baseline`` the tree given by --baseline
SOURCE = Path(os.environ.get("NEURONER_TL_SOURCE", str(ROOT)))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def read_sentences(path: Path, limit: int | None):
    sys.path.insert(0, str(SOURCE))
    from neuroner_tl.conll import read_conll

    sentences = read_conll(path).sentences
    return sentences[:limit] if limit else sentences


# neuroner_tl --------------------------------------------------------------------------------------
def run_neuroner_tl(args, batch_size: int) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(SOURCE))
    from neuroner_tl.batching import encode
    from neuroner_tl.config import Hyperparameters
    from neuroner_tl.corpus import Corpus
    from neuroner_tl.progress import Progress
    from neuroner_tl.training import Trainer, seed_everything
    try:
        from neuroner_tl.tagger import build_tagger
    except ImportError:  # a baseline tree from before the API split
        from neuroner_tl.api import build_tagger

    train = Corpus(read_sentences(DATA / "train.txt", args.train_limit), "IOB2")
    dev = Corpus(read_sentences(DATA / "valid.txt", args.dev_limit), "IOB2")
    test = Corpus(read_sentences(DATA / "test.txt", args.test_limit), "IOB2")
    if batch_size == 1 and args.bs1_train_limit:
        train = Corpus(train.sentences[: args.bs1_train_limit], "IOB2")
    hp = Hyperparameters(batch_size=batch_size, max_epochs=args.epochs, patience=args.epochs + 1)
    seed_everything(hp.seed)
    tagger = build_tagger(hp, train, [dev, test])
    items = tagger.encode_corpus(train)
    curve, started = [], time.perf_counter()

    class Clock(Progress):
        def log(self, message):
            if message.startswith("epoch"):
                curve.append({"wall_seconds": time.perf_counter() - started})

    options = {}
    if args.device != "auto":
        from neuroner_tl.devices import Devices

        options["devices"] = Devices(args.device)
    trainer = Trainer(tagger, progress=Clock(False), **options)
    history = trainer.fit(items, dev)
    for point, record in zip(curve, history):
        point.update({"epoch": record.epoch, "dev_f1": record.dev_f1,
                      "train_sentences_per_second": record.sentences_per_second})
    test_items = encode([s.tokens for s in test.sentences], tagger.encoder)
    tagger.predict_encoded(test_items[:256])  # compile the decoder before timing
    tokens = sum(len(s) for s in test.sentences)
    begun = time.perf_counter()
    tagger.predict_encoded(test_items, batch_size=256)
    predict_seconds = time.perf_counter() - begun
    report, _ = tagger.evaluate(test)
    return {"train_sentences": len(train), "epochs": [p for p in curve],
            "predict_tokens_per_second": tokens / predict_seconds, "test_f1": report.f1}


# flair ---------------------------------------------------------------------------------------------
def run_flair(args) -> dict:
    import flair
    import torch
    from flair.data import Corpus as FlairCorpus
    from flair.data import Dictionary, Sentence
    from flair.embeddings import CharacterEmbeddings, OneHotEmbeddings, StackedEmbeddings
    from flair.models import SequenceTagger
    from flair.training_utils import store_embeddings

    torch.manual_seed(1)
    flair.device = torch.device("cuda" if args.device == "gpu" else "cpu")

    def to_flair(sentences):
        converted = []
        for s in sentences:
            sentence = Sentence(s.tokens)
            for span_type, start, end in _spans(s.labels):
                sentence[start:end].add_label("ner", span_type)
            converted.append(sentence)
        return converted

    train = to_flair(read_sentences(DATA / "train.txt", args.train_limit))
    dev = to_flair(read_sentences(DATA / "valid.txt", args.dev_limit))
    test = to_flair(read_sentences(DATA / "test.txt", args.test_limit))
    corpus = FlairCorpus(train=train, dev=dev, test=test, sample_missing_splits=False)
    characters = Dictionary()
    for sentence in train:
        for token in sentence:
            for character in token.text:
                characters.add_item(character)
    embeddings = StackedEmbeddings([
        CharacterEmbeddings(characters, char_embedding_dim=25, hidden_size_char=25),
        OneHotEmbeddings.from_corpus(corpus, embedding_length=300, min_freq=2),
    ])
    tag_dictionary = corpus.make_label_dictionary("ner", add_unk=False)
    tagger = SequenceTagger(hidden_size=128, embeddings=embeddings, tag_dictionary=tag_dictionary, tag_type="ner",
                            use_crf=True, rnn_layers=1, reproject_embeddings=False, dropout=0.5, word_dropout=0.0,
                            locked_dropout=0.0, tag_format="BIO")
    optimizer = torch.optim.SGD(tagger.parameters(), lr=0.1)
    curve, started = [], time.perf_counter()
    generator = torch.Generator().manual_seed(1)
    for epoch in range(1, args.epochs + 1):
        tagger.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        begun = time.perf_counter()
        for start in range(0, len(order), 32):
            batch = [train[i] for i in order[start:start + 32]]
            optimizer.zero_grad()
            loss, _ = tagger.forward_loss(batch)
            loss.backward()  # as flair's ModelTrainer does: the summed loss, norm clipped at 5
            torch.nn.utils.clip_grad_norm_(tagger.parameters(), 5.0)
            optimizer.step()
            store_embeddings(batch, "none")
        seconds = time.perf_counter() - begun
        result = tagger.evaluate(dev, gold_label_type="ner", mini_batch_size=128)
        curve.append({"epoch": epoch, "wall_seconds": time.perf_counter() - started,
                      "dev_f1": 100 * result.main_score, "train_sentences_per_second": len(train) / seconds})
    tokens = sum(len(s) for s in test)
    for sentence in test:
        sentence.remove_labels("predicted")
    tagger.predict(test[:256], mini_batch_size=256)
    begun = time.perf_counter()
    tagger.predict(test, mini_batch_size=256, label_name="predicted")
    predict_seconds = time.perf_counter() - begun
    test_f1 = 100 * tagger.evaluate(test, gold_label_type="ner", mini_batch_size=256).main_score
    return {"train_sentences": len(train), "epochs": curve, "predict_tokens_per_second": tokens / predict_seconds,
            "test_f1": test_f1, "torch": torch.__version__, "flair": flair.__version__}


def _spans(labels):
    sys.path.insert(0, str(SOURCE))
    from neuroner_tl.tags import spans

    return spans(labels)


# orchestration ---------------------------------------------------------------------------------------
def worker(args) -> None:
    if args.worker == "flair":
        result = run_flair(args)
    else:
        result = run_neuroner_tl(args, batch_size_of(args.worker))
    result["peak_rss_mib"] = peak_rss_mib()
    speeds = [e["train_sentences_per_second"] for e in result["epochs"]]
    result["train_sentences_per_second"] = statistics.median(speeds[1:] if len(speeds) > 1 else speeds)
    Path(args.result).write_text(json.dumps(result, indent=2))


def summarize(results: dict, args) -> str:
    flair = results.get("flair")
    lines = [f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; epochs: {args.epochs}; "
             f"training sentences: " + ", ".join(f"{k} {v['train_sentences']}" for k, v in results.items()), "",
             "| system | train sentences/s | x flair | x batch size 1 | predict tokens/s | x flair | peak RSS (MiB) | test F1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    ratio = lambda r, other, key: r[key] / other[key] if other else float("nan")
    for name, r in results.items():
        train_ratio = ratio(r, flair, "train_sentences_per_second")
        bs1_ratio = ratio(r, results.get("neuroner_tl-bs1"), "train_sentences_per_second")
        predict_ratio = ratio(r, flair, "predict_tokens_per_second")
        lines.append(f"| {name} | {r['train_sentences_per_second']:.1f} | {train_ratio:.2f} | {bs1_ratio:.1f} | "
                     f"{r['predict_tokens_per_second']:.0f} | {predict_ratio:.2f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['test_f1']:.2f} |")
    if "neuroner_tl" in results and "neuroner_tl-bs1" in results:
        speedup = results["neuroner_tl"]["train_sentences_per_second"] / results["neuroner_tl-bs1"]["train_sentences_per_second"]
        lines += ["", f"neuroner_tl defaults train {speedup:.1f}x faster than the batch-size-1 regimen."]
    steps = []
    for name, r in results.items():
        if name.startswith("neuroner_tl"):
            size = batch_size_of(name)
            steps.append(f"{name} {1000 * size / r['train_sentences_per_second']:.1f} ms for "
                         f"{size} sentence{'s' if size > 1 else ''}")
    if steps:
        lines += ["", "Training step time (at the median speed): " + "; ".join(steps) + "."]
    return "\n".join(lines) + "\n"


def batch_size_of(system: str) -> int:
    if re.fullmatch(r"neuroner_tl-bs[0-9]+", system):
        return int(system[len("neuroner_tl-bs"):])
    return default_batch_size()


def default_batch_size() -> int:
    sys.path.insert(0, str(SOURCE))
    from neuroner_tl.config import Hyperparameters

    return Hyperparameters().batch_size


def plot(results: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    for name, r in results.items():
        axis.plot([e["wall_seconds"] / 60 for e in r["epochs"]], [e["dev_f1"] for e in r["epochs"]], marker="o", label=name)
    axis.set_xlabel("wall-clock minutes of training (with dev evaluation)")
    axis.set_ylabel("dev F1")
    axis.legend()
    figure.tight_layout()
    figure.savefig(str(path), dpi=100)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subsets and 3 epochs: a smoke check")
    parser.add_argument("--epochs", type=int, default=None, help="epoch budget for every system (default 10; quick 3)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "benchmark")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--dev-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--bs1-train-limit", type=int, default=None,
                        help="train the batch-size-1 regimen on only this many sentences (its epochs are long)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where every system trains (gpu: neuroner_tl with cuDNN LSTMs, flair on CUDA)")
    parser.add_argument("--baseline", type=Path,
                        help="a source tree of another neuroner_tl version, run as the system neuroner_tl-baseline")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = args.epochs or 3
        args.train_limit = args.train_limit or 1500
        args.dev_limit = args.dev_limit or 500
        args.test_limit = args.test_limit or 1000
        args.bs1_train_limit = args.bs1_train_limit or 300
    args.epochs = args.epochs or 10
    if args.worker:
        worker(args)
        return
    if not (DATA / "train.txt").exists():
        sys.exit(f"error: {DATA} not found: the benchmark needs CoNLL-2003 from ../shared/data")
    systems = args.systems.split(",")
    unknown = [s for s in systems if s not in SYSTEMS and not re.fullmatch(r"neuroner_tl-bs[1-9][0-9]*", s)]
    if unknown:
        sys.exit(f"error: unknown system {', '.join(unknown)}; choose from {', '.join(SYSTEMS)} or neuroner_tl-bsN")
    args.output.mkdir(parents=True, exist_ok=True)
    results = {}
    for system in systems:
        result_path = args.output / f"{system}.json"
        command = [sys.executable, __file__, "--worker", system, "--result", str(result_path), "--epochs", str(args.epochs),
                   "--device", args.device]
        environment = dict(os.environ)
        if system == "neuroner_tl-baseline":
            if not args.baseline:
                sys.exit("error: the system neuroner_tl-baseline needs --baseline TREE")
            environment["NEURONER_TL_SOURCE"] = str(args.baseline.resolve())
        for option in ("train_limit", "dev_limit", "test_limit", "bs1_train_limit"):
            if getattr(args, option):
                command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        print(f"running {system} ...", flush=True)
        completed = subprocess.run(command, capture_output=True, text=True, env=environment)
        if completed.returncode != 0:
            sys.exit(f"error: {system} failed:\n{completed.stderr[-3000:]}")
        results[system] = json.loads(result_path.read_text())
    table = summarize(results, args)
    (args.output / "benchmark.md").write_text(table, encoding="utf-8")
    (args.output / "benchmark.json").write_text(json.dumps({"cores": os.cpu_count(), "epochs": args.epochs,
                                                            "results": results}, indent=2))
    plot(results, args.output / "dev_f1_vs_time.png")
    print(table)


if __name__ == "__main__":
    main()

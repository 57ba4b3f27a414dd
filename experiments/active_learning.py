#!/usr/bin/env python3
"""Active learning measured (issue #29): the new type's F1 after an update on sentences chosen by
``neuroner-tl select`` against as many random ones.

    python3 experiments/active_learning.py                 # BC5CDR and KIND, 50/100/200 sentences, seeds 1-3
    python3 experiments/active_learning.py --summary       # the table of the records written so far
    python3 experiments/active_learning.py --sources runs/bc5cdr/models --sources runs/kind-new/models

For each setting of the update protocol's configs (``experiments/configs/protocol_bc5cdr.json``:
CoNLL-2003 → BC5CDR Chemical and Disease; ``protocol_kind_new.json``: KIND Wikinews without ORG →
De Gasperi ORG, without PER → fiction PER; ``docs/update_protocol.md``): the pool is the target
domain's training sentences with only the target type kept. ``selected``: the SOURCE model (before
any update) scores the whole pool and ``select``'s greedy choice ranks it once (``api.select``,
default settings; the first 50 of its 200 are its choice of 50); ``random``: the protocol's seeded
sample (``protocol.target_sample``, the seed the run's, so the 50 lie among the 100). Then
``update`` (package defaults, the setting's own dev set where it has one) on the chosen sentences,
and the target type's F1 on the setting's test set. The selected sentences are the same for every
seed, so their spread is the update's alone; the random rows' spread includes the sampling.

Every run writes one JSON record (``<output>/<config>/records/al-<setting>-<strategy>-<size>-s<seed>.json``)
and a run whose record exists is skipped; the source models are reused from ``--sources`` folders
(a protocol run's ``models``: ``source-<name>``) or trained once into ``<output>/<config>/models``,
and each setting's ranking is kept in ``<output>/<config>/rankings``. ``--shard i/n`` runs every n-th
job, so two processes can share a 2-core machine (``--threads 1`` each).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from protocol import Protocol, set_threads, target_sample  # noqa: E402
from run_task import keep_only  # noqa: E402

from neuroner_tl import api, tags  # noqa: E402
from neuroner_tl.corpus import Corpus  # noqa: E402
from neuroner_tl.errors import NeuronerError  # noqa: E402

CONFIGS = [ROOT / "experiments" / "configs" / "protocol_bc5cdr.json",
           ROOT / "experiments" / "configs" / "protocol_kind_new.json"]
SIZES = (50, 100, 200)
SEEDS = (1, 2, 3)
# a strategy is "random" or a way of selecting: select's options (api.select's keywords)
STRATEGIES = {"selected": {}, "selected-entropy": {"measure": "entropy"}, "selected-changes": {"measure": "changes"},
              "selected-per-item": {"per": "item"}, "selected-no-diversity": {"diversity": 0.0}}
# "rounds": the customer's loop — the first round is the random sample (the source model knows nothing of a
# new type, so its doubt says nothing about where the type is), each later round adds the sentences the
# previous round's updated model is least sure of about the target type (select --types TYPE --per item:
# the budget is counted in sentences), and the update starts from the source on everything chosen
ROUNDS = "rounds"
ROUND_SELECTION = {"per": "item"}
DEFAULT_STRATEGIES = ("random", "selected", ROUNDS)


class ActiveLearning:
    """The runs of one protocol config."""

    def __init__(self, config_path: Path, output: Path, sources, verbose: bool, update_options: dict):
        self.config = json.loads(config_path.read_text(encoding="utf-8"))
        self.name = config_path.stem
        self.folder = output / self.name
        self.protocol = Protocol(self.config, self.folder, verbose)
        self.records = self.folder / "records"
        self.rankings = self.folder / "rankings"
        self.rankings.mkdir(parents=True, exist_ok=True)
        self.sources = [Path(s) for s in sources]
        self.verbose = verbose
        self.update_options = update_options

    def log(self, message: str) -> None:
        print(message, flush=True)

    # the source model and the pool ----------------------------------------------------------------
    def source_folder(self, source: str) -> Path:
        """A protocol run's source model (``--sources``), else this run's own, trained once."""
        for folder in self.sources:
            found = folder / f"source-{source}"
            if (found / "saved_model" / "saved_model.pb").exists():
                return found
        folder = self.protocol.source_folder(source)
        if not (folder / "saved_model" / "saved_model.pb").exists():
            self.log(f"== training the source model {source} into {folder}")
            started = time.time()
            record = self.protocol.train_source(source)
            record.update({"job": f"source-{source}", "seconds": round(time.time() - started, 1)})
            write_record(self.records / f"source-{source}.json", record)
        return folder

    def pool(self, setting: str) -> Corpus:
        """The target domain's training sentences with only the target type kept."""
        spec = self.config["settings"][setting]
        return keep_only(self.protocol.split(spec["pool"]), [spec["target_type"]])

    def ranking(self, setting: str, strategy: str, count: int) -> list:
        """The pool's indices in the order ``strategy`` chooses them, by the source model (cached)."""
        path = self.rankings / f"{setting}-{strategy}.json"
        if path.exists():
            cached = json.loads(path.read_text(encoding="utf-8"))
            if len(cached["order"]) >= count:
                return cached["order"]
        spec = self.config["settings"][setting]
        source = self.source_folder(spec["source"])
        pool = self.pool(setting)
        started = time.time()
        result = api.select(source, pool, None, count=count, **STRATEGIES[strategy])
        record = {"setting": setting, "strategy": strategy, "source": str(source), "pool": len(pool),
                  "settings": result.settings.describe(), "diversity": result.settings.diversity,
                  "order": [c.index for c in result.chosen], "scores": [round(c.score, 6) for c in result.chosen],
                  "seconds": round(time.time() - started, 1)}
        write_record(path, record)
        self.log(f"   ranked {len(pool)} pool sentences by {record['settings']} in {record['seconds']} s")
        return record["order"]

    def model_folder(self, name: str) -> Path:
        return self.folder / "round-models" / name

    def round_sample(self, setting: str, size: int, seed: int, sizes) -> tuple:
        """(the pool's indices ``rounds`` chooses for ``size``, what the choice was made by): the
        previous round's indices plus the sentences its updated model doubts most about the type."""
        smaller = sorted(s for s in sizes if s < size)
        if not smaller:
            raise SystemExit(f"rounds start from the random sample: {size} is the smallest size")
        previous = smaller[-1]
        strategy = "random" if previous == min(sizes) else ROUNDS
        name = f"al-{setting}-{strategy}-{previous}-s{seed}"
        record = json.loads((self.records / f"{name}.json").read_text(encoding="utf-8"))
        chosen = record["indices"]
        pool = self.pool(setting)
        taken = set(chosen)
        remaining = [i for i in range(len(pool)) if i not in taken]
        kind = self.config["settings"][setting]["target_type"]
        result = api.select(self.model_folder(name), Corpus([pool.sentences[i] for i in remaining], pool.scheme),
                            None, count=size - previous, types=[kind], **ROUND_SELECTION)
        return sorted(chosen + [remaining[c.index] for c in result.chosen]), name

    # the runs -------------------------------------------------------------------------------------
    def jobs(self, sizes, seeds, strategies, only=None):
        """(record name, setting, strategy, size, seed) of every run, every row's first seed first."""
        for seed in seeds:
            for size in sizes:
                for strategy in strategies:
                    if strategy == ROUNDS and size == min(sizes):
                        continue  # its first round is the random sample
                    for setting in self.config["settings"]:
                        name = f"al-{setting}-{strategy}-{size}-s{seed}"
                        if not only or re.search(only, name):
                            yield name, setting, strategy, size, seed

    def run(self, setting: str, strategy: str, size: int, seed: int, largest: int, sizes=SIZES) -> dict:
        spec = self.config["settings"][setting]
        kind = spec["target_type"]
        source = self.source_folder(spec["source"])
        pool = self.pool(setting)
        chosen_by, keep_model = None, strategy == ROUNDS or (strategy == "random" and size == min(sizes))
        if strategy == ROUNDS:
            indices, chosen_by = self.round_sample(setting, size, seed, sizes)
        elif strategy == "random":
            import numpy as np

            indices = sorted(np.random.default_rng(seed).permutation(len(pool))[:size].tolist())  # target_sample's
        else:
            indices = sorted(self.ranking(setting, strategy, largest)[:size])
        target = Corpus([pool.sentences[i] for i in indices], pool.scheme, pool.path)
        output = self.model_folder(f"al-{setting}-{strategy}-{size}-s{seed}") if keep_model else None
        if output is not None and output.exists():
            import shutil

            shutil.rmtree(output)  # a run interrupted before its record was written
        record = {"indices": indices, "chosen_by": chosen_by, "setting": setting, "target_type": kind, "strategy": strategy, "size": size, "seed": seed,
                  "source": str(source), "sentences": len(target), "tokens": sum(len(s) for s in target.sentences),
                  "target_spans": sum(span.type == kind for s in target.sentences for span in tags.spans(s.labels)),
                  "sentences_with_target": sum(1 for s in target.sentences if any(t != "O" for t in s.labels)),
                  "update_options": self.update_options}
        started = time.time()
        try:
            result = api.update(source, target, [kind], output, seed=seed, dev=self.protocol.dev_data(setting),
                                forget=spec.get("forget", False), verbose=self.verbose, options=self.update_options)
        except NeuronerError as error:  # e.g. chosen sentences without a single target span: nothing learnt
            record.update({"error": str(error), "f1": 0.0, "precision": 0.0, "recall": 0.0})
            return record
        report = api.evaluate(result.tagger, self.protocol.test_data(setting)).to_dict()
        score = report["types"].get(kind, {"f1": 0.0, "precision": 0.0, "recall": 0.0})
        record.update({"f1": score["f1"], "precision": score["precision"], "recall": score["recall"],
                       "update_seconds": round(time.time() - started, 1), "best_epoch": result.best_epoch,
                       "epochs": len(result.history), "dev": result.dev_scores, "test": report})
        return record

    def run_all(self, sizes, seeds, strategies, shard=(0, 1), only=None) -> None:
        for index, (name, *job) in enumerate(self.jobs(sizes, seeds, strategies, only)):
            path = self.records / f"{name}.json"
            if index % shard[1] != shard[0] or path.exists():
                continue
            self.log(f"== {self.name}: {name}")
            started = time.time()
            record = self.run(*job, largest=max(sizes), sizes=sizes)
            record.update({"job": name, "seconds": round(time.time() - started, 1)})
            write_record(path, record)
            outcome = (f"error: {record['error']}" if "error" in record
                       else f"{record['target_type']} F1 {record['f1']:.2f}")
            self.log(f"   {outcome} ({record['target_spans']} target spans in {record['tokens']} tokens) "
                     f"in {record['seconds']} s")


def write_record(path: Path, record: dict) -> None:
    """One JSON record, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)


# the table ------------------------------------------------------------------------------------------
def load_records(folder: Path) -> list:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*/records/al-*.json"))]


def mean_std(values) -> str:
    if not values:
        return "–"
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f} ({len(values)})"


def table(records: list) -> str:
    """Markdown: per setting and size, each strategy's new-type F1 (mean ± std (runs)), the tokens and
    target spans annotated (means), and failed updates; then the issue's target per setting."""
    rows = {}
    for record in records:
        rows.setdefault((record["setting"], record["target_type"], record["size"]), {}).setdefault(
            record["strategy"], []).append(record)
    strategies = sorted({r["strategy"] for r in records}, key=lambda s: (s != "random", s))
    header = ["setting", "type", "sentences"] + [f"{s}: F1" for s in strategies] + \
        [f"{s}: tokens / spans" for s in strategies]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (setting, kind, size), by_strategy in sorted(rows.items()):
        cells = [setting, kind, str(size)]
        for strategy in strategies:
            runs = by_strategy.get(strategy, [])
            failed = sum("error" in r for r in runs)
            cells.append(mean_std([r["f1"] for r in runs]) + (f", {failed} failed" if failed else ""))
        for strategy in strategies:
            runs = by_strategy.get(strategy, [])
            cells.append(f"{statistics.mean(r['tokens'] for r in runs):.0f} / "
                         f"{statistics.mean(r['target_spans'] for r in runs):.0f}" if runs else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for setting in sorted({r["setting"] for r in records}):
        runs = [r for r in records if r["setting"] == setting]
        random_200 = [r["f1"] for r in runs if r["strategy"] == "random" and r["size"] == 200]
        for strategy in sorted({r["strategy"] for r in runs} - {"random"}):
            chosen_100 = [r["f1"] for r in runs if r["strategy"] == strategy and r["size"] == 100]
            if random_200 and chosen_100:
                met = statistics.mean(chosen_100) >= statistics.mean(random_200)
                lines.append(f"{setting}: {strategy} 100 {statistics.mean(chosen_100):.2f} against random 200 "
                             f"{statistics.mean(random_200):.2f} (target: {strategy} 100 reach random 200: "
                             f"{'met' if met else 'not met'})")
    return "\n".join(lines)


def parsed_options(values) -> dict:
    """``--set NAME=VALUE`` as the update's options (JSON values, else strings)."""
    options = {}
    for value in values:
        name, _, text = value.partition("=")
        try:
            options[name] = json.loads(text)
        except ValueError:
            options[name] = text
    return options


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, action="append", help="a protocol config (repeatable; default: "
                                                                      "protocol_bc5cdr.json and protocol_kind_new.json)")
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "active_learning")
    parser.add_argument("--sources", action="append", default=[],
                        help="a protocol run's models folder whose source-<name> models to reuse (repeatable)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES),
                        choices=["random", ROUNDS, *STRATEGIES])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="an update option or training hyperparameter (e.g. max_epochs=3), for smoke runs")
    parser.add_argument("--only", help="run only the jobs whose name matches this regular expression")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th job starting at i")
    parser.add_argument("--threads", type=int, help="TensorFlow threads (1 when two shards share 2 cores)")
    parser.add_argument("--summary", action="store_true", help="print the table of the records so far and stop")
    parser.add_argument("--verbose", action="store_true", help="print every epoch")
    args = parser.parse_args(argv)
    if not args.summary:
        if args.threads:
            set_threads(args.threads)
        shard = tuple(int(part) for part in args.shard.split("/"))
        options = parsed_options(args.overrides)
        for config in args.config or CONFIGS:
            runs = ActiveLearning(config, args.output, args.sources, args.verbose, options)
            runs.run_all(args.sizes, args.seeds, args.strategies, shard, args.only)
    print(table(load_records(args.output)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The update protocol, rerunnable with one command (issue: updates that hold on real data).

    python experiments/protocol.py                      # every phase, then the summary
    python experiments/protocol.py --phase base         # source, joint and from-scratch models
    python experiments/protocol.py --phase explore      # every method, one seed, 1,000 sentences
    python experiments/protocol.py --phase final        # the default and self-training, 3 seeds, 200 and 1,000
    python experiments/summarize.py runs/protocol       # the tables (also printed at the end of a run)

For each setting (a source model M_S, a target entity type, a pool of target sentences and a test
set): D_T is ``size`` sentences drawn from the pool (seeded by ``data_seed``; the 200 are a subset of
the 1,000) with only the target type annotated. Rows: each update method on M_S; a model trained
from scratch on D_T alone; the joint upper bound, trained on D_S and D_T with every type annotated.

A method name in a phase is an update method (``transfer.METHODS``) or a variant named in the
config's ``variants`` (a method and its options, e.g. another learning rate).

Every job writes one JSON record to ``<output>/records``; a job whose record exists is skipped,
and each M_S is trained once and reused (``<output>/models``). ``--shard i/n`` runs every n-th job,
so that two processes can share a 2-core machine (``--threads 1`` each).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from run_task import drop_types, keep_only, load_split  # noqa: E402

from neuroner_tl import api  # noqa: E402
from neuroner_tl.config import Hyperparameters  # noqa: E402
from neuroner_tl.corpus import Corpus  # noqa: E402

DEFAULT_CONFIG = ROOT / "experiments" / "configs" / "protocol.json"


def target_sample(pool: Corpus, size: int, seed: int) -> Corpus:
    """``size`` pool sentences in a seeded order that does not depend on ``size`` (so smaller
    samples are subsets of larger ones)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(pool))[:size]
    return Corpus([pool.sentences[i] for i in sorted(order.tolist())], pool.scheme, pool.path)


class Protocol:
    def __init__(self, config: dict, output: Path, verbose: bool):
        self.config = config
        self.output = output
        self.verbose = verbose
        self.records = output / "records"
        self.models = output / "models"
        self.records.mkdir(parents=True, exist_ok=True)
        self.models.mkdir(parents=True, exist_ok=True)
        self._cache: dict = {}

    # data -------------------------------------------------------------------------------------
    def split(self, spec: dict) -> Corpus:
        key = json.dumps(spec, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = load_split(spec)
        return self._cache[key]

    def source_data(self, name: str, all_types: bool = False):
        spec = self.config["sources"][name]
        excluded = [] if all_types else spec.get("exclude", [])
        return drop_types(self.split(spec["train"]), excluded), drop_types(self.split(spec["dev"]), excluded)

    def target_data(self, setting: str, size: int, all_types: bool = False) -> Corpus:
        spec = self.config["settings"][setting]
        sample = target_sample(self.split(spec["pool"]), size, self.config["data_seed"])
        return sample if all_types else keep_only(sample, [spec["target_type"]])

    def dev_data(self, setting: str):
        """The customer's own dev set (a setting's ``"dev": {"pool": SPLIT, "size": N}``: N pool sentences
        with only the target type), or None: the update then holds out part of D_T."""
        spec = self.config["settings"][setting]
        if "dev" not in spec:
            return None
        sample = target_sample(self.split(spec["dev"]["pool"]), spec["dev"]["size"], self.config["data_seed"])
        return keep_only(sample, [spec["target_type"]])

    def test_data(self, setting: str) -> Corpus:
        return self.split(self.config["settings"][setting]["test"])

    def extra_tests(self, setting: str) -> dict:
        """A setting's further test sets by name (``"tests"``), e.g. the source's own test set when
        ``test`` is the target domain's."""
        return {name: self.split(spec) for name, spec in self.config["settings"][setting].get("tests", {}).items()}

    def evaluate_extra(self, tagger, setting: str) -> dict:
        return {name: api.evaluate(tagger, corpus).to_dict() for name, corpus in self.extra_tests(setting).items()}

    def embeddings(self):
        """The pretrained word vectors every model trained from scratch starts from (the config's
        ``embeddings``, relative to the repository; None: random vectors). An update keeps the
        source's vocabulary and vectors."""
        path = self.config.get("embeddings")
        if path is None:
            return None
        path = ROOT / path
        if not path.exists():
            raise SystemExit(f"{path}: the config's embeddings are missing (see its 'embeddings_command')")
        return path

    def source_hp(self, seed: int = 1) -> Hyperparameters:
        return Hyperparameters.from_dict({"seed": seed, **self.config.get("source_hyperparameters", {})})

    # jobs ---------------------------------------------------------------------------------------
    def jobs(self, phase: str):
        """(name, function) pairs of a phase, in the order they should run."""
        settings = self.config["settings"]
        phases = self.config["phases"]
        if phase == "base":
            base = phases["base"]
            for source in self.config["sources"]:
                yield f"source-{source}", lambda s=source: self.train_source(s)
            for size in base["joint_sizes"]:
                for group in dict.fromkeys(spec["joint"] for spec in settings.values()):
                    yield f"joint-{group}-{size}", lambda g=group, n=size: self.train_joint(g, n)
            for size in base["scratch_sizes"]:
                for seed in base["scratch_seeds"]:
                    for setting in settings:
                        yield f"scratch-{setting}-{size}-s{seed}", \
                            lambda s=setting, n=size, r=seed: self.train_scratch(s, n, r)
            return
        chosen = phases[phase]
        for seed in chosen["seeds"]:  # every row gets a first seed before any gets a third
            for size in chosen["sizes"]:
                for method in chosen["methods"]:
                    for setting in settings:
                        yield f"update-{setting}-{size}-{method}-s{seed}", \
                            lambda s=setting, n=size, m=method, r=seed: self.run_update(s, n, m, r)

    def run(self, phase: str, shard=(0, 1), only: str = None) -> None:
        for index, (name, job) in enumerate(self.jobs(phase)):
            if index % shard[1] != shard[0] or (only and not re.search(only, name)):
                continue
            path = self.records / f"{name}.json"
            if path.exists():
                continue
            self.log(f"== {name}")
            started = time.time()
            record = job()
            if record is None:
                self.log(f"   skipped {name}: what it needs is not there yet (run --phase base first)")
                continue
            record.update({"job": name, "seconds": round(time.time() - started, 1),
                           "machine": {"cores": os.cpu_count(), "python": platform.python_version()}})
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            os.replace(temporary, path)
            self.log(f"   done in {record['seconds']} s")

    def log(self, message: str) -> None:
        print(message, flush=True)

    # the models ---------------------------------------------------------------------------------
    def source_folder(self, source: str) -> Path:
        return self.models / f"source-{source}"

    def train_source(self, source: str) -> dict:
        train, dev = self.source_data(source)
        folder = self.source_folder(source)
        result = api.train(train, folder, dev=dev, hp=self.source_hp(), force=True, verbose=self.verbose,
                           embeddings=self.embeddings())
        settings = [setting for setting, spec in self.config["settings"].items() if spec["source"] == source]
        tests = {setting: api.evaluate(result.tagger, self.test_data(setting)).to_dict() for setting in settings}
        extra = {setting: self.evaluate_extra(result.tagger, setting) for setting in settings}
        return {"kind": "source", "source": source, "best_epoch": result.best_epoch,
                "epochs": len(result.tagger.history), "dev": result.dev_report.to_dict(), "test": tests,
                "tests": extra}

    def train_joint(self, group: str, size: int) -> dict:
        settings = [s for s, spec in self.config["settings"].items() if spec["joint"] == group]
        source = self.config["settings"][settings[0]]["source"]
        train, dev = self.source_data(source, all_types=True)
        target = self.target_data(settings[0], size, all_types=True)
        joint = Corpus(train.sentences + target.sentences, "IOB2")
        result = api.train(joint, None, dev=dev, hp=self.source_hp(), verbose=self.verbose,
                           embeddings=self.embeddings())
        tests = {setting: api.evaluate(result.tagger, self.test_data(setting)).to_dict() for setting in settings}
        extra = {setting: self.evaluate_extra(result.tagger, setting) for setting in settings}
        return {"kind": "joint", "group": group, "size": size, "best_epoch": result.best_epoch,
                "epochs": len(result.tagger.history), "test": tests, "tests": extra}

    def train_scratch(self, setting: str, size: int, seed: int) -> dict:
        """D_T alone, with the package defaults (10% held out for early stopping)."""
        target = self.target_data(setting, size)
        result = api.train(target, None, hp=Hyperparameters(seed=seed), verbose=self.verbose,
                           embeddings=self.embeddings())
        return {"kind": "scratch", "setting": setting, "size": size, "seed": seed, "best_epoch": result.best_epoch,
                "epochs": len(result.tagger.history),
                "test": api.evaluate(result.tagger, self.test_data(setting)).to_dict(),
                "tests": self.evaluate_extra(result.tagger, setting)}

    def run_update(self, setting: str, size: int, method: str, seed: int):
        spec = self.config["settings"][setting]
        folder = self.source_folder(spec["source"])
        if not (folder / "saved_model" / "saved_model.pb").exists():
            return None
        target = self.target_data(setting, size)
        options = dict(self.config.get("variants", {}).get(method, {"method": method}))
        started = time.time()
        result = api.update(folder, target, [spec["target_type"]], None, seed=seed, dev=self.dev_data(setting),
                            forget=spec.get("forget", False), verbose=self.verbose, options=options)
        seconds = time.time() - started
        return {"kind": "update", "setting": setting, "size": size, "method": method, "seed": seed,
                "options": options, "update_seconds": round(seconds, 1), "best_epoch": result.best_epoch,
                "epochs": len(result.history), "dev": result.dev_scores, "pseudo_labels": result.pseudo_labels,
                "test": api.evaluate(result.tagger, self.test_data(setting)).to_dict(),
                "tests": self.evaluate_extra(result.tagger, setting)}


def set_threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "protocol")
    parser.add_argument("--phase", default="all", help="base, all, or a phase of the config (explore, final, ...)")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th job starting at i")
    parser.add_argument("--only", help="run only the jobs whose name matches this regular expression")
    parser.add_argument("--threads", type=int, help="TensorFlow threads (1 when two shards share 2 cores)")
    parser.add_argument("--verbose", action="store_true", help="print every epoch")
    args = parser.parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    shard = tuple(int(part) for part in args.shard.split("/"))
    protocol = Protocol(config, args.output, args.verbose)
    for phase in (["base", "explore", "final"] if args.phase == "all" else [args.phase]):
        protocol.run(phase, shard, args.only)
    if args.phase == "all":
        from summarize import summarize

        print(summarize(args.output, config))


if __name__ == "__main__":
    main()

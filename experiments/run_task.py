#!/usr/bin/env python3
"""Run one of the paper's transfer tasks end to end and print its results table.

    python experiments/run_task.py --task iii
    python experiments/run_task.py --config experiments/configs/conll2003_new_type.json

Protocol: train M_S on D_S; evaluate it on D_test (initial step); annotate D_T's other types with
M_S; operate (add or forget the target type, grow the vocabulary); fine-tune on D_T; evaluate M_T
on D_test (subsequent step). D_T keeps only the target type's annotation. Results (Markdown, CSV,
JSON, a bar chart), the resolved configuration and the seed go to ``--output`` (default
``runs/<config name>``).

Config keys: ``task`` (i, ii or iii), ``seed``, ``target_types``, ``forget``, ``data`` (``synthetic``
with domains and sizes, or ``files`` with paths relative to the repository root and optional
``sentences`` [start, end] slices and ``limit``), ``exclude_from_source`` (types relabelled O in
D_S), ``hyperparameters`` (for M_S) and ``update`` (any update option or training hyperparameter:
method, learning_rate, init, max_epochs, patience, ...). Synthetic test sets are drawn with the
held-out templates and formats (``split="test"``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuroner_tl import api, tags  # noqa: E402
from neuroner_tl.config import Hyperparameters  # noqa: E402
from neuroner_tl.conll import read_conll, write_conll  # noqa: E402
from neuroner_tl.corpus import Corpus  # noqa: E402
from neuroner_tl.datasets import generate_corpus  # noqa: E402
from neuroner_tl.reporting import count_entities, format_text, results_rows, write_results  # noqa: E402

DEFAULT_CONFIGS = {"i": "task_i.json", "ii": "task_ii.json", "iii": "task_iii.json"}


def keep_only(corpus: Corpus, types) -> Corpus:
    """The corpus with every entity not of ``types`` relabelled O (IOB2)."""
    wanted = set(types)
    sentences = [s.with_labels(tags.tags_from_spans([sp for sp in tags.spans(s.labels) if sp.type in wanted],
                                                    len(s), "IOB2")) for s in corpus.sentences]
    return Corpus(sentences, "IOB2", corpus.path)


def drop_types(corpus: Corpus, types) -> Corpus:
    present = set(corpus.entity_types()) - set(types)
    return keep_only(corpus, present)


def load_split(spec: dict) -> Corpus:
    corpus = read_conll(ROOT / spec["path"], scheme=spec.get("scheme"))
    sentences = corpus.sentences
    if "sentences" in spec:
        start, end = spec["sentences"]
        sentences = sentences[start:end]
    if "limit" in spec:
        sentences = sentences[: spec["limit"]]
    result = Corpus(sentences, corpus.scheme, corpus.path).converted("IOB2")
    return relabel(result, spec["relabel"]) if "relabel" in spec else result


def relabel(corpus: Corpus, mapping: dict) -> Corpus:
    """The corpus with each type renamed by ``mapping`` (e.g. WNUT-17's ``person`` -> ``PER``); types the
    mapping does not name become O."""
    sentences = [s.with_labels(tags.tags_from_spans([sp._replace(type=mapping[sp.type]) for sp in tags.spans(s.labels)
                                                     if sp.type in mapping], len(s), "IOB2"))
                 for s in corpus.sentences]
    return Corpus(sentences, "IOB2", corpus.path)


def prepare_data(config: dict):
    """(D_S train, D_S dev, D_T, D_test) as IOB2 corpora."""
    data, seed = config["data"], config["seed"]
    if data["kind"] == "synthetic":
        source, target, test = data["source"], data["target"], data["test"]
        source_train = generate_corpus(source["domain"], source["train"], seed)
        source_dev = generate_corpus(source["domain"], source["dev"], seed + 1)
        target_train = generate_corpus(target["domain"], target["train"], seed + 2)
        test_corpus = generate_corpus(test["domain"], test["size"], seed + 3, split="test")  # held-out formats
    else:
        source_train, source_dev = load_split(data["source"]["train"]), load_split(data["source"]["dev"])
        target_train, test_corpus = load_split(data["target"]["train"]), load_split(data["test"])
    excluded = config.get("exclude_from_source", [])
    source_train, source_dev = drop_types(source_train, excluded), drop_types(source_dev, excluded)
    return source_train, source_dev, keep_only(target_train, config["target_types"]), test_corpus


def run(config: dict, output: Path, verbose: bool = True) -> list:
    started = time.time()
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    source_train, source_dev, target_train, test = prepare_data(config)
    for name, corpus in (("source_train", source_train), ("source_dev", source_dev), ("target_train", target_train),
                         ("test", test)):
        write_conll(output / "data" / f"{name}.txt", corpus.sentences)
    hp = Hyperparameters.from_dict({"seed": config["seed"], **config.get("hyperparameters", {})})
    log = print if verbose else (lambda *a, **k: None)

    log(f"== initial step: train M_S on {len(source_train)} sentences")
    source = api.train(output / "data" / "source_train.txt", output / "M_S", dev=output / "data" / "source_dev.txt",
                       hp=hp, force=True, verbose=verbose)
    initial = api.evaluate(source.tagger, test)

    update_options = config.get("update", {})
    log(f"== subsequent step: update with {', '.join(config['target_types'])} on {len(target_train)} sentences")
    updated = api.update(output / "M_S", output / "data" / "target_train.txt", config["target_types"], output / "M_T",
                         forget=config.get("forget", False), options=update_options, force=True, verbose=verbose,
                         seed=config["seed"])
    subsequent = api.evaluate(updated.tagger, test)

    rows = results_rows(count_entities(s.labels for s in source_train.sentences),
                        count_entities(s.labels for s in target_train.sentences), initial, subsequent)
    record = {"config": config, "seed": config["seed"], "pseudo_labels": updated.pseudo_labels,
              "source_epochs": len(source.tagger.history), "source_best_epoch": source.best_epoch,
              "update_best_epoch": updated.best_epoch, "update_dev": updated.dev_scores,
              "update_settings": updated.settings.to_dict(), "update_seconds": updated.seconds, "seconds": round(time.time() - started, 1),
              "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
              "initial": initial.to_dict(), "subsequent": subsequent.to_dict()}
    title = config.get("title", f"Task ({config['task']})")
    write_results(output, rows, record, title)
    print(f"\n{title}\n{format_text(rows)}\n\nresults in {output}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(DEFAULT_CONFIGS), help="run the default config of this task")
    parser.add_argument("--config", type=Path, help="a JSON config (overrides --task)")
    parser.add_argument("--output", type=Path, help="results folder (default runs/<config name>)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--method", help="the update method (default: the config's, else the package default); "
                                         "--method paper reproduces the paper (self-training at 0.005)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.config is None and args.task is None:
        parser.error("give --task or --config")
    path = args.config or ROOT / "experiments" / "configs" / DEFAULT_CONFIGS[args.task]
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    if args.seed is not None:
        config["seed"] = args.seed
    if args.method is not None:
        config["update"] = {**config.get("update", {}), "method": args.method}
    output = args.output or ROOT / "runs" / Path(path).stem
    run(config, output, verbose=not args.quiet)


if __name__ == "__main__":
    main()

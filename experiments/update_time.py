#!/usr/bin/env python3
"""Wall time and quality of a whole ``neuroner-tl update`` (load, annotate, surgery, training, export),
for this checkout and a baseline checkout side by side in one run, alternating.

    git worktree add /tmp/before 91e095c      # the release before issue #18
    python experiments/update_time.py runs/protocol/models/source-conll-no-ORG --type ORG \\
        --baseline /tmp/before --repeats 2

D_T: ``--size`` sentences of CoNLL-2003 train (sentences 10,000-14,040, the protocol's sample, seed 0)
with only ``--type`` annotated; each system runs its own default method through the command line
(a fresh process, as a user runs it). Quality: the type's F1 and the other types' mean F1 change
against the source on the CoNLL-2003 test set. Also counts the lines of TensorFlow warnings that
reach the user's terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
from neuroner_tl.conll import write_conll  # noqa: E402

TF_NOISE = ("WARNING", "retracing", "oneDNN", "cuda", "absl", "I0000", "E0000", "W0000")


def run_update(checkout: Path, source: Path, target: Path, kind: str, output: Path, dev: Path = None):
    """(seconds, stderr lines that are TensorFlow's) of one update through the CLI of ``checkout``."""
    command = [sys.executable, "-c", "from neuroner_tl.cli import main; main()", "update", "-m", str(source),
               "-t", str(target), "-e", kind, "-o", str(output), "--force"] + (["--dev", str(dev)] if dev else [])
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment["PYTHONPATH"] = str(checkout)
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=checkout)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{checkout}: update failed\n{finished.stderr[-2000:]}")
    noise = [line for line in finished.stderr.splitlines() if any(word in line for word in TF_NOISE)]
    return seconds, noise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--type", default="ORG")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the version to compare with")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--target", type=Path, help="the target file (default: --size CoNLL-2003 sentences)")
    parser.add_argument("--dev", type=Path, help="the customer's own dev file, passed to update --dev")
    parser.add_argument("--type-test", type=Path, help="where the new type is scored (default: CoNLL-2003 test)")
    args = parser.parse_args(argv)
    pool = load_split({"path": "../shared/data/conll2003/train.txt", "sentences": [10000, 14041]})
    test = load_split({"path": "../shared/data/conll2003/test.txt"})
    source = api.as_tagger(args.model)
    before = api.evaluate(source, test)
    old = [t for t in source.entity_types if t != args.type]
    systems = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    results = {name: [] for name in systems}
    with tempfile.TemporaryDirectory() as folder:
        target = args.target.resolve() if args.target else Path(folder) / "target.conll"
        if not args.target:
            write_conll(target, keep_only(target_sample(pool, args.size, 0), [args.type]).sentences)
        type_test = load_split({"path": str(args.type_test.resolve())}) if args.type_test else test
        for repeat in range(args.repeats):
            for name, checkout in systems.items():
                output = Path(folder) / f"{name.replace(' ', '_')}_{repeat}"
                seconds, noise = run_update(checkout, args.model.resolve(), target, args.type, output,
                                            args.dev.resolve() if args.dev else None)
                updated = api.as_tagger(output)
                after, on_type = api.evaluate(updated, test), api.evaluate(updated, type_test)
                method = api.info(output)["provenance"]["updates"][-1]["settings"]["method"]
                change = statistics.mean(after.by_type[t].f1 - before.by_type[t].f1 for t in old)
                results[name].append({"seconds": round(seconds, 1), "method": method,
                                      "new_f1": round(on_type.by_type[args.type].f1, 2), "old_change": round(change, 2),
                                      "tf_warning_lines": len(noise)})
                print(name, results[name][-1], flush=True)
    print(f"\nupdate on {args.target or args.size} sentences ({args.type} new), {os.cpu_count()} cores, "
          f"best of {args.repeats} runs each:")
    for name, rows in results.items():
        best = min(rows, key=lambda r: r["seconds"])
        print(f"  {name:14s} {best['seconds']:6.1f} s  method {best['method']:8s} {args.type} F1 {best['new_f1']:6.2f}  "
              f"old types {best['old_change']:+.2f}  TF warning lines {best['tf_warning_lines']}")
    ratio = min(r["seconds"] for r in results["baseline"]) / min(r["seconds"] for r in results["this checkout"])
    print(f"  speed-up {ratio:.2f}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

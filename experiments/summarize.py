#!/usr/bin/env python3
"""The update protocol's tables, from the JSON records ``protocol.py`` wrote.

    python experiments/summarize.py runs/protocol                 # Markdown to stdout
    python experiments/summarize.py runs/protocol --format rst    # reStructuredText list-tables

Per setting and target-set size, one row per system: the source model M_S, each update method,
a model trained from scratch on D_T, and the joint upper bound (D_S and D_T, every type annotated).
Columns: the new (target) type's test F1, each old type's F1 change against M_S, their mean, the
overall test F1 and the update's wall time; mean ± std over the seeds that ran. Then the targets.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "experiments" / "configs" / "protocol.json"
METHOD_ORDER = ("finetune", "self-training", "paper", "l2-sp", "distill", "ewc", "distill-states", "cpfd", "isolate",
                "column")


def load_records(folder: Path) -> list:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "records").glob("*.json"))]


def type_f1(report: dict, kind: str) -> float:
    return report["types"].get(kind, {}).get("f1", 0.0)


def mean_std(values):
    if not values:
        return None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0), len(values)


def fmt(stat, signed=False) -> str:
    if stat is None:
        return "–"
    mean, std, n = stat
    text = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return text + (f" ± {std:.2f}" if n > 1 else "")


def report_of(record: dict, setting: str, test: str = None):
    """A record's report on the setting's test set (``test`` None) or on one of its further test sets
    (the ``tests`` of a setting, e.g. ``"source"``)."""
    if test is None:
        return record["test"][setting] if record["kind"] in ("source", "joint") else record["test"]
    tests = record.get("tests", {})
    tests = tests.get(setting, {}) if record["kind"] in ("source", "joint") else tests
    return tests.get(test)


def rows_for(setting: str, spec: dict, size: int, records: list, test: str = None):
    """(header, rows) for one setting and size, on its test set or on the further test set ``test``."""
    target = spec["target_type"]
    source = next((r for r in records if r["kind"] == "source" and r["source"] == spec["source"]), None)
    if source is None or setting not in source["test"] or report_of(source, setting, test) is None:
        return None
    initial = report_of(source, setting, test)
    old_types = sorted(t for t in initial["types"] if t != target)
    if spec.get("task") == "iii":
        old_types = [t for t in old_types if t in set(initial["types"]) and type_f1(initial, t) > 0]
    header = ["system", f"{target} F1 (new)"] + [f"{t} Δ" for t in old_types] + ["old types Δ (mean)",
                                                                               "overall F1", "update s", "runs"]
    rows = [["M_S (source)", f"{type_f1(initial, target):.2f}"] + ["0"] * len(old_types)
            + ["0", f"{initial['overall']['f1']:.2f}", "–", "1"]]
    summary = {}
    updates = collections.defaultdict(list)
    for record in records:
        if record["kind"] == "update" and record["setting"] == setting and record["size"] == size:
            updates[record["method"]].append(dict(record, test=report_of(record, setting, test)))
    methods = [m for m in METHOD_ORDER if m in updates] + sorted(set(updates) - set(METHOD_ORDER))
    for method in methods:
        runs = updates[method]
        new = mean_std([type_f1(r["test"], target) for r in runs])
        deltas = {t: mean_std([type_f1(r["test"], t) - type_f1(initial, t) for r in runs]) for t in old_types}
        mean_delta = mean_std([statistics.mean(type_f1(r["test"], t) - type_f1(initial, t) for t in old_types)
                               for r in runs]) if old_types else None
        overall = mean_std([r["test"]["overall"]["f1"] for r in runs])
        seconds = mean_std([r["update_seconds"] for r in runs])
        rows.append([method, fmt(new)] + [fmt(deltas[t], True) for t in old_types]
                    + [fmt(mean_delta, True), fmt(overall), fmt(seconds), str(len(runs))])
        summary[method] = {"new": new, "old_delta": mean_delta, "seconds": seconds}
    scratch = [dict(r, test=report_of(r, setting, test)) for r in records
               if r["kind"] == "scratch" and r["setting"] == setting and r["size"] == size]
    if scratch:
        summary["scratch"] = mean_std([type_f1(r["test"], target) for r in scratch])
        rows.append(["scratch on D_T", fmt(mean_std([type_f1(r["test"], target) for r in scratch]))]
                    + ["–"] * len(old_types) + ["–", "–", "–", str(len(scratch))])
    joint = next((r for r in records if r["kind"] == "joint" and r["group"] == spec["joint"] and r["size"] == size),
                 None)
    if joint is not None and report_of(joint, setting, test) is not None:
        report = report_of(joint, setting, test)
        rows.append(["joint D_S ∪ D_T", f"{type_f1(report, target):.2f}"]
                    + [f"{type_f1(report, t) - type_f1(initial, t):+.2f}" for t in old_types]
                    + [f"{statistics.mean(type_f1(report, t) - type_f1(initial, t) for t in old_types):+.2f}"
                       if old_types else "–", f"{report['overall']['f1']:.2f}", "–", "1"])
        summary["joint"] = type_f1(report, target)
    summary["source_new"] = type_f1(initial, target)
    summary["source_overall"] = initial["overall"]["f1"]
    summary["overall"] = {m: mean_std([r["test"]["overall"]["f1"] for r in updates[m]]) for m in methods}
    return header, rows, summary


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def rst_table(header, rows) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [header] + rows:
        lines.append("   * - " + cells[0])
        lines.extend(f"     - {cell}" for cell in cells[1:])
    return "\n".join(lines)


def target_checks(summaries: dict, method: str) -> list:
    """The issue's targets for ``method``, one line each."""
    lines = []
    for (setting, size), summary in sorted(summaries.items()):
        result = summary.get(method)
        if not result:
            continue
        parts = [f"{setting}, {size} sentences:"]
        on_source = summary.get("on source test", {}).get(method)
        if on_source and on_source["old_delta"] is not None:  # what the provider ships must not get worse
            in_domain = (f"{result['old_delta'][0]:+.2f} (target ≥ 0: "
                         f"{'met' if result['old_delta'][0] >= 0 else 'not met'})"
                         if result["old_delta"] is not None else "not annotated there")
            parts.append(f"old types on the source test {on_source['old_delta'][0]:+.2f} (target ≥ -0.3: "
                         f"{'met' if on_source['old_delta'][0] >= -0.3 else 'not met'}); in the target domain "
                         + in_domain)
        elif result["old_delta"] is not None:
            limit = -0.5 if size < 1000 else -0.3
            parts.append(f"old types {result['old_delta'][0]:+.2f} (target ≥ {limit}: "
                         f"{'met' if result['old_delta'][0] >= limit else 'not met'})")
        if "joint" in summary and size >= 1000 and summary["joint"] > 0:
            ratio = 100 * result["new"][0] / summary["joint"]
            parts.append(f"new type {ratio:.1f}% of joint (target ≥ 90%: {'met' if ratio >= 90 else 'not met'})")
        if result["new"][2] > 1:
            parts.append(f"new-type std {result['new'][1]:.2f} (target ≤ 3: "
                         f"{'met' if result['new'][1] <= 3 else 'not met'})")
        if setting.startswith("kind"):
            overall = summary["overall"][method][0]
            parts.append(f"overall {overall:.2f} vs M_S {summary['source_overall']:.2f} "
                         f"({'not below' if overall >= summary['source_overall'] else 'below'})")
        lines.append(" ".join(parts))
    return lines


def overview(summaries: dict, config: dict, size: int, methods=("distill", "self-training")) -> tuple:
    """(header, rows): one row per setting at ``size``; the new type's F1 per system and the old
    types' mean change per method."""
    header = ["setting", "new type"] + [f"{m}: new F1" for m in methods] + ["scratch: new F1", "joint: new F1"] \
        + [f"{m}: old Δ" for m in methods]
    rows = []
    for (setting, setting_size), summary in sorted(summaries.items()):
        if setting_size != size:
            continue
        spec = config["settings"][setting]
        cells = [setting, spec["target_type"]]
        cells += [fmt(summary[m]["new"]) if m in summary else "–" for m in methods]
        cells += [fmt(summary.get("scratch")), f"{summary['joint']:.2f}" if "joint" in summary else "–"]
        cells += [fmt(summary[m]["old_delta"], True) if m in summary and summary[m]["old_delta"] else "–"
                  for m in methods]
        rows.append(cells)
    return header, rows


def summarize(folder: Path, config: dict, style: str = "markdown", method: str = None,
              compact: bool = False) -> str:
    records = load_records(folder)
    sizes = sorted({r["size"] for r in records if r["kind"] == "update"}, reverse=True)
    out, summaries = [], {}
    for setting, spec in config["settings"].items():
        for size in sizes:
            for test in [None] + list(spec.get("tests", {})):
                table = rows_for(setting, spec, size, records, test)
                if table is None or len(table[1]) <= 1:
                    continue
                header, rows, summary = table
                if test is None:
                    summaries[(setting, size)] = summary
                else:
                    summaries[(setting, size)][f"on {test} test"] = summary
                title = f"{setting}: {spec['target_type']} from {size} target sentences (task {spec.get('task', '?')})" \
                    + (f", scored on the {test} test set" if test else "")
                if style == "rst":
                    out += [title, "~" * len(title), "", rst_table(header, rows), ""]
                else:
                    out += [f"### {title}", "", markdown_table(header, rows), ""]
    if compact:
        out = []
        for size in sizes:
            header, rows = overview(summaries, config, size)
            title = f"{size} target sentences (mean ± std over seeds)"
            out += ([title, "~" * len(title), "", rst_table(header, rows), ""] if style == "rst"
                    else [f"### {title}", "", markdown_table(header, rows), ""])
    for name in ([method] if method else ["isolate", "distill", "self-training", "paper"]):
        checks = target_checks(summaries, name)
        if checks:
            out += [f"Targets, {name}:", ""] + [f"- {line}" for line in checks] + [""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=ROOT / "runs" / "protocol")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--format", choices=["markdown", "rst"], default="markdown")
    parser.add_argument("--method", help="check the targets for this method only")
    parser.add_argument("--compact", action="store_true", help="one overview table per size instead")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    sys.stdout.write(summarize(args.folder, config, args.format, args.method, args.compact) + "\n")


if __name__ == "__main__":
    main()

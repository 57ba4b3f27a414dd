"""The paper's results table: per entity type, training examples in D_S and D_T, test examples,
test F1 before (initial step) and after the update (subsequent step), with the delta."""

from __future__ import annotations

import collections
import csv
import io
import json
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from . import tags as tagging
from .evaluation import OVERALL, Report

COLUMNS = ("NE type", "# training examples in D_S", "# training examples in D_T", "# test examples",
           "test F1 initial", "test F1 subsequent", "delta")


def count_entities(label_sequences: Iterable[Sequence[str]]) -> Dict[str, int]:
    counts: collections.Counter = collections.Counter()
    for labels in label_sequences:
        counts.update(span.type for span in tagging.spans(labels))
    return dict(counts)


def results_rows(source_counts: Dict[str, int], target_counts: Dict[str, int], initial: Report,
                 subsequent: Report) -> List[dict]:
    """One row per type seen anywhere, then "All"."""
    types = sorted(set(source_counts) | set(target_counts) | set(initial.by_type) | set(subsequent.by_type))
    rows = []
    for kind in types:
        before = initial.by_type.get(kind)
        after = subsequent.by_type.get(kind)
        test = (after or before).gold if (after or before) else 0
        f1_before = before.f1 if before else 0.0
        f1_after = after.f1 if after else 0.0
        rows.append({"type": kind, "source_train": source_counts.get(kind, 0), "target_train": target_counts.get(kind, 0),
                     "test": test, "f1_initial": f1_before, "f1_subsequent": f1_after, "delta": f1_after - f1_before})
    rows.append({"type": OVERALL, "source_train": sum(source_counts.values()),
                 "target_train": sum(target_counts.values()), "test": subsequent.overall.gold,
                 "f1_initial": initial.f1, "f1_subsequent": subsequent.f1, "delta": subsequent.f1 - initial.f1})
    return rows


def _cells(row: dict) -> List[str]:
    return [row["type"], str(row["source_train"]), str(row["target_train"]), str(row["test"]),
            f"{row['f1_initial']:.2f}", f"{row['f1_subsequent']:.2f}", f"{row['delta']:+.2f}"]


def format_text(rows: Sequence[dict]) -> str:
    header = ["NE type", "# D_S", "# D_T", "# test", "F1 initial", "F1 subsequent", "(delta)"]
    table = [header] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)) for line in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_markdown(rows: Sequence[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    for row in rows:
        cells = _cells(row)
        if row["type"] == OVERALL:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_csv(rows: Sequence[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row["type"], row["source_train"], row["target_train"], row["test"],
                         f"{row['f1_initial']:.4f}", f"{row['f1_subsequent']:.4f}", f"{row['delta']:.4f}"])
    return out.getvalue()


def plot_rows(rows: Sequence[dict], path: Path, title: str = "") -> None:
    """Grouped bars: test F1 per type before and after the update."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [r["type"] for r in rows]
    positions = range(len(rows))
    figure = Figure(figsize=(max(6, 1.1 * len(rows)), 4))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    axis.bar([p - 0.2 for p in positions], [r["f1_initial"] for r in rows], width=0.4, label="initial (M_S)")
    axis.bar([p + 0.2 for p in positions], [r["f1_subsequent"] for r in rows], width=0.4, label="subsequent (M_T)")
    axis.set_xticks(list(positions))
    axis.set_xticklabels(names, rotation=30, ha="right")
    axis.set_ylabel("test F1")
    axis.set_ylim(0, 100)
    axis.legend()
    if title:
        axis.set_title(title)
    figure.tight_layout()
    figure.savefig(str(path), dpi=100)


def write_results(folder: Path, rows: Sequence[dict], record: dict, title: str = "") -> Dict[str, Path]:
    """``results.md``, ``results.csv``, ``results.json`` (rows plus the run's record) and ``results.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "results.md", "csv": folder / "results.csv", "json": folder / "results.json",
             "chart": folder / "results.png"}
    paths["markdown"].write_text((f"## {title}\n\n" if title else "") + format_markdown(rows), encoding="utf-8")
    paths["csv"].write_text(format_csv(rows), encoding="utf-8")
    paths["json"].write_text(json.dumps({**record, "rows": list(rows)}, indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
    plot_rows(rows, paths["chart"], title)
    return paths

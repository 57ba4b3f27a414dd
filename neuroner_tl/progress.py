"""What a run reports while it trains: a record and a printed row per epoch (``Progress``), and the
plot of the training loss and dev F1 saved with the model."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Optional, Sequence


@dataclasses.dataclass
class EpochRecord:
    epoch: int
    loss: float
    dev_f1: Optional[float]
    dev_precision: Optional[float]
    dev_recall: Optional[float]
    seconds: float
    sentences_per_second: float
    dev_details: Optional[dict] = None  # what the selection reports beside its score

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Progress:
    """Prints a run header and a row per epoch; on a terminal ``fit`` also shows Keras's progress bar."""

    def __init__(self, verbose: bool = True, stream=None):
        self.verbose = verbose
        self.stream = stream or sys.stderr

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, file=self.stream, flush=True)

    @property
    def shows_bar(self) -> bool:
        return self.verbose and hasattr(self.stream, "isatty") and self.stream.isatty()


def plot_history(history: Sequence[dict], path: Path) -> None:
    """A PNG with the training loss and the dev scores per epoch: dev F1 for a training; for an
    update, its target F1 and retention F1 and the score that selects the epoch (their smoothed mix,
    never labelled "dev F1")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    figure = Figure(figsize=(7, 3.5))
    FigureCanvasAgg(figure)
    loss_axis = figure.add_subplot(1, 1, 1)
    loss_axis.plot(epochs, [r["loss"] for r in history], color="tab:blue", marker="o", label="training loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss", color="tab:blue")
    if any(r.get("dev_f1") is not None for r in history):
        f1_axis = loss_axis.twinx()
        update = any("dev_target_f1" in r for r in history)
        if update:
            for key, label, color in (("dev_target_f1", "dev target F1 (gold)", "tab:green"),
                                      ("dev_retention_f1", "dev retention F1", "tab:purple")):
                f1_axis.plot(epochs, [r.get(key) for r in history], color=color, marker=".", label=label)
        score = "selection score (smoothed mix)" if update else "dev F1"
        f1_axis.plot(epochs, [r.get("dev_f1") for r in history], color="tab:red", marker="s", label=score)
        f1_axis.set_ylabel("dev scores" if update else "dev F1", color="tab:red")
        if update:
            f1_axis.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(str(path), dpi=100)

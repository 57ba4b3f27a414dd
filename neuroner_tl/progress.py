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
    """A PNG with the training loss and the dev F1 per epoch."""
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
        f1_axis.plot(epochs, [r.get("dev_f1") for r in history], color="tab:red", marker="s", label="dev F1")
        f1_axis.set_ylabel("dev F1", color="tab:red")
    figure.tight_layout()
    figure.savefig(str(path), dpi=100)

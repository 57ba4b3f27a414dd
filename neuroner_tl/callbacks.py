"""The Keras callbacks of a training run, what happens between steps and epochs: ``DevSelection``
(early stopping on a dev score, the best epoch's weights kept, a row per epoch), ``EpochCheckpoint``
(to resume from, bit for bit) and ``BatchGuard`` (Ctrl-C, a diverging loss)."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from pathlib import Path
from typing import List, Optional, Sequence

import keras
import numpy as np

from .atomic import atomic_write_text, atomic_writer
from .corpus import Corpus
from .interrupts import CtrlC
from .model import assign_weights, weight_arrays
from .progress import EpochRecord, Progress
from .tagger import Tagger


CHECKPOINT_STATE = "state.json"


@dataclasses.dataclass(frozen=True)
class DevScore:
    """What early stopping maximises after an epoch, with what to report beside it."""

    score: float
    precision: Optional[float] = None
    recall: Optional[float] = None
    details: Optional[dict] = None
    # False while the score cannot yet judge the run (an update's target types still score 0):
    # patience does not count such epochs, so a slow start is not mistaken for a plateau
    ready: bool = True
    # how much the score moves from epoch to epoch by chance: a rise of no more than this does not
    # reset patience (0: any rise does)
    noise: float = 0.0


def dev_f1(dev: Corpus):
    """The default selection: conlleval's overall F1 on ``dev``."""

    def select(tagger: Tagger) -> DevScore:
        report = tagger.evaluate(dev)[0]
        return DevScore(report.f1, report.overall.precision, report.overall.recall)

    return select


class DevSelection(keras.callbacks.Callback):
    """Dev-score early stopping that keeps the best epoch's weights, and the row printed per epoch.

    After each epoch the tagger (whose network is the one training, or receives its weights) is
    scored by ``selection``; the best epoch's weights are kept and restored at the end
    (``keep_best``). Training stops when the score has not improved for ``hp.patience`` epochs and
    ``hp.patience_steps`` steps, and never while the score says it is not ready; a rise counts
    only when it exceeds the score's noise (``DevScore.noise``) above the last epoch that counted, so
    a score that creeps up by chance does not keep a run going. The dev figures go into the epoch's
    logs, so TensorBoard plots them.
    """

    def __init__(self, tagger: Tagger, network, selection, hp, batches_per_epoch: int, sentences: int,
                 progress: Progress):
        super().__init__()
        self.tagger, self.network, self.selection, self.hp = tagger, network, selection, hp
        self.batches_per_epoch, self.sentences, self.progress = batches_per_epoch, sentences, progress
        self.history: List[EpochRecord] = []
        self.best_score, self.best_epoch, self.best_weights = -1.0, 0, None
        # the last epoch whose score rose more than its noise, and that score: patience counts from it
        self.rise_score, self.rise_epoch = -1.0, 0
        self.stopped_early = False
        self.improved = False  # whether the last epoch was the best so far
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        number = epoch + 1  # Keras counts from 0
        seconds = time.perf_counter() - self._started
        if self.network is not self.tagger.network:
            assign_weights(self.tagger.network, weight_arrays(self.network))
        # the tagger's compiled decoders read the network's variables: new values need no retracing
        scored = self.selection(self.tagger) if self.selection is not None else None
        record = EpochRecord(number, float(logs.get("loss", float("nan"))), scored.score if scored else None,
                             scored.precision if scored else None, scored.recall if scored else None,
                             seconds, self.sentences / seconds, scored.details if scored else None)
        self.history.append(record)
        improved = scored is None or scored.score > self.best_score
        if improved:
            self.best_score, self.best_epoch = (scored.score if scored else self.best_score), number
            self.best_weights = weight_arrays(self.network)
        if scored is None or scored.score > self.rise_score + scored.noise:
            self.rise_score, self.rise_epoch = (scored.score if scored else self.rise_score), number
        self.improved = improved
        self._log(record, improved)
        logs.update(self._scalars(record, scored))
        self.stopped_early = self.patience_spent(number) and (scored is None or scored.ready)
        if self.stopped_early:
            self.model.stop_training = True
            self.progress.log(self._why_stopped(number, scored))
        elif number == self.hp.max_epochs:
            self.progress.log(f"stopping: max_epochs ({self.hp.max_epochs}) reached")

    def patience_spent(self, epoch: int) -> bool:
        waited = epoch - self.rise_epoch
        return self.selection is not None and waited >= self.hp.patience and \
            waited * self.batches_per_epoch >= self.hp.patience_steps

    def _why_stopped(self, epoch: int, scored: Optional[DevScore]) -> str:
        waited = epoch - self.rise_epoch
        noise = f" by more than its noise ({scored.noise:.2f})" if scored is not None and scored.noise > 0 else ""
        return (f"stopping: the dev score has not risen{noise} above {self.rise_score:.2f} (epoch "
                f"{self.rise_epoch}) for {waited} epochs ({waited * self.batches_per_epoch} steps); "
                f"keeping epoch {self.best_epoch} ({self.best_score:.2f})")

    def keep_best(self) -> None:
        """The best epoch's weights into the tagger's network (and the one that trained)."""
        if self.best_weights is not None:
            assign_weights(self.tagger.network, self.best_weights)
            if self.network is not self.tagger.network:
                assign_weights(self.network, self.best_weights)

    # what a checkpoint keeps of it
    def state(self) -> dict:
        return {"best_f1": self.best_score, "best_epoch": self.best_epoch, "rise_score": self.rise_score,
                "rise_epoch": self.rise_epoch, "history": [r.to_dict() for r in self.history]}

    def load_state(self, state: dict, best_weights: Optional[dict]) -> None:
        self.history = [EpochRecord(**record) for record in state["history"]]
        self.best_score, self.best_epoch = state["best_f1"], state["best_epoch"]
        self.rise_score = state.get("rise_score", self.best_score)
        self.rise_epoch = state.get("rise_epoch", self.best_epoch)
        self.best_weights = best_weights
        self.stopped_early = bool(self.history) and self.patience_spent(state["epoch"])

    @staticmethod
    def _scalars(record: EpochRecord, scored: Optional[DevScore]) -> dict:
        values = {"sentences_per_second": record.sentences_per_second}
        if scored is not None:
            values["dev_score"] = scored.score
            values.update({f"dev_{name}": value for name, value in (scored.details or {}).items()
                           if isinstance(value, (int, float)) and not isinstance(value, bool)})
        return values

    def _log(self, record: EpochRecord, improved: bool) -> None:
        if record.dev_details:
            dev = f"dev score {record.dev_f1:6.2f} (" + ", ".join(
                f"{name} {value:.2f}" if isinstance(value, float) else f"{name} {value}"
                for name, value in record.dev_details.items()) + ")"
        elif record.dev_f1 is not None and record.dev_precision is not None:
            dev = f"dev F1 {record.dev_f1:6.2f} (P {record.dev_precision:6.2f} R {record.dev_recall:6.2f})"
        elif record.dev_f1 is not None:
            dev = f"dev score {record.dev_f1:6.2f}"
        else:
            dev = "no dev set"
        mark = "  *best" if improved and record.dev_f1 is not None else ""
        self.progress.log(f"epoch {record.epoch:3d}  loss {record.loss:9.4f}  {dev}  "
                          f"{record.sentences_per_second:7.1f} sent/s  {record.seconds:6.1f} s{mark}")


class EpochCheckpoint(keras.callbacks.Callback):
    """The state after every epoch, to resume from: weights, the optimizer's variables, the dropout
    seeds and the selection's history and best epoch (the batches of an epoch follow from its number,
    ``Trainer.dataset``). ``keras.callbacks.BackupAndRestore`` keeps neither the selection's state nor
    the seeds, and a resumed run must end bit for bit where an uninterrupted one does.

    Files carry their epoch in the name; ``state.json``, replaced atomically and written last, names
    the files that belong to it, so a kill at any moment leaves a consistent checkpoint. The weights of
    ``frozen`` layers (names) do not change while training and are not written: a resumed run rebuilds
    them as the interrupted one did (an update's frozen source is most of its weights).
    """

    def __init__(self, folder: Optional[Path], network, optimizer, selecting: DevSelection,
                 frozen: Sequence[str] = ()):
        super().__init__()
        self.folder, self.network, self.optimizer, self.selecting = folder, network, optimizer, selecting
        self.frozen = tuple(f"{name}/" for name in frozen)

    def _changing_weights(self) -> dict:
        return {path: value for path, value in weight_arrays(self.network).items() if not path.startswith(self.frozen)}

    def _write_weights(self, path: Path) -> None:
        with atomic_writer(path, binary=True) as stream:
            np.savez(stream, **self._changing_weights())

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if self.folder is not None:
            self._save(number, self.selecting.improved)

    def _save(self, epoch: int, improved: bool) -> None:
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        previous = self._read_state() or {}
        files = {"weights": f"last-{epoch}.npz", "optimizer": f"optimizer-{epoch}.npz",
                 "best": f"best-{epoch}.npz" if improved else previous.get("files", {}).get("best")}
        self._write_weights(folder / files["weights"])
        if improved:
            self._write_weights(folder / files["best"])
        arrays = {f"v{i}": v.numpy() for i, v in enumerate(self.optimizer.variables)}
        with atomic_writer(folder / files["optimizer"], binary=True) as stream:
            np.savez(stream, **arrays)
        state = {"epoch": epoch, **self.selecting.state(), "seed_state": self._seed_states(), "files": files}
        atomic_write_text(folder / CHECKPOINT_STATE, json.dumps(state))
        for path in folder.glob("*.npz"):
            if path.name not in files.values():
                path.unlink()

    def _read_state(self) -> Optional[dict]:
        path = self.folder / CHECKPOINT_STATE if self.folder else None
        if path is None or not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def _seed_variables(self):
        return [v for v in self.network.non_trainable_variables if "seed_generator" in v.path]

    def _seed_states(self) -> list:
        return [v.numpy().tolist() for v in self._seed_variables()]

    def restore(self, progress: Progress) -> int:
        """Carry on from the checkpoint (if any); returns the number of epochs already done."""
        state = self._read_state()
        if state is None:
            return 0
        files = state["files"]
        with np.load(self.folder / files["weights"], allow_pickle=False) as stored:
            assign_weights(self.network, {**weight_arrays(self.network), **{name: stored[name] for name in stored.files}})
        with np.load(self.folder / files["optimizer"]) as saved:
            for i, variable in enumerate(self.optimizer.variables):
                variable.assign(saved[f"v{i}"])
        for variable, value in zip(self._seed_variables(), state.get("seed_state", [])):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        best_weights = None
        if files.get("best"):
            with np.load(self.folder / files["best"], allow_pickle=False) as stored:
                best_weights = {**weight_arrays(self.network), **{name: stored[name] for name in stored.files}}
        self.selecting.load_state(state, best_weights)
        progress.log(f"resuming after epoch {state['epoch']} (best dev score {self.selecting.best_score:.2f} "
                     f"at epoch {self.selecting.best_epoch})")
        return state["epoch"]


class BatchGuard(keras.callbacks.Callback):
    """After every step: a Ctrl-C that a finalizer swallowed is raised again (``CtrlC``), and a loss
    that is no longer finite stops the run with one line. ``interrupt`` (``(signal, step)``, from
    ``NEURONER_TL_INTERRUPT``): the signal this process sends itself after its STEP-th step."""

    def __init__(self, ctrl_c: "CtrlC", interrupt: Optional[tuple] = None):
        super().__init__()
        self.ctrl_c = ctrl_c
        self.interrupt = interrupt
        self.epoch = 0
        self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.ctrl_c.check()
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss} at epoch {self.epoch}; "
                                     f"try a lower learning rate")
        self.steps += 1
        if self.interrupt is not None and self.steps == self.interrupt[1]:
            # raise_signal, not os.kill: the signal reaches this thread, so its handler has run (a
            # Ctrl-C raised, a SIGKILL taken) before the next step starts
            signal.raise_signal(self.interrupt[0])

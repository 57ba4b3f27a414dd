"""The folder a training run or an update writes, and the hidden checkpoint folder beside it.

A run never loses a user's file:

- ``outputs.check_model_destination``: the output may only be a new folder, an empty one, or (with
  ``force``) an existing *model* folder; never an input of the command, a folder inside one or
  holding one, a folder of other files, the current folder, or a place that cannot be written.
- ``RunFolder``: the checkpoint folder ``.NAME.checkpoint`` next to the output holds a lock (one run
  per output at a time; a lock whose process is gone is stale and taken over), the fingerprint of
  what the run depends on (data, vectors, hyperparameters: a resume with other inputs is refused
  and the changed part named), the epoch checkpoints, and the model while it is being written. An
  interrupted run's checkpoint is kept until ``resume`` carries on from it or ``restart`` drops it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

from .atomic import atomic_write_text
from .errors import Interrupted, NeuronerError, TrainingDiverged
from .model_io import save_tagger
from .outputs import check_model_destination
from .processes import process_alive
from .progress import plot_history

PathLike = Union[str, Path]
LOCK_FILE = "lock"
FINGERPRINT_FILE = "fingerprint.json"
STATE_FILE = "state.json"  # written by training.Trainer after every epoch


def checkpoint_folder(output: PathLike) -> Path:
    output = Path(os.path.abspath(output))
    return output.parent / f".{output.name}.checkpoint"


# the lock ----------------------------------------------------------------------------------------
class RunLock:
    """A lock file made with O_EXCL; a lock left by a process that no longer runs is stale."""

    def __init__(self, path: Path, output: Path):
        self.path = path
        self.output = output
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            self._remove_if_stale()
            try:  # a run that starts in this very moment may still win the race: then it holds the lock
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise NeuronerError(f"another run took the lock on {self.output} just now; wait for it to finish "
                                    f"or choose another output") from None
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}, stream)
        self.held = True

    def _remove_if_stale(self) -> None:
        """Delete a lock whose process is gone; raise if its holder still runs (or cannot be checked)."""
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            holder = {}  # a lock file cut short by a crash while it was written
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and process_alive(pid) and pid != os.getpid():
            raise NeuronerError(f"another run (process {pid}) is writing {self.output} right now; wait for it to "
                                f"finish or choose another output")
        if isinstance(pid, int) and host not in (None, socket.gethostname()):
            raise NeuronerError(f"a run on {host} (process {pid}) holds {self.path}; if it has ended, delete "
                                f"that file and run again")
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


class RunFolder:
    """The output folder of one run and its checkpoint folder; use as a context manager.

    ``resume``: carry on from the checkpoint of an interrupted run (none: start from the beginning).
    ``restart``: drop such a checkpoint and start over. Neither, with a checkpoint there: an error
    that says so, and the checkpoint is kept.

    ``devices`` (``devices.Devices``): in a multi-worker cluster only the chief writes ``output``;
    every other worker keeps its own checkpoints beside it (``.NAME.worker-I.checkpoint``, to resume
    with the chief) and writes no model.
    """

    def __init__(self, output: Optional[PathLike], *, force: bool = False, resume: bool = False,
                 restart: bool = False, inputs: Sequence[Optional[PathLike]] = (), command: str = "train",
                 say=None, devices=None):
        self.say = say or (lambda message: None)
        self.writes_model = devices is None or devices.is_chief
        if output is not None and not self.writes_model:
            output = Path(output).parent / f".{Path(output).name}.worker-{devices.worker[1]}"
        self.output = Path(output) if output is not None else None
        self.force = force
        self.resume = resume
        self.restart = restart or force
        self.command = command
        self.checkpoint: Optional[Path] = None
        self.resuming = False
        self._lock: Optional[RunLock] = None
        if self.output is not None:
            check_model_destination(self.output, force, inputs)
            self.checkpoint = checkpoint_folder(self.output)

    # entering: lock, then decide what to do with an earlier run's checkpoint -----------------------
    def __enter__(self) -> "RunFolder":
        if self.checkpoint is None:
            return self
        self._lock = RunLock(self.checkpoint / LOCK_FILE, self.output)
        self._lock.acquire()
        try:
            self._settle_earlier_checkpoint()
        except BaseException:
            self._lock.release()
            raise
        return self

    def _settle_earlier_checkpoint(self) -> None:
        state = self.checkpoint / STATE_FILE
        if state.exists() and self.resume:
            self.resuming = True
            return
        if state.exists() and not self.restart:
            epoch = _epoch_of(state)
            raise NeuronerError(f"an interrupted run left a checkpoint{epoch} in {self.checkpoint}; run the same "
                                f"command with --resume to carry on from it, or with --restart to start over")
        if self.resume:
            self.say(f"no finished epoch to resume from in {self.checkpoint}: starting from the first epoch")
        elif state.exists():
            self.say(f"dropping the checkpoint{_epoch_of(state)} of an interrupted run ({self.checkpoint})")
        self._clear_checkpoint()

    def _clear_checkpoint(self) -> None:
        for path in self.checkpoint.iterdir():
            if path.name == LOCK_FILE:
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()

    def check_fingerprint(self, parts: Mapping[str, str]) -> None:
        """Record what the run depends on; when resuming, refuse if any part changed."""
        if self.checkpoint is None:
            return
        path = self.checkpoint / FINGERPRINT_FILE
        if self.resuming:
            try:
                saved: Dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise NeuronerError(f"cannot resume: {path} is missing or damaged; run with --restart to start "
                                    f"over") from None
            changed = [name for name in sorted(set(saved) | set(parts)) if saved.get(name) != parts.get(name)]
            if changed:
                raise NeuronerError(f"cannot resume: the {', '.join(changed)} changed since the checkpoint in "
                                    f"{self.checkpoint} was made; run the same command as then, or pass "
                                    f"--restart to start over")
            return
        atomic_write_text(path, json.dumps(dict(parts), indent=1, sort_keys=True))

    @property
    def saved_state(self) -> Optional[dict]:
        if self.checkpoint is None or not (self.checkpoint / STATE_FILE).exists():
            return None
        return json.loads((self.checkpoint / STATE_FILE).read_text(encoding="utf-8"))

    # leaving -------------------------------------------------------------------------------------
    def save_model(self, tagger, history: Sequence[dict], plot_name: str, extra_names: Sequence[str] = ()) -> None:
        """Finalise the run: plot ``history`` into the checkpoint folder, save the model folder with that
        plot, the TensorBoard logs and ``extra_names`` from there, then remove the checkpoint folder."""
        if not self.writes_model:
            self.finished()
            return
        staging = self.checkpoint
        plot_history(history, staging / plot_name)
        names = ("logs", plot_name, *extra_names)
        save_tagger(tagger, self.output, force=self.force, extra_files={name: staging / name for name in names},
                    staging=staging / "model")
        self.finished()

    def finished(self) -> None:
        """The model is in place: the checkpoint folder (lock included) goes."""
        if self.checkpoint is not None:
            shutil.rmtree(self.checkpoint, ignore_errors=True)
            if self._lock is not None:
                self._lock.held = False

    def __exit__(self, kind, error, traceback) -> bool:
        has_state = self.checkpoint is not None and (self.checkpoint / STATE_FILE).exists()
        if self.checkpoint is not None:
            if isinstance(error, FloatingPointError) or (error is not None and not has_state):
                # a diverged run cannot be resumed; a run stopped before its first epoch has nothing to keep
                shutil.rmtree(self.checkpoint, ignore_errors=True)
            elif self._lock is not None:
                self._lock.release()
        if isinstance(error, FloatingPointError):
            raise TrainingDiverged(f"training diverged: {error}; nothing was saved") from None
        if isinstance(error, KeyboardInterrupt) and not isinstance(error, Interrupted):
            raise Interrupted(self._interruption_message(has_state)) from error
        return False

    def _interruption_message(self, has_state: bool) -> str:
        if self.checkpoint is None:
            return "interrupted; nothing was saved"
        if not has_state:
            return "interrupted before the first epoch finished; nothing was saved"
        epoch = _epoch_of(self.checkpoint / STATE_FILE)
        return (f"interrupted: the checkpoint{epoch} is in {self.checkpoint}; run the same {self.command} command "
                f"with --resume to carry on")


def _epoch_of(state: Path) -> str:
    try:
        return f" of epoch {json.loads(state.read_text(encoding='utf-8'))['epoch']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""

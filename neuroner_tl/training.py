"""The training loop: Adam with gradient clipping, length-bucketed mini-batches, a compiled step,
early stopping on dev F1 (the best epoch's weights are kept), checkpoints to resume from."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from .batching import Encoded, replace_singletons, training_batches
from .conll import Corpus
from .errors import NeuronerError
from .model import load_weights, save_weights
from .objectives import Objective, anchor_penalty
from .tagger import CHARS_SPEC, INDEX_SPEC, LABELS_SPEC, WORDS_SPEC, Tagger

CHECKPOINT_STATE = "state.json"


def seed_everything(seed: int) -> None:
    """Python, NumPy, TensorFlow and Keras seeds; with ``enable_op_determinism`` the same seed and
    data give the same model on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@keras.saving.register_keras_serializable(package="neuroner_tl")
class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam computed by TensorFlow's fused ``ResourceApplyAdam`` kernel.

    The arithmetic is Keras's (``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
    ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``) in one pass over a weight and its
    moments instead of about ten. Adam updates every row of the word embeddings at every step, so
    with small batches that update was the largest part of a step.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.convert_to_tensor(tf.cast(gradient, dtype)))


def make_optimizer(name: str, learning_rate: float, clip_value: float) -> keras.optimizers.Optimizer:
    clip = {"clipvalue": clip_value} if clip_value and clip_value > 0 else {}
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, **clip)
    return FusedAdam(learning_rate=learning_rate, **clip)


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
    """Prints a run header, a progress bar per epoch (on a terminal) and a row per epoch."""

    def __init__(self, verbose: bool = True, stream=None):
        self.verbose = verbose
        self.stream = stream or sys.stderr

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, file=self.stream, flush=True)

    def bar(self, total: int, epoch: int):
        from tqdm.auto import tqdm

        show = self.verbose and hasattr(self.stream, "isatty") and self.stream.isatty()
        return tqdm(total=total, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not show,
                    file=self.stream)


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


def dev_f1(dev: Corpus):
    """The default selection: conlleval's overall F1 on ``dev``."""

    def select(tagger: Tagger) -> DevScore:
        report = tagger.evaluate(dev)[0]
        return DevScore(report.f1, report.overall.precision, report.overall.recall)

    return select


ALLOWED_SPEC = tf.TensorSpec([None, None, None], tf.bool)
SOFT_SPEC = tf.TensorSpec([None, None, None], tf.float32)


class Trainer:
    """Trains ``tagger.network`` in place. ``checkpoint_dir``, when given, receives the state after
    every epoch, so that ``resume=True`` carries on where an interrupted run stopped.

    ``objective`` says what is minimised (``objectives.Objective``; default: the CRF likelihood of
    the labels). With ``l2sp_weight``, the weights as they are when the Trainer is made are the anchor.
    ``frozen`` names layers whose weights stay as they are.
    """

    def __init__(self, tagger: Tagger, *, learning_rate: Optional[float] = None, progress: Optional[Progress] = None,
                 checkpoint_dir: Optional[Path] = None, log_dir: Optional[Path] = None,
                 singleton_ids: Sequence[int] = (), stop_after_epochs: Optional[int] = None,
                 objective: Optional[Objective] = None, frozen: Sequence[str] = ()):
        self.tagger = tagger
        hp = tagger.hp
        self.hp = hp
        self.learning_rate = learning_rate if learning_rate is not None else hp.learning_rate
        self.optimizer = make_optimizer(hp.optimizer, self.learning_rate, hp.gradient_clipping)
        self.progress = progress or Progress()
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.log_dir = Path(log_dir) if log_dir else None
        self.singleton_ids = np.asarray(sorted(singleton_ids), dtype=np.int32)
        self.stop_after_epochs = stop_after_epochs  # for tests of interrupted training
        self.objective = objective or Objective()
        # the weights training changes: all but those of the ``frozen`` layers (by layer name)
        self.variables = [v for v in tagger.network.trainable_variables
                          if not any(v.path.startswith(name + "/") for name in frozen)]
        self._anchors = [tf.Variable(v.numpy(), trainable=False) for v in self.variables] \
            if self.objective.l2sp_weight > 0 else []
        self._train_step = None

    def _compiled_step(self):
        network, crf, optimizer = self.tagger.network, self.tagger.crf, self.optimizer
        variables = self.variables
        inputs = self.tagger.network_inputs
        objective, anchors = self.objective, self._anchors

        def step(words, chars, char_index, labels, allowed=None, soft=None):
            lengths = tf.reduce_sum(tf.cast(words > 0, tf.int32), axis=1)
            with tf.GradientTape() as tape:
                potentials = network(inputs(words, chars, char_index), training=True)
                loss = tf.reduce_mean(objective.sentence_losses(crf, potentials, lengths, labels, allowed, soft))
                if anchors:
                    loss += objective.l2sp_weight * anchor_penalty(variables, anchors)
            gradients = tape.gradient(loss, variables)
            optimizer.apply(gradients, variables)
            return loss

        if objective.uses_targets:
            return tf.function(step, input_signature=[WORDS_SPEC, CHARS_SPEC, INDEX_SPEC, LABELS_SPEC,
                                                      ALLOWED_SPEC, SOFT_SPEC])
        return tf.function(lambda words, chars, char_index, labels: step(words, chars, char_index, labels),
                           input_signature=[WORDS_SPEC, CHARS_SPEC, INDEX_SPEC, LABELS_SPEC])

    def _run_step(self, batch, words) -> float:
        if self.objective.uses_targets:
            soft = batch.soft if batch.soft is not None else np.zeros(batch.allowed.shape, np.float32)
            allowed = batch.allowed if batch.allowed is not None else np.ones(soft.shape, bool)
            return float(self._train_step(words, batch.chars, batch.char_index, batch.labels, allowed, soft))
        return float(self._train_step(words, batch.chars, batch.char_index, batch.labels))

    def fit(self, train_items: Sequence[Encoded], dev: Optional[Corpus] = None, *, resume: bool = False,
            selection: Optional[Callable[[Tagger], DevScore]] = None) -> List[EpochRecord]:
        """Train until ``hp.max_epochs`` or early stopping, then keep the best epoch's weights.

        ``selection`` scores the model after each epoch (default: F1 on ``dev``). Training stops when
        the score has not improved for ``hp.patience`` epochs *and* ``hp.patience_steps`` optimizer
        steps, so that on tiny data (a few steps an epoch) a run is not judged on its first steps,
        and never while the selection says it is not ready (``DevScore.ready``).
        """
        hp = self.hp
        network = self.tagger.network
        if not train_items:
            raise NeuronerError("there are no training sentences")
        if selection is None and dev is not None:
            selection = dev_f1(dev)
        self.optimizer.build(self.variables)
        rng = np.random.default_rng(hp.seed)
        history: List[EpochRecord] = []
        best_f1, best_epoch, best_weights, start_epoch = -1.0, 0, None, 1
        if resume:
            state = self._restore_checkpoint()
            if state is not None:
                rng.bit_generator.state = state["rng"]
                history = [EpochRecord(**record) for record in state["history"]]
                best_f1, best_epoch, start_epoch = state["best_f1"], state["best_epoch"], state["epoch"] + 1
                best_weights = self._read_best_weights()
                self.progress.log(f"resuming after epoch {state['epoch']} (best dev score {best_f1:.2f} "
                                  f"at epoch {best_epoch})")
        if self._train_step is None:
            self._train_step = self._compiled_step()
        writer = tf.summary.create_file_writer(str(self.log_dir)) if self.log_dir else None
        batches_per_epoch = math.ceil(len(train_items) / hp.batch_size)

        def patience_spent(epoch: int) -> bool:
            waited = epoch - best_epoch
            return selection is not None and waited >= hp.patience and waited * batches_per_epoch >= hp.patience_steps

        epoch = start_epoch
        stopped_early = bool(history) and patience_spent(epoch - 1)
        while epoch <= hp.max_epochs and not stopped_early:
            started = time.perf_counter()
            losses = []
            with self.progress.bar(batches_per_epoch, epoch) as bar:
                for batch in training_batches(train_items, hp.batch_size, rng):
                    words = replace_singletons(batch.words, self.singleton_ids, hp.singleton_unk_probability, rng)
                    loss = self._run_step(batch, words)
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"the training loss became {loss} at epoch {epoch}; "
                                                 f"try a lower learning rate")
                    losses.append(loss)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}")
            seconds = time.perf_counter() - started
            scored = selection(self.tagger) if selection is not None else None
            record = EpochRecord(epoch, float(np.mean(losses)), scored.score if scored else None,
                                 scored.precision if scored else None, scored.recall if scored else None,
                                 seconds, len(train_items) / seconds, scored.details if scored else None)
            history.append(record)
            improved = scored is None or scored.score > best_f1
            if improved:
                best_f1, best_epoch = (scored.score if scored else best_f1), epoch
                best_weights = network.get_weights()
            self._log_epoch(record, improved)
            if writer is not None:
                with writer.as_default():
                    tf.summary.scalar("loss", record.loss, step=epoch)
                    if scored is not None:
                        tf.summary.scalar("dev_score", scored.score, step=epoch)
                        for name, value in (scored.details or {}).items():
                            if isinstance(value, (int, float)):
                                tf.summary.scalar(f"dev_{name}", value, step=epoch)
                    tf.summary.scalar("sentences_per_second", record.sentences_per_second, step=epoch)
                writer.flush()
            self._save_checkpoint(epoch, rng, history, best_f1, best_epoch, improved)
            stopped_early = patience_spent(epoch) and (scored is None or scored.ready)
            if stopped_early:
                self.progress.log(f"no dev improvement for {epoch - best_epoch} epochs "
                                  f"({(epoch - best_epoch) * batches_per_epoch} steps): stopping")
            if self.stop_after_epochs is not None and epoch >= self.stop_after_epochs:
                raise KeyboardInterrupt(f"stopped after epoch {epoch} as asked")
            epoch += 1
        if best_weights is not None:
            network.set_weights(best_weights)
        self.tagger.forget_compiled()
        self.tagger.history = [r.to_dict() for r in history]
        self.best_epoch = best_epoch
        return history

    def _log_epoch(self, record: EpochRecord, improved: bool) -> None:
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

    # checkpoints -------------------------------------------------------------------------------
    # Files carry their epoch in the name; state.json, replaced atomically and written last, names
    # the files that belong to it. A kill at any moment leaves a consistent checkpoint behind.
    def _save_checkpoint(self, epoch, rng, history, best_f1, best_epoch, improved) -> None:
        if self.checkpoint_dir is None:
            return
        folder = self.checkpoint_dir
        folder.mkdir(parents=True, exist_ok=True)
        previous = self._read_state() or {}
        files = {"weights": f"last-{epoch}.npz", "optimizer": f"optimizer-{epoch}.npz",
                 "best": f"best-{epoch}.npz" if improved else previous.get("files", {}).get("best")}
        save_weights(self.tagger.network, folder / files["weights"])
        if improved:
            save_weights(self.tagger.network, folder / files["best"])
        arrays = {f"v{i}": v.numpy() for i, v in enumerate(self.optimizer.variables)}
        with open(folder / ("tmp-" + files["optimizer"]), "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(folder / ("tmp-" + files["optimizer"]), folder / files["optimizer"])
        state = {"epoch": epoch, "rng": rng.bit_generator.state, "best_f1": best_f1, "best_epoch": best_epoch,
                 "history": [r.to_dict() for r in history], "seed_state": self._seed_states(), "files": files}
        temporary = folder / ("tmp-" + CHECKPOINT_STATE)
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, folder / CHECKPOINT_STATE)
        for path in folder.glob("*.npz"):
            if path.name not in files.values():
                path.unlink()

    def _read_state(self) -> Optional[dict]:
        path = self.checkpoint_dir / CHECKPOINT_STATE if self.checkpoint_dir else None
        if path is None or not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def _seed_states(self) -> list:
        return [v.numpy().tolist() for v in self._seed_variables()]

    def _seed_variables(self):
        return [v for v in self.tagger.network.non_trainable_variables if "seed_generator" in v.path]

    def _restore_checkpoint(self) -> Optional[dict]:
        state = self._read_state()
        if state is None:
            return None
        files = state["files"]
        load_weights(self.tagger.network, self.checkpoint_dir / files["weights"])
        with np.load(self.checkpoint_dir / files["optimizer"]) as saved:
            for i, variable in enumerate(self.optimizer.variables):
                variable.assign(saved[f"v{i}"])
        for variable, value in zip(self._seed_variables(), state.get("seed_state", [])):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        return state

    def _read_best_weights(self):
        best = (self._read_state() or {}).get("files", {}).get("best")
        if not best:
            return None
        current = self.tagger.network.get_weights()
        load_weights(self.tagger.network, self.checkpoint_dir / best)
        best_weights = self.tagger.network.get_weights()
        self.tagger.network.set_weights(current)
        return best_weights


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

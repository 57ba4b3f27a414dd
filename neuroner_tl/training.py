"""Training: Keras's ``fit`` on ``NeuronerModel`` (whose ``compute_loss`` is the CRF's), with Adam and
gradient clipping, length-bucketed mini-batches from a ``tf.data`` pipeline, and callbacks for what
happens between steps and epochs — ``DevSelection`` (early stopping on dev F1, the best epoch's weights
kept, a row per epoch), ``EpochCheckpoint`` (to resume from, bit for bit), ``BatchGuard`` (Ctrl-C,
a diverging loss) — and TensorBoard. ``devices.Devices`` puts
the work on one device or several (``tf.distribute``)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from .atomic import atomic_write_text, atomic_writer
from .batching import Encoded, pad, replace_singletons, training_groups
from .corpus import Corpus
from .devices import Devices
from .errors import NeuronerError
from .model import (CHAR_INPUT, CHARS_SPEC, WORD_INPUT, WORDS_SPEC, assign_weights, load_weights, save_weights,
                    weight_arrays)
from .objectives import Objective
from .tagger import Tagger

CHECKPOINT_STATE = "state.json"


def seed_everything(seed: int) -> None:
    """Python, NumPy, TensorFlow and Keras seeds; with ``enable_op_determinism`` the same seed and
    data give the same model on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class ElementClipping:
    """Clip every element of the gradient to ``[-element_clip, element_clip]`` (NeuroNER's clipping) in
    ``update_step``, which sees the gradient summed over the replicas of a ``tf.distribute``
    strategy: Keras's own ``clipvalue`` clips each replica's share before they are summed, so a
    mirrored run would not train as one device does. A sparse gradient is summed first (a word
    twice in a batch is one gradient row)."""

    def _init_clipping(self, element_clip: Optional[float], update_masks=None) -> None:
        self.element_clip = float(element_clip) if element_clip else None
        # weight path -> 0/1 array: only the entries marked 1 are ever updated (the isolate method's
        # transitions). A masked entry's gradient is 0, so Adam's moments there stay 0 and so does
        # its step: the entry keeps its value bit for bit.
        self.update_masks = {path: np.asarray(mask, np.float32) for path, mask in (update_masks or {}).items()}
        self._masks_by_index: dict = {}

    def _index_masks(self, variables) -> None:
        """Keras hands ``update_step`` the backend's variable, without the Keras path: key the masks
        by the optimizer's own variable index instead (call from ``build``)."""
        self._masks_by_index = {self._get_variable_index(v): tf.constant(self.update_masks[v.path])
                                for v in variables if getattr(v, "path", None) in self.update_masks}
        missing = set(self.update_masks) - {v.path for v in variables}
        if missing:
            raise ValueError(f"update masks for weights that are not trained: {', '.join(sorted(missing))}")

    def _masked(self, gradient, variable):
        mask = self._masks_by_index.get(self._get_variable_index(variable)) if self._masks_by_index else None
        return gradient if mask is None else gradient * tf.cast(mask, gradient.dtype)

    def _clipped(self, gradient, dtype):
        """The gradient, dense, clipped. A sparse one (the embeddings') is summed per row and clipped
        before it is made dense: clipping the dense matrix would be a pass over every row of it."""
        if isinstance(gradient, tf.IndexedSlices):
            rows, position = tf.unique(gradient.indices)
            values = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position, tf.shape(rows)[0])
            gradient = tf.IndexedSlices(self._clip(values), rows, gradient.dense_shape)
            return tf.convert_to_tensor(gradient)
        return self._clip(tf.convert_to_tensor(tf.cast(gradient, dtype)))

    def _clip(self, values):
        return tf.clip_by_value(values, -self.element_clip, self.element_clip) if self.element_clip else values

    def _clipping_config(self, config: dict) -> dict:
        config["element_clip"] = self.element_clip
        return config


@keras.saving.register_keras_serializable(package="neuroner_tl")
class FusedAdam(ElementClipping, keras.optimizers.Adam):
    """Keras's Adam computed by TensorFlow's fused ``ResourceApplyAdam`` kernel, with ``element_clip``.

    The arithmetic is Keras's (``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
    ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``) in one pass over a weight and its
    moments instead of about ten. Adam updates every row of the word embeddings at every step, so
    with small batches that update was the largest part of a step.
    """

    def __init__(self, *args, element_clip: Optional[float] = None, update_masks=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_clipping(element_clip, update_masks)

    def build(self, variables):
        super().build(variables)
        self._index_masks(variables)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = self._masked(self._clipped(gradient, dtype), variable)
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=gradient)

    def get_config(self):
        return self._clipping_config(super().get_config())


@keras.saving.register_keras_serializable(package="neuroner_tl")
class ClippedSGD(ElementClipping, keras.optimizers.SGD):
    """Keras's SGD with ``element_clip``."""

    def __init__(self, *args, element_clip: Optional[float] = None, update_masks=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_clipping(element_clip, update_masks)

    def build(self, variables):
        super().build(variables)
        self._index_masks(variables)

    def update_step(self, gradient, variable, learning_rate):
        return super().update_step(self._masked(self._clipped(gradient, variable.dtype), variable), variable,
                                   learning_rate)

    def get_config(self):
        return self._clipping_config(super().get_config())


def make_optimizer(name: str, learning_rate: float, clip_value: float,
                   loss_scaling: bool = False, update_masks=None) -> keras.optimizers.Optimizer:
    """Adam (fused) or SGD, each gradient element clipped to ``[-clip_value, clip_value]``;
    ``loss_scaling`` wraps it for float16 training; ``update_masks`` (weight path -> 0/1 array) limits
    which entries of a weight may change."""
    optimizer_class = ClippedSGD if name == "sgd" else FusedAdam
    optimizer = optimizer_class(learning_rate=learning_rate, element_clip=clip_value if clip_value > 0 else None,
                                update_masks=update_masks)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer


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


class Trainer:
    """Trains ``tagger.network`` through Keras's ``fit``. ``checkpoint_dir``, when given, receives the
    state after every epoch, so that ``resume=True`` carries on where an interrupted run stopped and
    ends with the weights an uninterrupted run gives.

    ``objective`` says what is minimised (``objectives.Objective``; default: the CRF likelihood of
    the labels). With ``l2sp_weight``, the weights as they are when training starts are the anchor.
    ``frozen`` names layers whose weights stay as they are. ``devices`` (``devices.Devices``) says
    where: one device (the default), several through ``tf.distribute``, mixed precision.
    """

    def __init__(self, tagger: Tagger, *, learning_rate: Optional[float] = None, progress: Optional[Progress] = None,
                 checkpoint_dir: Optional[Path] = None, log_dir: Optional[Path] = None,
                 singleton_ids: Sequence[int] = (), stop_after_epochs: Optional[int] = None,
                 objective: Optional[Objective] = None, frozen: Sequence[str] = (),
                 update_masks=None, importance=None, devices: Optional[Devices] = None):
        self.tagger = tagger
        self.hp = tagger.hp
        self.learning_rate = learning_rate if learning_rate is not None else self.hp.learning_rate
        self.progress = progress or Progress()
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.log_dir = Path(log_dir) if log_dir else None
        self.singleton_ids = np.asarray(sorted(singleton_ids), dtype=np.int32)
        self.stop_after_epochs = stop_after_epochs  # for tests of interrupted training
        self.objective = objective or Objective()
        self.frozen = tuple(frozen)
        self.update_masks = dict(update_masks or {})
        self.importance = dict(importance or {})  # EWC: weight path -> diagonal Fisher information
        self.devices = devices or Devices()
        self.best_epoch = 0

    def fit(self, train_items: Sequence[Encoded], dev: Optional[Corpus] = None, *, resume: bool = False,
            selection: Optional[Callable[[Tagger], DevScore]] = None) -> List[EpochRecord]:
        """Train until ``hp.max_epochs`` or early stopping, then keep the best epoch's weights.

        ``selection`` scores the model after each epoch (default: F1 on ``dev``). Training stops when
        the score has not improved for ``hp.patience`` epochs *and* ``hp.patience_steps`` optimizer
        steps, so that on tiny data (a few steps an epoch) a run is not judged on its first steps,
        and never while the selection says it is not ready (``DevScore.ready``).
        """
        if not train_items:
            raise NeuronerError("there are no training sentences")
        if selection is None and dev is not None:
            selection = dev_f1(dev)
        strategy = self.devices.strategy()
        with strategy.scope():
            network = self._training_network()
            frozen = [layer for layer in (getattr(network, name) for name in self.frozen) if layer.trainable]
            for layer in frozen:
                layer.trainable = False
            network.objective = self.objective
            network.anchors = [(v, tf.Variable(v.numpy(), trainable=False),
                                self._importance_of(v)) for v in network.trainable_variables] \
                if self.objective.anchored else None
            optimizer = make_optimizer(self.hp.optimizer, self.learning_rate, self.hp.gradient_clipping,
                                       loss_scaling=self.devices.dtype_policy == "mixed_float16",
                                       update_masks=self.update_masks)
            network.compile(optimizer=optimizer, jit_compile=False)
            optimizer.build(network.trainable_variables)
        batches_per_epoch = math.ceil(len(train_items) / self.hp.batch_size)
        selecting = DevSelection(self.tagger, network, selection, self.hp, batches_per_epoch, len(train_items),
                                 self.progress)
        checkpoint = EpochCheckpoint(self.checkpoint_dir, network, optimizer, selecting, self.stop_after_epochs)
        initial_epoch = checkpoint.restore(self.progress) if resume else 0
        with CtrlC() as ctrl_c:
            callbacks: List[keras.callbacks.Callback] = [selecting, checkpoint, BatchGuard(ctrl_c)]
            if self.log_dir is not None:
                callbacks.append(keras.callbacks.TensorBoard(str(self.log_dir), write_graph=False, profile_batch=0,
                                                             write_steps_per_second=False))
            if not self.devices.is_default():
                self.progress.log(self.devices.describe())
            try:
                if initial_epoch < self.hp.max_epochs and not selecting.stopped_early:
                    network.fit(self.dataset(train_items, initial_epoch), epochs=self.hp.max_epochs,
                                steps_per_epoch=batches_per_epoch, initial_epoch=initial_epoch, callbacks=callbacks,
                                verbose=1 if self.progress.shows_bar else 0, shuffle=False)
            finally:
                for layer in frozen:
                    layer.trainable = True
        selecting.keep_best()
        self.tagger.forget_compiled()
        self.tagger.history = [r.to_dict() for r in selecting.history]
        self.best_epoch = selecting.best_epoch
        return selecting.history

    def _importance_of(self, variable):
        value = self.importance.get(variable.path)
        return None if value is None else tf.constant(value, variable.dtype)

    def _training_network(self):
        """The tagger's own network, or, for another device set-up or precision, a copy built in the
        current strategy's scope (its weights go back to the tagger after each epoch)."""
        if self.devices.is_default():
            return self.tagger.network
        return self.tagger.network.replica(self.devices.lstm_backend, self.devices.dtype_policy)

    def dataset(self, items: Sequence[Encoded], first_epoch: int = 0) -> tf.data.Dataset:
        """Shuffled, length-bucketed batches as ``(inputs, targets)``, epoch after epoch from
        ``first_epoch`` (0-based) to ``hp.max_epochs``. The order and NeuroNER's singleton->UNK swaps
        of epoch ``e`` come from ``default_rng([seed, e])``, ``e`` given to the generator by the
        pipeline itself, so that a resumed run sees the batches an uninterrupted one would have, and
        so does a pipeline that ``tf.distribute`` starts more than once.

        One iterator serves the whole ``fit`` (``steps_per_epoch``): an iterator dropped between epochs
        is finalized in the main thread, where a Ctrl-C arriving during its ``__del__`` would be lost."""
        hp, singletons = self.hp, self.singleton_ids
        with_targets = self.objective.uses_targets
        with_states = self.objective.states_weight > 0
        num_labels = len(self.tagger.labels)

        def batches(epoch):
            rng = np.random.default_rng([hp.seed, int(epoch)])
            for group in training_groups(items, hp.batch_size, rng):
                batch = pad(items, group)
                words = replace_singletons(batch.words, singletons, hp.singleton_unk_probability, rng)
                targets = batch.targets()
                if with_targets and "allowed" not in targets:
                    shape = batch.words.shape + (num_labels,)
                    targets.update({"allowed": np.ones(shape, bool), "soft": np.zeros(shape, np.float32)})
                if with_states:
                    targets["states"] = batch.states
                yield {WORD_INPUT: words, CHAR_INPUT: batch.chars}, targets

        targets_spec = {"labels": tf.TensorSpec([None, None], tf.int32)}
        if with_targets:
            targets_spec.update({"allowed": tf.TensorSpec([None, None, None], tf.bool),
                                 "soft": tf.TensorSpec([None, None, None], tf.float32)})
        if with_states:
            targets_spec["states"] = tf.TensorSpec([None, None, None], tf.float32)
        signature = ({WORD_INPUT: WORDS_SPEC, CHAR_INPUT: CHARS_SPEC}, targets_spec)
        epochs = tf.data.Dataset.range(first_epoch, max(hp.max_epochs, first_epoch + 1))
        dataset = epochs.flat_map(lambda epoch: tf.data.Dataset.from_generator(
            batches, args=(epoch,), output_signature=signature)).prefetch(2)
        # every worker of a cluster makes the same global batches and keeps its replicas' share of each
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)


class CtrlC:
    """While training, remember a Ctrl-C as well as raising it: Python drops an exception raised in a
    finalizer (``__del__``, which TensorFlow objects run in the main thread at any moment), so the
    callbacks raise it again at the next batch (``BatchGuard``) and so does leaving the block."""

    def __init__(self):
        self.pressed = False
        self._previous = None

    def _handler(self, signum, frame):
        self.pressed = True
        raise KeyboardInterrupt

    def __enter__(self) -> "CtrlC":
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def check(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def __exit__(self, kind, error, traceback) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if error is None:
            self.check()


class DevSelection(keras.callbacks.Callback):
    """Dev-score early stopping that keeps the best epoch's weights, and the row printed per epoch.

    After each epoch the tagger (whose network is the one training, or receives its weights) is
    scored by ``selection``; the best epoch's weights are kept and restored at the end
    (``keep_best``). Training stops when the score has not improved for ``hp.patience`` epochs and
    ``hp.patience_steps`` steps, and never while the score says it is not ready. The dev figures go
    into the epoch's logs, so TensorBoard plots them.
    """

    def __init__(self, tagger: Tagger, network, selection, hp, batches_per_epoch: int, sentences: int,
                 progress: Progress):
        super().__init__()
        self.tagger, self.network, self.selection, self.hp = tagger, network, selection, hp
        self.batches_per_epoch, self.sentences, self.progress = batches_per_epoch, sentences, progress
        self.history: List[EpochRecord] = []
        self.best_score, self.best_epoch, self.best_weights = -1.0, 0, None
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
        # no forget_compiled(): the tagger's compiled decoders read the network's variables, whose
        # values change, not their shapes; dropping them retraced the decoder every epoch
        scored = self.selection(self.tagger) if self.selection is not None else None
        record = EpochRecord(number, float(logs.get("loss", float("nan"))), scored.score if scored else None,
                             scored.precision if scored else None, scored.recall if scored else None,
                             seconds, self.sentences / seconds, scored.details if scored else None)
        self.history.append(record)
        improved = scored is None or scored.score > self.best_score
        if improved:
            self.best_score, self.best_epoch = (scored.score if scored else self.best_score), number
            self.best_weights = weight_arrays(self.network)
        self.improved = improved
        self._log(record, improved)
        logs.update(self._scalars(record, scored))
        self.stopped_early = self.patience_spent(number) and (scored is None or scored.ready)
        if self.stopped_early:
            self.model.stop_training = True
            self.progress.log(f"no dev improvement for {number - self.best_epoch} epochs "
                              f"({(number - self.best_epoch) * self.batches_per_epoch} steps): stopping")

    def patience_spent(self, epoch: int) -> bool:
        waited = epoch - self.best_epoch
        return self.selection is not None and waited >= self.hp.patience and \
            waited * self.batches_per_epoch >= self.hp.patience_steps

    def keep_best(self) -> None:
        """The best epoch's weights into the tagger's network (and the one that trained)."""
        if self.best_weights is not None:
            assign_weights(self.tagger.network, self.best_weights)
            if self.network is not self.tagger.network:
                assign_weights(self.network, self.best_weights)

    # what a checkpoint keeps of it
    def state(self) -> dict:
        return {"best_f1": self.best_score, "best_epoch": self.best_epoch,
                "history": [r.to_dict() for r in self.history]}

    def load_state(self, state: dict, best_weights: Optional[dict]) -> None:
        self.history = [EpochRecord(**record) for record in state["history"]]
        self.best_score, self.best_epoch = state["best_f1"], state["best_epoch"]
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
    the files that belong to it, so a kill at any moment leaves a consistent checkpoint.
    ``stop_after``: raise ``KeyboardInterrupt`` once that epoch is saved (for tests of interruptions).
    """

    def __init__(self, folder: Optional[Path], network, optimizer, selecting: DevSelection,
                 stop_after: Optional[int] = None):
        super().__init__()
        self.folder, self.network, self.optimizer, self.selecting = folder, network, optimizer, selecting
        self.stop_after = stop_after

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if self.folder is not None:
            self._save(number, self.selecting.improved)
        if self.stop_after is not None and number >= self.stop_after:
            raise KeyboardInterrupt(f"stopped after epoch {number} as asked")

    def _save(self, epoch: int, improved: bool) -> None:
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        previous = self._read_state() or {}
        files = {"weights": f"last-{epoch}.npz", "optimizer": f"optimizer-{epoch}.npz",
                 "best": f"best-{epoch}.npz" if improved else previous.get("files", {}).get("best")}
        save_weights(self.network, folder / files["weights"])
        if improved:
            save_weights(self.network, folder / files["best"])
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
        load_weights(self.network, self.folder / files["weights"])
        with np.load(self.folder / files["optimizer"]) as saved:
            for i, variable in enumerate(self.optimizer.variables):
                variable.assign(saved[f"v{i}"])
        for variable, value in zip(self._seed_variables(), state.get("seed_state", [])):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        best_weights = None
        if files.get("best"):
            with np.load(self.folder / files["best"], allow_pickle=False) as stored:
                best_weights = {name: stored[name] for name in stored.files}
        self.selecting.load_state(state, best_weights)
        progress.log(f"resuming after epoch {state['epoch']} (best dev score {self.selecting.best_score:.2f} "
                     f"at epoch {self.selecting.best_epoch})")
        return state["epoch"]


class BatchGuard(keras.callbacks.Callback):
    """After every step: a Ctrl-C that a finalizer swallowed is raised again (``CtrlC``), and a loss
    that is no longer finite stops the run with one line."""

    def __init__(self, ctrl_c: "CtrlC"):
        super().__init__()
        self.ctrl_c = ctrl_c
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.ctrl_c.check()
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss} at epoch {self.epoch}; "
                                     f"try a lower learning rate")


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

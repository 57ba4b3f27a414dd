"""Training: Keras's ``fit`` on ``NeuronerModel`` (whose ``compute_loss`` is the CRF's), with Adam and
gradient clipping (``optimizers``), length-bucketed mini-batches from a ``tf.data`` pipeline, and
callbacks for what happens between steps and epochs (``callbacks``: ``DevSelection``,
``EpochCheckpoint``, ``BatchGuard``) — and TensorBoard. ``devices.Devices`` puts the work on one
device or several (``tf.distribute``); ``progress`` prints a row per epoch."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from .batching import Encoded, pad, replace_singletons, training_groups
from .callbacks import BatchGuard, DevScore, DevSelection, EpochCheckpoint, dev_f1
from .corpus import Corpus
from .devices import Devices
from .errors import NeuronerError
from .interrupts import CtrlC, interruption_asked
from .model import CHAR_INPUT, CHARS_SPEC, WORD_INPUT, WORDS_SPEC, NeuronerModel
from .objectives import Objective
from .optimizers import make_optimizer
from .progress import EpochRecord, Progress
from .tagger import Tagger


class TrainingModel(keras.Model):
    """What ``fit`` trains: ``network`` (a ``NeuronerModel``, whose variables it shares) with what
    training minimises, given here and nowhere else, as Keras takes a loss in ``compile``.

    ``compute_loss`` is the mean over the batch's sentences of ``objective``'s loss
    (``objectives.Objective``; default: the CRF likelihood of ``y["labels"]``; an update's objectives
    also read ``y["allowed"]``, ``y["soft"]`` and ``y["states"]``), plus L2-SP and EWC's pull to
    ``anchors`` ((variable, its starting value, its Fisher information or None), as
    ``Objective.anchor_loss`` reads them). The network is never changed by being wrapped: dropping
    the wrapper drops the objective and the anchors' copies of the weights with it.
    """

    def __init__(self, network: NeuronerModel, objective: Optional[Objective] = None, anchors=None, **kwargs):
        kwargs.setdefault("name", "training")
        super().__init__(**kwargs)
        self.network = network
        self.objective = objective or Objective()
        self.anchors = anchors
        self.built = True

    def call(self, inputs, training=None):
        scores, states = self.network.scores(inputs, training)
        return {"emissions": self.network.crf(scores), "states": states}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Scaled for the number of replicas, as Keras's own losses are, so that gradients sum to the
        global mean. ``sample_weight`` is not used: every sentence counts once."""
        targets = y if isinstance(y, dict) else {"labels": y}
        losses = self.objective.sentence_losses(self.network.crf, y_pred["emissions"], self.network.lengths(x),
                                                targets.get("labels"), targets.get("allowed"), targets.get("soft"),
                                                y_pred["states"], targets.get("states"))
        loss = tf.reduce_mean(losses)
        if self.anchors:
            loss += self.objective.anchor_loss(self.anchors)
        return scale_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Keras's metrics (the mean loss); under ``MultiWorkerMirroredStrategy`` as 1-element vectors,
        because Keras averages each replica's logs there with ``strategy.reduce("MEAN", axis=0)``,
        which has no axis 0 to reduce in a scalar."""
        metrics = super().compute_metrics(x, y, y_pred, sample_weight)
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return {name: tf.reshape(value, [1]) for name, value in metrics.items()}
        return metrics

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """A private hook of Keras's TensorFlow trainer (``TensorFlowTrainer._maybe_symbolic_build``,
        Keras 3.3 to 3.15 at least; ``tests/test_training.py`` fails if it goes), overridden because
        no public one does this: under a ``tf.distribute`` strategy ``fit`` first builds the model
        from a batch averaged over the replicas, which ``MultiWorkerMirroredStrategy`` cannot average
        for inputs in a dict. Every layer is built in ``__init__``; with a built optimizer there is
        nothing left to build."""
        if self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


def scale_for_replicas(loss):
    """``loss / replicas`` under a ``tf.distribute`` strategy (Keras's ``scale_loss_for_distribution``)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


def seed_everything(seed: int) -> None:
    """Python, NumPy, TensorFlow and Keras seeds; with ``enable_op_determinism`` the same seed and
    data give the same model on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


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
                 singleton_ids: Sequence[int] = (),
                 objective: Optional[Objective] = None, frozen: Sequence[str] = (),
                 update_masks=None, importance=None, devices: Optional[Devices] = None):
        self.tagger = tagger
        self.hp = tagger.hp
        self.learning_rate = learning_rate if learning_rate is not None else self.hp.learning_rate
        self.progress = progress or Progress()
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.log_dir = Path(log_dir) if log_dir else None
        self.singleton_ids = np.asarray(sorted(singleton_ids), dtype=np.int32)
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
            # Keras's own way to freeze a layer (``trainable`` before compiling), undone when ``fit`` ends
            frozen = [layer for layer in (getattr(network, name) for name in self.frozen) if layer.trainable]
            for layer in frozen:
                layer.trainable = False
            anchors = [(v, tf.Variable(v.numpy(), trainable=False), self._importance_of(v))
                       for v in network.trainable_variables] if self.objective.anchored else None
            training = TrainingModel(network, self.objective, anchors)
            optimizer = make_optimizer(self.hp.optimizer, self.learning_rate, self.hp.gradient_clipping,
                                       loss_scaling=self.devices.dtype_policy == "mixed_float16",
                                       update_masks=self.update_masks)
            training.compile(optimizer=optimizer, jit_compile=False)
            optimizer.build(training.trainable_variables)
        batches_per_epoch = math.ceil(len(train_items) / self.hp.batch_size)
        selecting = DevSelection(self.tagger, network, selection, self.hp, batches_per_epoch, len(train_items),
                                 self.progress)
        checkpoint = EpochCheckpoint(self.checkpoint_dir, network, optimizer, selecting, self.frozen)
        initial_epoch = checkpoint.restore(self.progress) if resume else 0
        with CtrlC() as ctrl_c:
            callbacks: List[keras.callbacks.Callback] = [selecting, checkpoint,
                                                         BatchGuard(ctrl_c, interruption_asked())]
            if self.log_dir is not None:
                callbacks.append(keras.callbacks.TensorBoard(str(self.log_dir), write_graph=False, profile_batch=0,
                                                             write_steps_per_second=False))
            if not self.devices.is_default():
                self.progress.log(self.devices.describe())
            try:
                if initial_epoch < self.hp.max_epochs and not selecting.stopped_early:
                    training.fit(self.dataset(train_items, initial_epoch), epochs=self.hp.max_epochs,
                                steps_per_epoch=batches_per_epoch, initial_epoch=initial_epoch, callbacks=callbacks,
                                verbose=1 if self.progress.shows_bar else 0, shuffle=False)
            finally:
                for layer in frozen:
                    layer.trainable = True
        selecting.keep_best()
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

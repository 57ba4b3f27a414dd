"""The optimizers training uses: Adam as TensorFlow's fused ``ResourceApplyAdam`` and SGD, each with
NeuroNER's element-wise gradient clipping applied to the gradient summed over replicas, and
optional masks that keep chosen weight entries fixed."""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np
import tensorflow as tf


class ElementClipping:
    """Clip every element of the gradient to ``[-element_clip, element_clip]`` (NeuroNER's clipping) in
    ``update_step``, which sees the gradient summed over the replicas of a ``tf.distribute``
    strategy: Keras's own ``clipvalue`` clips each replica's share before they are summed, so a
    mirrored run would not train as one device does. A sparse gradient is summed first (a word
    twice in a batch is one gradient row)."""

    def __init__(self, *args, element_clip: Optional[float] = None, update_masks=None, **kwargs):
        super().__init__(*args, **kwargs)  # the Keras optimizer it is mixed into
        self.element_clip = float(element_clip) if element_clip else None
        # weight path -> 0/1 array: only the entries marked 1 are ever updated (the isolate method's
        # transitions). A masked entry's gradient is 0, so Adam's moments there stay 0 and so does
        # its step: the entry keeps its value bit for bit.
        self.update_masks = {path: np.asarray(mask, np.float32) for path, mask in (update_masks or {}).items()}
        self._masks_by_index: dict = {}

    def build(self, variables):
        """Keras hands ``update_step`` the backend's variable, without the Keras path: key the masks
        by the optimizer's own variable index instead (``_get_variable_index``, private, see ``FusedAdam``)."""
        super().build(variables)
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

    def get_config(self):
        return {**super().get_config(), "element_clip": self.element_clip}


@keras.saving.register_keras_serializable(package="neuroner_tl")
class FusedAdam(ElementClipping, keras.optimizers.Adam):
    """Keras's Adam computed by TensorFlow's fused ``ResourceApplyAdam`` kernel, with ``element_clip``.

    The arithmetic is Keras's (``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``,
    ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``) in one pass over a weight and its
    moments instead of about ten. Adam updates every row of the word embeddings at every step, so
    with small batches that update was the largest part of a step.

    It reads Keras's Adam slots through private attributes (``_momentums``, ``_velocities``,
    ``_get_variable_index``; Keras 3.0 to 3.15 at least): Keras has no public accessor for an
    optimizer's slot of a variable. ``tests/test_training.py`` checks they exist and that the
    result is Keras's Adam, so a Keras release that renames them fails there, not in a user's run.
    """

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


@keras.saving.register_keras_serializable(package="neuroner_tl")
class ClippedSGD(ElementClipping, keras.optimizers.SGD):
    """Keras's SGD with ``element_clip``."""

    def update_step(self, gradient, variable, learning_rate):
        return super().update_step(self._masked(self._clipped(gradient, variable.dtype), variable), variable,
                                   learning_rate)


def make_optimizer(name: str, learning_rate: float, clip_value: float,
                   loss_scaling: bool = False, update_masks=None) -> keras.optimizers.Optimizer:
    """Adam (fused) or SGD, each gradient element clipped to ``[-clip_value, clip_value]``;
    ``loss_scaling`` wraps it for float16 training; ``update_masks`` (weight path -> 0/1 array) limits
    which entries of a weight may change."""
    optimizer_class = ClippedSGD if name == "sgd" else FusedAdam
    optimizer = optimizer_class(learning_rate=learning_rate, element_clip=clip_value if clip_value > 0 else None,
                                update_masks=update_masks)
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer

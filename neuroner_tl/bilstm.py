"""A bidirectional LSTM for right-padded sequences, with a hand-written backward pass.

Keras's ``Bidirectional(LSTM)`` on CPU runs one loop per direction, multiplies each step's inputs by
the input kernel inside the loop and leaves the backward pass to automatic differentiation of the loop,
which adds a dozen bookkeeping ops per step. Here:

* the input projections of every step are computed before the loop, as one large matrix product per
  direction, and their gradients after it;
* one loop advances both directions; the backward direction reads the padded sequence from its end
  and keeps a zero state until it reaches the real steps (masking), so nothing needs reversing;
* the backward pass (:func:`_recurrence`'s gradient) is back-propagation through time written out:
  per step, the gate gradients and one product with the recurrent kernel; the recurrent kernel's
  gradient is one matrix product over all steps after the loop.

The arithmetic is Keras's LSTM cell (gates ``i, f, c, o``; sigmoid gates; tanh activation) and the
weights are Keras ``LSTM`` layers' own, under the paths ``Bidirectional`` gives them
(``<name>/forward_lstm/lstm_cell/kernel``), so both compute the same function on the real steps.
Forward outputs at padded positions are unspecified; gradients arriving there are ignored.

That loop is for CPUs. On a GPU, cuDNN's LSTM is faster than any loop written in TensorFlow ops, so
``BiLSTM(backend="auto")`` runs the same weights through Keras's ``LSTM`` layers there (which use
cuDNN for right-padded masks); ``backend="fused"`` or ``"keras"`` picks one explicitly.
"""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf

BACKENDS = ("auto", "fused", "keras")
Weights = Tuple[tf.Tensor, tf.Tensor, tf.Tensor]  # kernel [D, 4H], recurrent kernel [H, 4H], bias [4H]


def _sigmoid_gates_first(matrix: tf.Tensor) -> tf.Tensor:
    """Reorder the last axis from Keras's ``i, f, c, o`` to ``i, f, o, c``: one sigmoid covers three gates."""
    i, f, c, o = tf.split(matrix, 4, axis=-1)
    return tf.concat([i, f, o, c], axis=-1)


def _cell(z: tf.Tensor, c: tf.Tensor, units: int):
    """One LSTM step from the pre-activations ``z`` (gates ``i, f, o, c``); returns ``h, c`` and the
    activations the backward pass needs."""
    gates, candidate = tf.split(z, [3 * units, units], axis=-1)
    gates, candidate = tf.sigmoid(gates), tf.tanh(candidate)
    input_gate, forget_gate, output_gate = tf.split(gates, 3, axis=-1)
    c = forget_gate * c + input_gate * candidate
    return output_gate * tf.tanh(c), c, gates, candidate


def _step_gradient_factors(gates, candidate, c, c_before):
    """What the backward pass multiplies by at every step, computed for all steps at once:
    ``carry_factor`` (dL/dc from dL/dh), ``gate_factors`` (dL/dz from ``[dc, dc, dh, dc]``) and the forget gate."""
    input_gate, forget_gate, output_gate = tf.split(gates, 3, axis=-1)
    tanh_c = tf.tanh(c)
    carry_factor = output_gate * (1.0 - tf.square(tanh_c))
    gate_derivative = gates * (1.0 - gates)
    input_derivative, forget_derivative, output_derivative = tf.split(gate_derivative, 3, axis=-1)
    gate_factors = tf.concat([candidate * input_derivative, c_before * forget_derivative, tanh_c * output_derivative,
                              input_gate * (1.0 - tf.square(candidate))], axis=-1)
    return carry_factor, gate_factors, forget_gate


@tf.custom_gradient
def _recurrence(forward_z, backward_z, mask, forward_recurrent, backward_recurrent):
    """Both directions over time-major pre-activations ``[T, B, 4H]`` (input projection + bias).

    ``mask`` ``[T, B, 1]`` (1.0 on real steps). Returns the hidden states ``[T, B, H]`` of both
    directions at the positions they belong to.
    """
    units = forward_recurrent.shape[0]
    steps, batch = tf.shape(forward_z)[0], tf.shape(forward_z)[1]
    zeros = tf.zeros(tf.stack([batch, units]), forward_z.dtype)

    def arrays():
        return [tf.TensorArray(forward_z.dtype, size=steps, element_shape=[None, size])
                for size in (units, units, 3 * units, units)]  # h, c, gates, candidate

    def step(t, fh, fc, bh, bc, forward_arrays, backward_arrays):
        tb = steps - 1 - t  # the backward direction's position
        fh, fc, f_gates, f_candidate = _cell(forward_z[t] + tf.matmul(fh, forward_recurrent), fc, units)
        bh, bc, b_gates, b_candidate = _cell(backward_z[tb] + tf.matmul(bh, backward_recurrent), bc, units)
        bh, bc = bh * mask[tb], bc * mask[tb]  # a zero state until the real steps begin
        forward_arrays = [a.write(t, v) for a, v in zip(forward_arrays, (fh, fc, f_gates, f_candidate))]
        backward_arrays = [a.write(tb, v) for a, v in zip(backward_arrays, (bh, bc, b_gates, b_candidate))]
        return t + 1, fh, fc, bh, bc, forward_arrays, backward_arrays

    *_, forward_arrays, backward_arrays = tf.while_loop(
        lambda t, *_: t < steps, step, (tf.constant(0), zeros, zeros, zeros, zeros, arrays(), arrays()))
    forward_h, forward_c, forward_gates, forward_candidate = [a.stack() for a in forward_arrays]
    backward_h, backward_c, backward_gates, backward_candidate = [a.stack() for a in backward_arrays]
    zero_step = tf.zeros_like(forward_h[:1])

    # the state a step started from: the previous position's for the forward direction, the next
    # position's for the backward direction (zero at either end)
    before_forward = lambda states: tf.concat([zero_step, states[:-1]], axis=0)
    before_backward = lambda states: tf.concat([states[1:], zero_step], axis=0)

    def gradient(d_forward_h, d_backward_h):
        forward_factors = _step_gradient_factors(forward_gates, forward_candidate, forward_c,
                                                 before_forward(forward_c))
        backward_factors = _step_gradient_factors(backward_gates, backward_candidate, backward_c,
                                                  before_backward(backward_c))
        forward_d_h = d_forward_h * mask  # gradients arriving at padded positions are ignored
        backward_d_h = d_backward_h * mask
        recurrent_transposed = (tf.transpose(forward_recurrent), tf.transpose(backward_recurrent))

        def one_step(t, d_h, dh, dc, factors, recurrent_t):
            carry_factor, gate_factors, forget_gate = factors
            dh = d_h[t] + dh * mask[t]
            dc = dc * mask[t] + dh * carry_factor[t]
            dz = tf.concat([dc, dc, dh, dc], axis=-1) * gate_factors[t]
            return dz, tf.matmul(dz, recurrent_t), dc * forget_gate[t]

        def back_step(k, f_dh, f_dc, b_dh, b_dc, forward_dz, backward_dz):
            t, tb = steps - 1 - k, k  # undo the forward pass in reverse order
            dz, f_dh, f_dc = one_step(t, forward_d_h, f_dh, f_dc, forward_factors, recurrent_transposed[0])
            forward_dz = forward_dz.write(t, dz)
            dz, b_dh, b_dc = one_step(tb, backward_d_h, b_dh, b_dc, backward_factors, recurrent_transposed[1])
            backward_dz = backward_dz.write(tb, dz)
            return k + 1, f_dh, f_dc, b_dh, b_dc, forward_dz, backward_dz

        dz_array = lambda: tf.TensorArray(forward_z.dtype, size=steps, element_shape=[None, 4 * units])
        *_, forward_dz, backward_dz = tf.while_loop(
            lambda k, *_: k < steps, back_step, (tf.constant(0), zeros, zeros, zeros, zeros, dz_array(), dz_array()))
        forward_dz, backward_dz = forward_dz.stack(), backward_dz.stack()

        def recurrent_kernel_gradient(h_before, dz):  # sum over steps of h_before^T dz, as one product
            return tf.matmul(tf.reshape(h_before, [-1, units]), tf.reshape(dz, [-1, 4 * units]), transpose_a=True)

        return (forward_dz, backward_dz, tf.zeros_like(mask),
                recurrent_kernel_gradient(before_forward(forward_h), forward_dz),
                recurrent_kernel_gradient(before_backward(backward_h), backward_dz))

    return (forward_h, backward_h), gradient


def bidirectional_lstm(inputs: tf.Tensor, mask: tf.Tensor, forward: Weights,
                       backward: Weights) -> Tuple[tf.Tensor, tf.Tensor]:
    """Both directions' hidden states, time-major ``[T, B, H]``, for right-padded ``inputs`` ``[B, T, D]``.

    ``forward[t]`` has read steps ``0..t``; ``backward[t]`` has read steps ``length-1 .. t`` and is 0 on
    padding. ``forward`` is unspecified on padding.
    """
    time_major = tf.transpose(inputs, [1, 0, 2])
    mask = tf.cast(tf.transpose(mask)[:, :, None], inputs.dtype)
    pre_activations = [tf.tensordot(time_major, _sigmoid_gates_first(kernel), 1) + _sigmoid_gates_first(bias)
                       for kernel, _, bias in (forward, backward)]
    return _recurrence(*pre_activations, mask, _sigmoid_gates_first(forward[1]), _sigmoid_gates_first(backward[1]))


def last_states(forward: tf.Tensor, backward: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """From time-major states: ``[forward state after the last step, backward state after the first]``
    ``[B, 2H]``, what ``Bidirectional(LSTM(return_sequences=False))`` returns."""
    lengths = tf.cast(lengths, tf.int32)
    last = tf.maximum(lengths - 1, 0)
    forward_last = tf.gather_nd(forward, tf.stack([last, tf.range(tf.shape(last)[0])], axis=1))
    forward_last *= tf.cast(lengths > 0, forward.dtype)[:, None]  # an empty sequence's state is zero
    return tf.concat([forward_last, backward[0]], axis=-1)


@keras.saving.register_keras_serializable(package="neuroner_tl")
class BiLSTM(keras.layers.Layer):
    """``Bidirectional(LSTM(units))`` over right-padded ``[B, T, D]`` inputs, given the ``[B, T]`` mask of
    real steps (a prefix of each row). Returns ``[B, T, 2 * units]`` (``return_sequences``) or the
    final states ``[B, 2 * units]``; forward first, as ``Bidirectional`` concatenates."""

    def __init__(self, units: int, return_sequences: bool = False, backend: str = "auto", **kwargs):
        super().__init__(**kwargs)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.units = units
        self.return_sequences = return_sequences
        self.backend = backend
        self.forward_lstm = keras.layers.LSTM(units, return_sequences=True, name="forward_lstm")
        self.backward_lstm = keras.layers.LSTM(units, return_sequences=True, name="backward_lstm")

    def build(self, input_shape):
        self.forward_lstm.build(input_shape)
        self.backward_lstm.build(input_shape)
        super().build(input_shape)

    def uses_keras_lstm(self) -> bool:
        """Whether this call runs Keras's ``LSTM`` (cuDNN on a GPU) rather than the fused CPU loop:
        ``backend="auto"`` picks Keras's wherever TensorFlow sees a GPU."""
        if self.backend == "auto":
            return bool(tf.config.list_logical_devices("GPU"))
        return self.backend == "keras"

    def call(self, inputs, mask=None):
        inputs = tf.convert_to_tensor(inputs)
        mask = tf.ones(tf.shape(inputs)[:2], tf.bool) if mask is None else tf.convert_to_tensor(mask, tf.bool)
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        if self.uses_keras_lstm():
            return self._keras_call(inputs, mask, lengths)
        weights = [tuple(tf.cast(tf.convert_to_tensor(w), inputs.dtype)
                         for w in (layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias))
                   for layer in (self.forward_lstm, self.backward_lstm)]
        forward, backward = bidirectional_lstm(inputs, mask, *weights)
        if self.return_sequences:
            return tf.transpose(tf.concat([forward, backward], axis=-1), [1, 0, 2])
        return last_states(forward, backward, lengths)

    def _keras_call(self, inputs, mask, lengths):
        """What ``Bidirectional`` computes on right-padded sequences: the backward LSTM reads each
        sequence's real steps reversed (cuDNN needs right padding, so the reversal keeps it)."""
        forward = self.forward_lstm(inputs, mask=mask)
        reversed_inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
        backward = tf.reverse_sequence(self.backward_lstm(reversed_inputs, mask=mask), lengths, seq_axis=1,
                                       batch_axis=0)
        if self.return_sequences:
            return tf.concat([forward, backward], axis=-1)
        last = tf.gather(forward, tf.maximum(lengths - 1, 0), batch_dims=1)
        last *= tf.cast(lengths > 0, last.dtype)[:, None]
        return tf.concat([last, backward[:, 0] * tf.cast(lengths > 0, last.dtype)[:, None]], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (*input_shape[:-1], 2 * self.units)
        return (input_shape[0], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "return_sequences": self.return_sequences, "backend": self.backend})
        return config

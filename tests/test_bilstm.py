"""The fused BiLSTM against Keras's Bidirectional(LSTM): same outputs, same gradients, same weight paths."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from neuroner_tl.bilstm import BiLSTM

DIM, UNITS = 6, 4


def twin_layers(return_sequences, seed):
    """Keras's layer and ours, holding the same random weights."""
    rng = np.random.default_rng(seed)
    reference = keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=return_sequences, name="lstm"))
    ours = BiLSTM(UNITS, return_sequences=return_sequences)
    reference.build((None, None, DIM))
    ours.build((None, None, DIM))
    for theirs, mine in zip(reference.weights, ours.weights):
        value = rng.normal(size=theirs.shape).astype(np.float32)
        theirs.assign(value)
        mine.assign(value)
    return reference, ours


def padded_case(lengths, seed):
    rng = np.random.default_rng(seed)
    steps = max(lengths)
    inputs = rng.normal(size=(len(lengths), steps, DIM)).astype(np.float32)
    mask = np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
    return inputs, mask


LENGTHS = [[7, 3, 1, 5, 2], [1], [1, 1], [4], [9, 9, 2]]


def test_weight_paths_are_those_of_bidirectional():
    reference, ours = twin_layers(True, 0)
    strip = lambda path: path.split("/", 1)[1]
    assert [strip(w.path) for w in ours.weights] == [strip(w.path) for w in reference.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("case", range(len(LENGTHS)))
def test_outputs_equal_keras_on_real_steps(return_sequences, case):
    reference, ours = twin_layers(return_sequences, case)
    inputs, mask = padded_case(LENGTHS[case], case)
    expected = reference(inputs, mask=mask).numpy()
    actual = ours(inputs, mask=mask).numpy()
    assert actual.shape == expected.shape
    if return_sequences:
        np.testing.assert_allclose(actual[mask], expected[mask], atol=1e-5)
    else:
        np.testing.assert_allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("case", [0, 1, 4])
def test_gradients_equal_keras_in_graph_mode(return_sequences, case):
    reference, ours = twin_layers(return_sequences, 10 + case)
    inputs, mask = padded_case(LENGTHS[case], case)
    rng = np.random.default_rng(case)
    upstream = rng.normal(size=reference(inputs, mask=mask).shape).astype(np.float32)
    if return_sequences:
        upstream *= mask[..., None]  # Keras's padded outputs are constants; ours are unspecified

    def gradients(layer):
        @tf.function(input_signature=[tf.TensorSpec([None, None, DIM]), tf.TensorSpec([None, None], tf.bool)])
        def compute(x, m):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, mask=m) * upstream)
            return tape.gradient(loss, [x] + layer.trainable_variables)

        return [g.numpy() for g in compute(inputs, mask)]

    for expected, actual in zip(gradients(reference), gradients(ours)):
        np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_gradient_arriving_at_padding_is_ignored():
    _, ours = twin_layers(True, 3)
    inputs, mask = padded_case([5, 2, 3], 3)
    upstream = np.random.default_rng(3).normal(size=(3, 5, 2 * UNITS)).astype(np.float32)

    def gradients(weights):
        with tf.GradientTape() as tape:
            x = tf.constant(inputs)
            tape.watch(x)
            loss = tf.reduce_sum(ours(x, mask=mask) * weights)
        return [g.numpy() for g in tape.gradient(loss, [x] + ours.trainable_variables)]

    for with_padding, without in zip(gradients(upstream), gradients(upstream * mask[..., None])):
        np.testing.assert_allclose(with_padding, without, atol=1e-6)


def test_empty_sequence_gives_zero_final_states():
    _, ours = twin_layers(False, 4)
    inputs, mask = padded_case([3, 3], 4)
    mask[1] = False
    assert np.all(ours(inputs, mask=mask).numpy()[1] == 0.0)


def test_no_mask_means_every_step_is_real():
    reference, ours = twin_layers(True, 5)
    inputs, _ = padded_case([4, 4], 5)
    np.testing.assert_allclose(ours(inputs).numpy(), reference(inputs).numpy(), atol=1e-5)


def test_config_round_trip():
    layer = BiLSTM(7, return_sequences=True, name="token_bilstm")
    clone = BiLSTM.from_config(layer.get_config())
    assert (clone.units, clone.return_sequences, clone.name) == (7, True, "token_bilstm")
    assert keras.saving.get_registered_object("neuroner_tl>BiLSTM") is BiLSTM

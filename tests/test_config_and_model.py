import dataclasses
import json

import keras
import numpy as np
import pytest

from neuroner_tl.config import Hyperparameters, parse_overrides
from neuroner_tl.errors import NeuronerError
from neuroner_tl.model import (CharEncoder, NeuronerModel, build_model, distinct_rows, load_weights,
                               pad_rows_to_multiple, save_weights, weight_arrays)
from neuroner_tl.tags import allowed_transitions

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_hyperparameters_are_frozen_validated_and_round_trip(tmp_path):
    hp = Hyperparameters()
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.batch_size = 2
    hp.replace(batch_size=4, tag_scheme="BIOES").save(tmp_path / "config.json")
    assert Hyperparameters.load(tmp_path / "config.json") == hp.replace(batch_size=4, tag_scheme="BIOES")
    with pytest.raises(NeuronerError, match="tag_scheme"):
        Hyperparameters(tag_scheme="IO")
    with pytest.raises(NeuronerError, match="unknown hyperparameter"):
        Hyperparameters.from_dict({"batchsize": 3})
    with pytest.raises(NeuronerError, match="batch_size: 'many' is not an integer"):
        Hyperparameters.from_dict({"batch_size": "many"})
    assert Hyperparameters.from_dict(parse_overrides(["batch_size=8", "hidden_layer=false"])) == \
        hp.replace(batch_size=8, hidden_layer=False)
    with pytest.raises(NeuronerError, match="NAME=VALUE"):
        parse_overrides(["batch_size"])


def test_char_encoder_encodes_each_distinct_token_once_and_zeroes_padding():
    layer = CharEncoder(10, 4, 3)
    # [B=2, T=3, W=3]: "abc" twice in the first sentence, "d" in both, then padding
    chars = np.array([[[1, 2, 3], [4, 0, 0], [1, 2, 3]], [[4, 0, 0], [0, 0, 0], [0, 0, 0]]], np.int32)
    out = layer(chars).numpy()
    assert out.shape == (2, 3, 6)
    np.testing.assert_array_equal(out[0, 0], out[0, 2])
    np.testing.assert_array_equal(out[0, 1], out[1, 0])
    assert np.all(out[1, 1:] == 0) and np.all(out[0] != 0)
    distinct, index = distinct_rows(chars.reshape(-1, 3)[[0, 1, 2, 3]])
    assert distinct.numpy().tolist() == [[1, 2, 3], [4, 0, 0]] and index.numpy().tolist() == [0, 1, 0, 1]
    # one token alone gives the same state as inside a batch: nothing leaks between rows
    np.testing.assert_allclose(layer(chars[1:, :1]).numpy()[0, 0], out[0, 1], atol=1e-6)
    clone = CharEncoder.from_config(json.loads(json.dumps(layer.get_config())))
    assert (clone.num_chars, clone.embedding_dim, clone.units) == (10, 4, 3)


def test_tagging_pads_the_distinct_tokens_to_a_bounded_set_of_shapes_without_changing_the_output():
    rows = np.array([[1, 2], [3, 0], [4, 5]], np.int32)
    padded = pad_rows_to_multiple(rows, 4).numpy()
    assert padded.tolist() == [[1, 2], [3, 0], [4, 5], [1, 2]]  # a copy of a real row, never an empty one
    assert pad_rows_to_multiple(rows, 3).numpy().tolist() == rows.tolist()
    assert pad_rows_to_multiple(rows[:0], 4).shape == (0, 2)
    layer = CharEncoder(10, 4, 3)
    chars = np.array([[[1, 2, 3], [4, 0, 0], [5, 6, 0]]], np.int32)
    np.testing.assert_allclose(layer(chars, training=False).numpy(), layer(chars, training=True).numpy(), atol=1e-6)


def test_network_shapes_and_weights_by_path_round_trip(tmp_path):
    hp = Hyperparameters(token_embedding_dim=12, token_lstm_units=8)
    network = build_model(hp, num_words=20, num_chars=9, labels=LABELS)
    arrays = weight_arrays(network)
    assert arrays["word_embedding/embeddings"].shape == (20, 12)
    assert arrays["crf/transitions"].shape == (7, 7)
    assert arrays["emissions/kernel"].shape == (8, 5)
    save_weights(network, tmp_path / "w.npz")
    other = build_model(hp, num_words=20, num_chars=9, labels=LABELS)
    load_weights(other, tmp_path / "w.npz")
    for name, value in weight_arrays(other).items():
        np.testing.assert_array_equal(value, arrays[name])
    smaller = build_model(hp, num_words=19, num_chars=9, labels=LABELS)
    with pytest.raises(ValueError, match="word_embedding/embeddings has shape"):
        load_weights(smaller, tmp_path / "w.npz")
    config = json.loads(json.dumps(network.get_config()))
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(network))
    assert isinstance(rebuilt, NeuronerModel) and rebuilt.get_config() == config
    # the decoding constraint is the CRF layer's, saved and rebuilt with it
    np.testing.assert_array_equal(rebuilt.crf.allowed_transitions, allowed_transitions("IOB2", LABELS))
    assert {name: value.shape for name, value in weight_arrays(rebuilt).items()} == \
        {name: value.shape for name, value in arrays.items()}


def test_the_default_network_is_the_papers():
    """Built from the defaults, the network has the paper's sizes: characters embedded in 25-d and
    read by a BiLSTM of 25 per direction, 300-d words, a token BiLSTM of 128 per direction over
    both, and a CRF with C + 2 rows and columns."""
    arrays = weight_arrays(build_model(Hyperparameters(), num_words=20, num_chars=9, labels=LABELS))
    assert arrays["char_encoder/char_embedding/embeddings"].shape == (9, 25)
    assert arrays["char_encoder/char_bilstm/forward_lstm/lstm_cell/recurrent_kernel"].shape == (25, 4 * 25)
    assert arrays["word_embedding/embeddings"].shape == (20, 300)
    assert arrays["token_bilstm/forward_lstm/lstm_cell/kernel"].shape == (300 + 2 * 25, 4 * 128)
    assert arrays["token_bilstm/backward_lstm/lstm_cell/recurrent_kernel"].shape == (128, 4 * 128)
    assert arrays["crf/transitions"].shape == (7, 7)


@pytest.mark.parametrize("values, message", [
    ({"max_epochs": 2.7}, "max_epochs: 2.7 is not an integer"),
    ({"max_epochs": "2.5"}, "max_epochs: '2.5' is not an integer"),
    ({"max_epochs": 0}, r"max_epochs must be in \[1, inf\), not 0"),
    ({"patience": "-1"}, r"patience must be in \[0, inf\), not -1"),
    ({"learning_rate": "nan"}, r"learning_rate must be in \(0.0, inf\), not nan"),
    ({"dropout": 1}, r"dropout must be in \[0.0, 1.0\)"),
    ({"singleton_unk_probability": 1.5}, r"singleton_unk_probability must be in \[0.0, 1.0\]"),
    ({"hidden_layer": 2}, "hidden_layer: 2 is not true or false"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of adam, sgd"),
])
def test_one_validation_for_every_source_of_hyperparameters(values, message):
    """--config (JSON numbers), --set (strings) and code all go through the same checks."""
    with pytest.raises(NeuronerError, match=message):
        Hyperparameters.from_dict(values)
    name, value = next(iter(values.items()))
    if not isinstance(value, str):
        with pytest.raises(NeuronerError, match=name):
            Hyperparameters(**values)
    assert Hyperparameters.from_dict({"max_epochs": 3.0, "patience": "0"}).max_epochs == 3

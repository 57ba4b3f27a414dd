import dataclasses
import json

import keras
import numpy as np
import pytest

from neuroner_tl.config import Hyperparameters, parse_overrides
from neuroner_tl.errors import NeuronerError
from neuroner_tl.model import CharEncoder, build_model, load_weights, save_weights, weight_arrays


def test_hyperparameters_are_frozen_validated_and_round_trip(tmp_path):
    hp = Hyperparameters()
    assert (hp.char_embedding_dim, hp.char_lstm_units, hp.token_embedding_dim, hp.token_lstm_units) == (25, 25, 300, 128)
    assert (hp.dropout, hp.gradient_clipping, hp.max_epochs, hp.patience, hp.min_word_count) == (0.5, 5.0, 100, 10, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.batch_size = 2
    hp.replace(batch_size=4, tag_scheme="BIOES").save(tmp_path / "config.json")
    assert Hyperparameters.load(tmp_path / "config.json") == hp.replace(batch_size=4, tag_scheme="BIOES")
    with pytest.raises(NeuronerError, match="tag_scheme"):
        Hyperparameters(tag_scheme="IO")
    with pytest.raises(NeuronerError, match="unknown hyperparameter"):
        Hyperparameters.from_dict({"batchsize": 3})
    with pytest.raises(NeuronerError, match="not a int"):
        Hyperparameters.from_dict({"batch_size": "many"})
    assert Hyperparameters.from_dict(parse_overrides(["batch_size=8", "hidden_layer=false"])) == \
        hp.replace(batch_size=8, hidden_layer=False)
    with pytest.raises(NeuronerError, match="NAME=VALUE"):
        parse_overrides(["batch_size"])


def test_char_encoder_gathers_each_distinct_token_and_zeroes_padding():
    layer = CharEncoder(10, 4, 3)
    chars = np.array([[1, 2, 3], [4, 0, 0]], np.int32)
    index = np.array([[0, 1, 0], [1, -1, -1]], np.int32)
    out = layer([chars, index]).numpy()
    assert out.shape == (2, 3, 6)
    np.testing.assert_array_equal(out[0, 0], out[0, 2])
    np.testing.assert_array_equal(out[0, 1], out[1, 0])
    assert np.all(out[1, 1:] == 0)
    clone = CharEncoder.from_config(json.loads(json.dumps(layer.get_config())))
    assert (clone.num_chars, clone.embedding_dim, clone.units) == (10, 4, 3)


def test_network_shapes_and_weights_by_path_round_trip(tmp_path):
    hp = Hyperparameters(token_embedding_dim=12, token_lstm_units=8)
    network = build_model(hp, num_words=20, num_chars=9, num_labels=5)
    arrays = weight_arrays(network)
    assert arrays["word_embedding/embeddings"].shape == (20, 12)
    assert arrays["crf/transitions"].shape == (7, 7)
    assert arrays["emissions/kernel"].shape == (8, 5)
    save_weights(network, tmp_path / "w.npz")
    other = build_model(hp, num_words=20, num_chars=9, num_labels=5)
    load_weights(other, tmp_path / "w.npz")
    for name, value in weight_arrays(other).items():
        np.testing.assert_array_equal(value, arrays[name])
    smaller = build_model(hp, num_words=19, num_chars=9, num_labels=5)
    with pytest.raises(ValueError, match="word_embedding/embeddings has shape"):
        load_weights(smaller, tmp_path / "w.npz")
    config = network.get_config()
    rebuilt = keras.Model.from_config(config)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in network.layers]

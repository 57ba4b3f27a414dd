"""The NeuroNER network as a Keras 3 functional model.

word ids ``[B, T]`` (0 = padding), the characters of the batch's distinct tokens ``[U, W]`` and each
position's token row ``[B, T]`` -> char BiLSTM final states (once per distinct token) ⊕ word embedding ->
dropout -> token BiLSTM -> tanh hidden layer -> emission scores ``[B, T, C]`` -> CRF layer (holds the
transitions; passes the scores through). Both BiLSTMs are :class:`~neuroner_tl.bilstm.BiLSTM`, Keras's
``Bidirectional(LSTM)`` computed faster on CPU, with the same weights under the same paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Union

import keras
import numpy as np
import tensorflow as tf

from .config import Hyperparameters
from .bilstm import BiLSTM
from .crf import CRF

WORD_INPUT = "word_ids"
CHAR_INPUT = "char_ids"
CHAR_INDEX_INPUT = "char_index"


@keras.saving.register_keras_serializable(package="neuroner_tl")
class CharEncoder(keras.layers.Layer):
    """Character embedding + BiLSTM; a token is the concatenation of both directions' final states.

    Takes ``[char_ids, char_index]``: the characters of the batch's distinct tokens ``[U, W]``
    (0 = padding) and, for each position ``[B, T]``, the row of its token (-1 = padding). The
    LSTM runs once per distinct token, never on padding; the result is gathered to ``[B, T, 2 * units]``.
    """

    def __init__(self, num_chars: int, embedding_dim: int = 25, units: int = 25, **kwargs):
        super().__init__(**kwargs)
        self.num_chars = num_chars
        self.embedding_dim = embedding_dim
        self.units = units
        self.embedding = keras.layers.Embedding(num_chars, embedding_dim, mask_zero=True, name="char_embedding")
        self.bilstm = BiLSTM(units, name="char_bilstm")

    def build(self, input_shape):
        self.embedding.build((None, None))
        self.bilstm.build((None, None, self.embedding_dim))
        super().build(input_shape)

    def call(self, inputs, training=None):
        char_ids, char_index = inputs
        char_ids = tf.convert_to_tensor(char_ids)
        encoded = self.bilstm(self.embedding(char_ids), mask=char_ids > 0, training=training)  # [U, 2 * units]
        with_padding = tf.concat([tf.zeros_like(encoded[:1]), encoded], axis=0)
        return tf.gather(with_padding, tf.convert_to_tensor(char_index) + 1)

    def compute_output_shape(self, input_shape):
        index_shape = input_shape[1]
        return (index_shape[0], index_shape[1], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"num_chars": self.num_chars, "embedding_dim": self.embedding_dim, "units": self.units})
        return config


def build_model(hp: Hyperparameters, num_words: int, num_chars: int, num_labels: int,
                word_dim: int = None) -> keras.Model:
    """The network for ``num_labels`` labels; ``word_dim`` overrides ``hp.token_embedding_dim``
    (pretrained vectors set it)."""
    word_dim = word_dim or hp.token_embedding_dim
    word_ids = keras.Input(shape=(None,), dtype="int32", name=WORD_INPUT)
    char_ids = keras.Input(shape=(None,), dtype="int32", name=CHAR_INPUT)  # [U, W]: batch axis = distinct tokens
    char_index = keras.Input(shape=(None,), dtype="int32", name=CHAR_INDEX_INPUT)
    mask = keras.ops.not_equal(word_ids, 0)

    words = keras.layers.Embedding(num_words, word_dim, name="word_embedding")(word_ids)
    chars = CharEncoder(num_chars, hp.char_embedding_dim, hp.char_lstm_units, name="char_encoder")([char_ids, char_index])
    features = keras.layers.Concatenate(name="token_features")([chars, words])
    features = keras.layers.Dropout(hp.dropout, seed=hp.seed, name="dropout")(features)
    hidden = BiLSTM(hp.token_lstm_units, return_sequences=True, name="token_bilstm")(features, mask=mask)
    if hp.hidden_layer:
        hidden = keras.layers.Dense(hp.token_lstm_units, activation="tanh", name="hidden")(hidden)
    emissions = keras.layers.Dense(num_labels, name="emissions")(hidden)
    scores = CRF(num_labels, name="crf")(emissions)
    inputs = {WORD_INPUT: word_ids, CHAR_INPUT: char_ids, CHAR_INDEX_INPUT: char_index}
    return keras.Model(inputs=inputs, outputs=scores, name="neuroner")


def crf_layer(model: keras.Model) -> CRF:
    return model.get_layer("crf")


def set_word_embeddings(model: keras.Model, matrix: np.ndarray) -> None:
    model.get_layer("word_embedding").embeddings.assign(matrix)


def weight_arrays(network: keras.Model) -> Dict[str, np.ndarray]:
    """Every trainable weight by its path (``"token_bilstm/forward_lstm/lstm_cell/kernel"``).

    The paths depend only on the layer names given in ``build_model``, unlike the entry names of
    Keras's own weights file, and loading by path lets a mismatch fail loudly instead of leaving
    freshly initialized weights in place.
    """
    arrays = {v.path: v.numpy() for v in network.trainable_variables}
    if len(arrays) != len(network.trainable_variables):
        raise ValueError("two trainable weights share a path; give every layer a unique name")
    return arrays


def save_weights(network: keras.Model, path: Union[str, Path]) -> None:
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as stream:
        np.savez(stream, **weight_arrays(network))
    os.replace(temporary, path)


def load_weights(network: keras.Model, path: Union[str, Path]) -> None:
    """Assign every trainable weight from ``path``; ``ValueError`` names what is missing or misshapen."""
    with np.load(path, allow_pickle=False) as stored:
        stored_names = set(stored.files)
        wanted = {v.path: v for v in network.trainable_variables}
        missing = sorted(set(wanted) - stored_names)
        unexpected = sorted(stored_names - set(wanted))
        if missing or unexpected:
            raise ValueError(f"weights do not match the network (missing: {', '.join(missing) or 'none'}; "
                             f"unexpected: {', '.join(unexpected) or 'none'})")
        for name, variable in wanted.items():
            value = stored[name]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"weight {name} has shape {tuple(value.shape)}, the network expects "
                                 f"{tuple(variable.shape)}")
            variable.assign(value)

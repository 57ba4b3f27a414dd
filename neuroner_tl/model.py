"""The NeuroNER network as one Keras 3 model: training goes through ``fit``, decoding through
``predict_step``.

Inputs share the sentence batch axis: word ids ``[B, T]`` (0 = padding) and the characters of each
token ``[B, T, W]`` (0 = padding). Inside the graph the character BiLSTM runs once per *distinct*
real token of the batch (``CharEncoder``), the rest is char states ⊕ word embedding -> dropout ->
token BiLSTM -> tanh hidden layer -> emission scores ``[B, T, C]`` -> CRF (the layer holds the
transitions and the label set's decoding constraint, and passes the scores through).

The network holds weights and sizes only: what training minimises is given to the model that
training fits (``training.TrainingModel``), and how to decode (constrained or not, calibrated or
not) is an argument of ``decode``. ``predict_step`` is constrained Viterbi decoding, so Keras's
``predict`` gives the tags.

Both BiLSTMs are :class:`~neuroner_tl.bilstm.BiLSTM`: Keras's ``Bidirectional(LSTM)`` weights under
the same paths, computed by a fused loop on CPU and by Keras's (cuDNN) LSTM on GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from .atomic import atomic_writer
from .bilstm import BiLSTM
from .config import Hyperparameters
from . import tags as tagging
from .crf import CRF, NEG_INF
from .vocabulary import UNK_ID

WORD_INPUT = "word_ids"
CHAR_INPUT = "char_ids"
WORDS_SPEC = tf.TensorSpec([None, None], tf.int32, name=WORD_INPUT)
CHARS_SPEC = tf.TensorSpec([None, None, None], tf.int32, name=CHAR_INPUT)


# When tagging, the character BiLSTM runs on a number of distinct tokens rounded up to this: a stream
# of batches then meets a bounded set of shapes, and the kernels oneDNN caches per shape stop growing
# (without it, tagging 54 MB of text grew the process by 70 MiB and kept growing).
DISTINCT_ROWS_MULTIPLE = 64


def pad_rows_to_multiple(rows: tf.Tensor, multiple: int) -> tf.Tensor:
    """``rows`` with copies of its first row appended up to a multiple of ``multiple``.

    Copies rather than rows of zeros: an all-padding row would be a sequence of length 0, which cuDNN
    refuses. No rows stay no rows."""
    count = tf.shape(rows)[0]
    missing = (multiple - count % multiple) % multiple
    return tf.concat([rows, tf.gather(rows, tf.zeros([missing], tf.int32))], axis=0)


def distinct_rows(rows: tf.Tensor):
    """(the distinct rows of a 2-D int tensor in order of first occurrence, each row's index among them)."""
    distinct, index = tf.raw_ops.UniqueV2(x=rows, axis=tf.constant([0], tf.int64))
    return distinct, index


@keras.saving.register_keras_serializable(package="neuroner_tl")
class CharEncoder(keras.layers.Layer):
    """Character embedding + BiLSTM; a token is the concatenation of both directions' final states.

    Takes the characters of every position ``[B, T, W]`` (0 = padding) and returns ``[B, T, 2 * units]``
    (zeros at padded positions). The LSTM runs once per distinct real token of the batch, never on
    padding: about 60% of a CoNLL batch's tokens are distinct.
    """

    def __init__(self, num_chars: int, embedding_dim: int = 25, units: int = 25, lstm_backend: str = "auto",
                 **kwargs):
        super().__init__(**kwargs)
        self.num_chars = num_chars
        self.embedding_dim = embedding_dim
        self.units = units
        self.lstm_backend = lstm_backend
        self.embedding = keras.layers.Embedding(num_chars, embedding_dim, mask_zero=True, name="char_embedding")
        self.bilstm = BiLSTM(units, backend=lstm_backend, name="char_bilstm")

    def build(self, input_shape):
        self.embedding.build((None, None))
        self.bilstm.build((None, None, self.embedding_dim))
        super().build(input_shape)

    def call(self, char_ids, training=None):
        char_ids = tf.convert_to_tensor(char_ids)
        shape = tf.shape(char_ids)
        flat = tf.reshape(char_ids, [-1, shape[2]])
        positions = tf.where(tf.reduce_any(flat > 0, axis=1))  # [N, 1] real tokens
        distinct, index = distinct_rows(tf.gather_nd(flat, positions))
        if not training:
            distinct = pad_rows_to_multiple(distinct, DISTINCT_ROWS_MULTIPLE)
        encoded = self.bilstm(self.embedding(distinct), mask=distinct > 0, training=training)  # [U, 2 * units]
        placed = tf.scatter_nd(positions, tf.gather(encoded, index),
                               tf.stack([tf.shape(flat, out_type=tf.int64)[0], 2 * self.units]))
        return tf.reshape(placed, tf.stack([shape[0], shape[1], 2 * self.units]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"num_chars": self.num_chars, "embedding_dim": self.embedding_dim, "units": self.units,
                       "lstm_backend": self.lstm_backend})
        return config


@keras.saving.register_keras_serializable(package="neuroner_tl")
class LabelAdapter(keras.layers.Layer):
    """Scores for the labels an isolated update learnt (``transfer``'s ``isolate`` method), from the
    frozen source network's token features and states.

    A small BiLSTM of its own reads the features the token BiLSTM reads and that BiLSTM's states
    (a lateral connection, as in progressive networks); a dense ``head`` scores the adapter's
    labels from its states and the source's hidden layer. Chen & Moschitti (AAAI 2019) adapt a
    source tagger to new labels through a BiLSTM adapter in the same spirit.
    """

    def __init__(self, num_outputs: int, input_dim: int, hidden_dim: int, units: int = 32,
                 lstm_backend: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.num_outputs, self.input_dim, self.hidden_dim = num_outputs, input_dim, hidden_dim
        self.units, self.lstm_backend = units, lstm_backend
        self.supports_masking = True  # the mask is passed on explicitly to the BiLSTM
        self.bilstm = BiLSTM(units, return_sequences=True, backend=lstm_backend, name="bilstm")
        self.head = keras.layers.Dense(num_outputs, name="head", dtype="float32")

    def build(self, input_shape=None):
        # built here, not in __init__, so that the weights' paths start with this layer's name
        self.bilstm.build((None, None, self.input_dim))
        self.head.build((None, None, self.hidden_dim + 2 * self.units))
        super().build(input_shape)

    def call(self, features, states, hidden, mask=None, training=None):
        inputs = tf.cast(tf.concat([features, tf.cast(states, features.dtype)], axis=-1), tf.float32)
        own = self.bilstm(inputs, mask=mask, training=training)
        return self.head(tf.concat([tf.cast(hidden, tf.float32), own], axis=-1))

    def get_config(self):
        config = super().get_config()
        config.update({"num_outputs": self.num_outputs, "input_dim": self.input_dim, "hidden_dim": self.hidden_dim,
                       "units": self.units, "lstm_backend": self.lstm_backend})
        return config


@keras.saving.register_keras_serializable(package="neuroner_tl")
class TargetColumn(keras.layers.Layer):
    """Scores for the labels an update learnt with a column of its own (``transfer``'s ``column``
    method; progressive networks, Rusu et al. 2016): a trainable copy of the source network's word
    embedding, token BiLSTM and hidden layer over a vocabulary of its own (the source's words and the
    target's), reading the frozen source's character features and, as lateral inputs, the frozen
    token BiLSTM's states (into the column's hidden layer) and the frozen hidden layer (into the head).

    Word ids at or above ``num_words`` (words a later update added) are read as UNK.
    """

    def __init__(self, num_outputs: int, num_words: int, word_dim: int, char_dim: int, state_dim: int,
                 hidden_dim: int, units: int = 128, dropout: float = 0.5, seed: int = 1,
                 lstm_backend: str = "auto", chars: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        # ``chars`` ({"num_chars", "embedding_dim", "units"}): a character encoder of the column's own
        # (a trainable copy of the source's); None: the column reads the frozen source's
        self.chars = dict(chars) if chars else None
        self.char_encoder = CharEncoder(self.chars["num_chars"], self.chars["embedding_dim"], self.chars["units"],
                                        lstm_backend, name="char_encoder", dtype="float32") if chars else None
        self.num_outputs, self.num_words, self.word_dim, self.char_dim = num_outputs, num_words, word_dim, char_dim
        self.state_dim, self.hidden_dim, self.units = state_dim, hidden_dim, units
        self.dropout_rate, self.seed, self.lstm_backend = dropout, seed, lstm_backend
        self.supports_masking = True
        self.word_embedding = keras.layers.Embedding(num_words, word_dim, name="word_embedding", dtype="float32")
        self.dropout = keras.layers.Dropout(dropout, seed=seed, name="dropout")
        self.bilstm = BiLSTM(units, return_sequences=True, backend=lstm_backend, name="token_bilstm")
        self.hidden = keras.layers.Dense(hidden_dim, activation="tanh", name="hidden", dtype="float32")
        self.head = keras.layers.Dense(num_outputs, name="head", dtype="float32")

    def build(self, input_shape=None):
        self.word_embedding.build((None, None))
        if self.char_encoder is not None:
            self.char_encoder.build((None, None, None))
        self.dropout.build((None, None, self.char_dim + self.word_dim))
        self.bilstm.build((None, None, self.char_dim + self.word_dim))
        self.hidden.build((None, None, 2 * self.units + self.state_dim))
        self.head.build((None, None, 2 * self.hidden_dim))
        super().build(input_shape)

    def call(self, words, chars, states, hidden, mask=None, training=None, char_ids=None):
        if self.char_encoder is not None:  # a character a later update added reaches it as UNK
            chars = self.char_encoder(known_ids(char_ids, self.chars["num_chars"]), training=training)
        words = known_ids(words, self.num_words)
        features = tf.concat([tf.cast(chars, tf.float32), self.word_embedding(words)], axis=-1)
        own = self.bilstm(self.dropout(features, training=training), mask=mask, training=training)
        own_hidden = self.hidden(tf.concat([own, tf.cast(states, tf.float32)], axis=-1))
        return self.head(tf.concat([own_hidden, tf.cast(hidden, tf.float32)], axis=-1))

    def get_config(self):
        config = super().get_config()
        config.update({"num_outputs": self.num_outputs, "num_words": self.num_words, "word_dim": self.word_dim,
                       "char_dim": self.char_dim, "state_dim": self.state_dim, "hidden_dim": self.hidden_dim,
                       "units": self.units, "dropout": self.dropout_rate, "seed": self.seed,
                       "lstm_backend": self.lstm_backend, "chars": self.chars})
        return config


def known_ids(words: tf.Tensor, num_words: int) -> tf.Tensor:
    """``words`` with every id at or above ``num_words`` (a word an embedding of ``num_words`` rows
    lacks) read as UNK."""
    words = tf.convert_to_tensor(words)
    return tf.where(words < num_words, words, tf.constant(UNK_ID, words.dtype))


ADAPTER_KINDS = ("adapter", "column")


def check_heads(heads: Optional[dict], num_labels: int) -> Optional[dict]:
    """``heads`` (see ``NeuronerModel``) checked against the label count; None stays None."""
    if heads is None:
        return None
    base = [int(c) for c in heads["base_columns"]]
    width = int(heads["base_width"])
    adapters = [_checked_adapter(a, num_labels) for a in heads.get("adapters", [])]
    if len(base) != num_labels or any(c < -1 or c >= width for c in base):
        raise ValueError(f"heads: base_columns must give each of the {num_labels} labels a column below {width} or -1")
    uncovered = [i for i in range(num_labels) if base[i] < 0 and not any(i in a["labels"] for a in adapters)]
    if uncovered:
        raise ValueError(f"heads: labels {uncovered} have no score (no base column and no adapter)")
    checked = {"base_width": width, "base_columns": base, "adapters": adapters}
    if heads.get("base_words") is not None:
        checked["base_words"] = int(heads["base_words"])
        if checked["base_words"] < 2:
            raise ValueError("heads: base_words must be at least 2 (padding and UNK)")
    return checked


def _checked_adapter(adapter: dict, num_labels: int) -> dict:
    """One entry of ``heads["adapters"]``: ``{"labels", "units"}``, and for a column ``"kind": "column"``
    and ``"words"`` (the rows of its word embedding)."""
    checked = {"labels": [int(i) for i in adapter["labels"]], "units": int(adapter["units"])}
    if not checked["labels"] or any(not 0 <= i < num_labels for i in checked["labels"]) or checked["units"] < 1:
        raise ValueError(f"heads: an adapter must own labels among 0..{num_labels - 1} and have units >= 1")
    if adapter.get("precedence") is not None:
        checked["precedence"] = float(adapter["precedence"])
        if not 0.0 <= checked["precedence"] <= 1.0:
            raise ValueError("heads: an adapter's precedence must be a probability in [0, 1]")
    kind = adapter.get("kind", "adapter")
    if kind not in ADAPTER_KINDS:
        raise ValueError(f"heads: an adapter's kind must be one of {', '.join(ADAPTER_KINDS)}, not {kind!r}")
    if kind == "column":
        checked.update({"kind": kind, "words": int(adapter["words"])})
        if adapter.get("own_chars"):
            checked["own_chars"] = True
        if checked["words"] < 2:
            raise ValueError("heads: a column's words must be at least 2 (padding and UNK)")
    return checked


def gather_index(positions: Sequence[int], num_labels: int, width: int) -> np.ndarray:
    """For each label, the column of a ``[.., width]`` score block that scores it, or ``width`` (a
    column of zeros appended to the block) when the block does not score that label."""
    index = np.full(num_labels, width, np.int32)
    for column, label in enumerate(positions):
        if label >= 0:
            index[label] = column
    return index


@keras.saving.register_keras_serializable(package="neuroner_tl")
class NeuronerModel(keras.Model):
    """The BiLSTM-CRF. ``call`` returns the emission scores ``[B, T, C]``; the CRF layer ``crf`` holds
    the paper's ``(C+2) x (C+2)`` transitions and, from ``crf_rules`` (``label_rules``), the moves the
    tag scheme allows and the span rules of the confidences.

    ``heads`` (None for a network as trained) lays out where the emission scores come from after an
    isolated update: ``base_columns[c]`` is the column of the ``emissions`` layer (``base_width``
    wide) that scores label ``c``, or -1; each of ``adapters`` (``{"labels": [...], "units": n}``,
    a ``LabelAdapter`` named ``adapter_<i>``) adds its scores to its labels. A label's score is
    assembled by gathering, never by a wider matrix product, so the scores of labels no adapter
    owns are bit for bit those of the ``emissions`` layer alone.

    Every layer is built in ``__init__`` from the sizes given, so weight paths do not depend on the
    model's name (``"token_bilstm/forward_lstm/lstm_cell/kernel"``) and a model folder written by any
    version of the package maps weight for weight. Nothing else is set on the model after it is
    built: training wraps it (``training.TrainingModel``) with what it minimises, and decoding
    takes its options as arguments.
    """

    def __init__(self, num_words: int, num_chars: int, num_labels: int, word_dim: int = 300,
                 char_embedding_dim: int = 25, char_lstm_units: int = 25, token_lstm_units: int = 128,
                 hidden_layer: bool = True, dropout: float = 0.5, seed: int = 1, lstm_backend: str = "auto",
                 dtype_policy: Optional[str] = None, heads: Optional[dict] = None, crf_rules: Optional[dict] = None,
                 **kwargs):
        kwargs.setdefault("name", "neuroner")
        super().__init__(**kwargs)
        heads = check_heads(heads, num_labels)
        self.sizes = {"num_words": num_words, "num_chars": num_chars, "num_labels": num_labels, "word_dim": word_dim,
                      "char_embedding_dim": char_embedding_dim, "char_lstm_units": char_lstm_units,
                      "token_lstm_units": token_lstm_units, "hidden_layer": hidden_layer, "dropout": dropout,
                      "seed": seed, "lstm_backend": lstm_backend, "dtype_policy": dtype_policy, "heads": heads,
                      "crf_rules": crf_rules}
        policy = {"dtype": dtype_policy} if dtype_policy else {}  # e.g. "mixed_bfloat16"
        # after a column's update the vocabulary holds words the frozen source never had: it reads them as UNK
        self.base_words = heads.get("base_words", num_words) if heads else num_words
        self.word_embedding = keras.layers.Embedding(self.base_words, word_dim, name="word_embedding", **policy)
        self.char_encoder = CharEncoder(num_chars, char_embedding_dim, char_lstm_units, lstm_backend,
                                        name="char_encoder", **policy)
        self.feature_dropout = keras.layers.Dropout(dropout, seed=seed, name="dropout", **policy)
        self.token_bilstm = BiLSTM(token_lstm_units, return_sequences=True, backend=lstm_backend, name="token_bilstm",
                                   **policy)
        self.hidden = keras.layers.Dense(token_lstm_units, activation="tanh", name="hidden", **policy) \
            if hidden_layer else None
        # the scores and the CRF stay in float32 under a mixed-precision policy
        self.emissions = keras.layers.Dense(heads["base_width"] if heads else num_labels, name="emissions",
                                            dtype="float32")
        self.crf = CRF(num_labels, **(crf_rules or {}), name="crf", dtype="float32")
        feature_dim = 2 * char_lstm_units + word_dim
        hidden_dim = token_lstm_units if hidden_layer else 2 * token_lstm_units
        self.adapters = []
        for number, spec in enumerate(heads["adapters"] if heads else []):
            if spec.get("kind") == "column":
                own_chars = {"num_chars": num_chars, "embedding_dim": char_embedding_dim,
                             "units": char_lstm_units} if spec.get("own_chars") else None
                adapter = TargetColumn(len(spec["labels"]), spec["words"], word_dim, 2 * char_lstm_units,
                                       2 * token_lstm_units, hidden_dim, spec["units"], dropout, seed + 1 + number,
                                       lstm_backend, own_chars, name=f"adapter_{number}")
            else:
                adapter = LabelAdapter(len(spec["labels"]), feature_dim + 2 * token_lstm_units, hidden_dim,
                                       spec["units"], lstm_backend, name=f"adapter_{number}")
            setattr(self, f"adapter_{number}", adapter)
            adapter.build()
            self.adapters.append(adapter)
        self._precedence = _precedence_masks(heads, crf_rules)
        self._gather = None if heads is None else (
            np.array([c if c >= 0 else heads["base_width"] for c in heads["base_columns"]], np.int32),
            [gather_index(spec["labels"], num_labels, len(spec["labels"])) for spec in heads["adapters"]])
        self.word_embedding.build((None, None))
        self.char_encoder.build((None, None, None))
        self.feature_dropout.build((None, None, feature_dim))
        self.token_bilstm.build((None, None, feature_dim))
        if self.hidden is not None:
            self.hidden.build((None, None, 2 * token_lstm_units))
        self.emissions.build((None, None, token_lstm_units if hidden_layer else 2 * token_lstm_units))
        self.crf.build((None, None, num_labels))
        self.built = True

    @classmethod
    def for_hyperparameters(cls, hp: Hyperparameters, num_words: int, num_chars: int, num_labels: int,
                            word_dim: Optional[int] = None, lstm_backend: str = "auto",
                            dtype_policy: Optional[str] = None, heads: Optional[dict] = None,
                            crf_rules: Optional[dict] = None) -> "NeuronerModel":
        return cls(num_words, num_chars, num_labels, word_dim or hp.token_embedding_dim, hp.char_embedding_dim,
                   hp.char_lstm_units, hp.token_lstm_units, hp.hidden_layer, hp.dropout, hp.seed, lstm_backend,
                   dtype_policy, heads, crf_rules)

    # the network -------------------------------------------------------------------------------
    def call(self, inputs, training=None):
        return self.crf(self.scores(inputs, training)[0])

    def scores(self, inputs, training=None):
        """(emission scores ``[B, T, C]``, the token BiLSTM's states ``[B, T, 2 * units]``)."""
        words = tf.convert_to_tensor(inputs[WORD_INPUT])
        mask = words > 0
        chars = self.char_encoder(inputs[CHAR_INPUT], training=training)
        base_words = words if self.base_words == self.sizes["num_words"] else known_ids(words, self.base_words)
        features = tf.concat([chars, tf.cast(self.word_embedding(base_words), chars.dtype)], axis=-1)
        features = self.feature_dropout(features, training=training)
        states = self.token_bilstm(features, mask=mask, training=training)
        hidden = self.hidden(states) if self.hidden is not None else states
        emissions = self.emissions(hidden)
        if self._gather is None:
            return emissions, states
        base_index, adapter_indices = self._gather
        scores = _gathered(emissions, base_index)
        for adapter, index in zip(self.adapters, adapter_indices):
            owned = tf.constant(index < adapter.num_outputs)
            if isinstance(adapter, TargetColumn):
                own = adapter(words, chars, states, hidden, mask=mask, training=training,
                              char_ids=inputs[CHAR_INPUT])
            else:
                own = adapter(features, states, hidden, mask=mask, training=training)
            added = _gathered(own, index)
            scores = tf.where(owned, scores + added, scores)
        return scores, states

    def with_precedence(self, potentials, lengths, constrained: bool = True):
        """``potentials`` with the labels an update added ruled out at every token where, by the
        labels the network had before that update (whose scores and transitions it kept bit for bit),
        the token is inside an entity with probability at least the update's ``precedence``: what the
        source model is sure of, the update's new type cannot take. Unchanged without precedence."""
        for threshold, earlier, own in self._precedence:
            probability = self.earlier_entity_probability(potentials, lengths, constrained, earlier)
            potentials = without_labels_where_sure(potentials, probability, threshold, own)
        return potentials

    def earlier_entity_probability(self, potentials, lengths, constrained, earlier) -> tf.Tensor:
        """``[B, T]``: the probability, under the CRF of the labels in ``earlier`` alone (the others'
        scores set to ``NEG_INF``), that each token is inside an entity."""
        earlier = tf.constant(earlier)
        hidden = tf.where(earlier, potentials, tf.cast(NEG_INF, potentials.dtype))
        marginals = tf.exp(self.crf.log_marginals(hidden, lengths, constrained))
        entity = tf.cast(tf.logical_and(earlier, tf.constant(self.crf.is_entity)), marginals.dtype)
        return tf.reduce_sum(marginals * entity, axis=-1)

    @staticmethod
    def lengths(inputs) -> tf.Tensor:
        return tf.reduce_sum(tf.cast(tf.convert_to_tensor(inputs[WORD_INPUT]) > 0, tf.int32), axis=1)

    # decoding ----------------------------------------------------------------------------------
    def decode(self, inputs, with_probabilities: bool = False, calibrated: bool = True,
               constrained: bool = True) -> Dict[str, tf.Tensor]:
        """The Viterbi path (raw scores), within the moves the CRF's constraint allows unless
        ``constrained`` is False; with ``with_probabilities``, its log-probability and the
        confidences, from the CRF divided by its temperature unless ``calibrated`` is False."""
        lengths = self.lengths(inputs)
        potentials = self.with_precedence(self(inputs, training=False), lengths, constrained)
        tag_ids, scores = self.crf.decode(potentials, lengths, constrained)
        result = {"tag_ids": tag_ids, "scores": scores}
        if with_probabilities:
            token, span = self.crf.confidences(potentials, tag_ids, lengths, constrained, calibrated)
            # the path's score is linear in the scores: divided by T with them (no second pass over the path)
            path_score = scores / tf.cast(self.crf.temperature, scores.dtype) if calibrated else scores
            result.update({"log_probability": path_score - self.crf.log_norm(potentials, lengths, constrained,
                                                                              calibrated),
                           "token_confidence": token, "span_confidence": span})
        return result

    def marginals(self, inputs, constrained: bool = True) -> tf.Tensor:
        """P(label | sentence) of every token ``[B, T, C]``, by forward–backward (within the CRF's
        constraint unless ``constrained`` is False)."""
        lengths = self.lengths(inputs)
        potentials = self.with_precedence(self(inputs, training=False), lengths, constrained)
        return tf.exp(self.crf.log_marginals(potentials, lengths, constrained))

    def uncertainty(self, inputs, kept, calibrated: bool = True, constrained: bool = True) -> Dict[str, tf.Tensor]:
        """What active learning scores a sentence by (``selection``): the Viterbi path (``tag_ids``),
        the log-probability that the kept labels (``[C]`` booleans) are where the path puts them
        (``kept_log_likelihood``, ``CRF.projected_log_likelihood``) and every token's marginals
        (``marginals``, ``[B, T, C]``), from the CRF divided by its temperature unless ``calibrated``
        is False; decoded as ``decode`` does (the constraint, an update's precedence)."""
        lengths = self.lengths(inputs)
        potentials = self.with_precedence(self(inputs, training=False), lengths, constrained)
        tag_ids, _ = self.crf.decode(potentials, lengths, constrained)
        kept_log_likelihood = self.crf.projected_log_likelihood(potentials, tag_ids, kept, lengths, constrained,
                                                                calibrated)
        marginals = tf.exp(self.crf.log_marginals(potentials, lengths, constrained, calibrated))
        return {"tag_ids": tag_ids, "kept_log_likelihood": kept_log_likelihood, "marginals": marginals}

    def predict_step(self, data):
        """Keras's ``predict``: the constrained Viterbi paths, ``{"tag_ids", "scores"}``."""
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self.decode(x)

    # weights -----------------------------------------------------------------------------------
    def model_weights(self) -> list:
        """Every weight of the network, frozen or not (not the dropout's seed state)."""
        return [v for v in self.weights if "seed_generator" not in v.path]

    def replica(self, lstm_backend: Optional[str] = None, dtype_policy: Optional[str] = None) -> "NeuronerModel":
        """A new network of the same sizes (built in the current ``tf.distribute`` scope, with another
        LSTM backend or precision) holding a copy of this one's weights."""
        sizes = {**self.sizes, "dtype_policy": dtype_policy}
        if lstm_backend is not None:
            sizes["lstm_backend"] = lstm_backend
        copy = NeuronerModel(**sizes)
        assign_weights(copy, weight_arrays(self))
        return copy

    def get_config(self):
        return {**self.sizes, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def without_labels_where_sure(potentials: tf.Tensor, probability: tf.Tensor, threshold: float, labels) -> tf.Tensor:
    """``potentials`` ``[B, T, C]`` with ``labels`` (``[C]`` booleans) scored ``NEG_INF`` at every token
    whose ``probability`` (``[B, T]``) is at least ``threshold``."""
    blocked = tf.logical_and((probability >= threshold)[..., None], tf.constant(labels))
    return tf.where(blocked, tf.cast(NEG_INF, potentials.dtype), potentials)


def precedence_masks(heads: Optional[dict], num_labels: int, number: int):
    """(labels the network had before adapter ``number`` — every label but those only it and later
    adapters score —, the labels only adapter ``number`` scores), as ``[C]`` booleans."""
    adapters = heads["adapters"]
    only_adapter = [c < 0 for c in heads["base_columns"]]
    later = np.zeros(num_labels, bool)
    for spec in adapters[number:]:
        later[[i for i in spec["labels"] if only_adapter[i]]] = True
    own = np.zeros(num_labels, bool)
    own[[i for i in adapters[number]["labels"] if only_adapter[i]]] = True
    return ~later, own


def _precedence_masks(heads: Optional[dict], crf_rules: Optional[dict]) -> list:
    """(threshold, labels before, labels of the adapter) of each adapter with a precedence."""
    if heads is None:
        return []
    found = [(spec["precedence"], *precedence_masks(heads, len(heads["base_columns"]), number))
             for number, spec in enumerate(heads["adapters"]) if spec.get("precedence") is not None]
    if found and not (crf_rules or {}).get("is_entity"):
        raise ValueError("heads: a precedence needs the CRF's span rules (is_entity)")
    return found


def _gathered(block: tf.Tensor, index: np.ndarray) -> tf.Tensor:
    """``[.., C]`` scores: label ``c`` takes ``block[.., index[c]]``, or 0 where ``index[c]`` is the
    block's width (``gather_index``)."""
    zeros = tf.zeros_like(block[..., :1])
    return tf.gather(tf.concat([block, zeros], axis=-1), tf.constant(index), axis=-1)


def label_rules(scheme: str, labels: Sequence[str]) -> dict:
    """What the CRF of ``labels`` (in ``scheme``) holds besides its weights: the moves the scheme
    allows (``tags.allowed_transitions``) and the span rules of the confidences, as the CRF's config."""
    return {"allowed_transitions": tagging.allowed_transitions(scheme, labels).tolist(),
            "continues": tagging.span_continuation(labels).tolist(),
            "is_entity": [label != tagging.OUTSIDE for label in labels]}


def build_model(hp: Hyperparameters, num_words: int, num_chars: int, labels: Sequence[str],
                word_dim: int = None, lstm_backend: str = "auto", heads: Optional[dict] = None) -> NeuronerModel:
    """The network for ``labels`` (in ``hp.tag_scheme``); ``word_dim`` overrides
    ``hp.token_embedding_dim`` (pretrained vectors set it); ``heads``: the emission layout an isolated
    update left (``NeuronerModel``)."""
    return NeuronerModel.for_hyperparameters(hp, num_words, num_chars, len(labels), word_dim, lstm_backend,
                                             heads=heads, crf_rules=label_rules(hp.tag_scheme, labels))


def crf_layer(model: NeuronerModel) -> CRF:
    return model.crf


def set_word_embeddings(model: NeuronerModel, matrix: np.ndarray) -> None:
    model.word_embedding.embeddings.assign(matrix)


def weight_arrays(network: NeuronerModel) -> Dict[str, np.ndarray]:
    """Every weight by its path (``"token_bilstm/forward_lstm/lstm_cell/kernel"``).

    The paths depend only on the layer names given in ``NeuronerModel``, and loading by path lets a
    mismatch fail loudly instead of leaving freshly initialized weights in place.
    """
    weights = network.model_weights()
    arrays = {v.path: v.numpy() for v in weights}
    if len(arrays) != len(weights):
        raise ValueError("two weights share a path; give every layer a unique name")
    return arrays


# Weights that model folders and checkpoints written before them lack, with the value that keeps
# such a model as it was (a temperature of 1: the raw CRF's confidences).
DEFAULTED_WEIGHTS = {"crf/temperature": 1.0}


def assign_weights(network: NeuronerModel, arrays: Dict[str, np.ndarray]) -> None:
    """Assign every weight from ``arrays`` (by path; one of ``DEFAULTED_WEIGHTS`` may be absent);
    ``ValueError`` names what is missing or misshapen."""
    wanted = {v.path: v for v in network.model_weights()}
    arrays = {**{path: np.asarray(value, np.float32) for path, value in DEFAULTED_WEIGHTS.items() if path in wanted},
              **arrays}
    missing = sorted(set(wanted) - set(arrays))
    unexpected = sorted(set(arrays) - set(wanted))
    if missing or unexpected:
        raise ValueError(f"weights do not match the network (missing: {', '.join(missing) or 'none'}; "
                         f"unexpected: {', '.join(unexpected) or 'none'})")
    for name, variable in wanted.items():
        value = arrays[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"weight {name} has shape {tuple(value.shape)}, the network expects "
                             f"{tuple(variable.shape)}")
    for name, variable in wanted.items():
        variable.assign(arrays[name])


def save_weights(network: NeuronerModel, path: Union[str, Path]) -> None:
    """An ``.npz`` of every weight by path: the epoch checkpoints of a run in progress."""
    with atomic_writer(path, binary=True) as stream:
        np.savez(stream, **weight_arrays(network))


def load_weights(network: NeuronerModel, path: Union[str, Path]) -> None:
    with np.load(path, allow_pickle=False) as stored:
        assign_weights(network, {name: stored[name] for name in stored.files})

"""``Tagger``: a network with its vocabularies and label list — what a model folder holds in memory."""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from . import tags as tagging
from .batching import Encoded, encode, inference_batches
from .config import Hyperparameters
from .conll import Corpus, Sentence
from .errors import DataFormatError
from .evaluation import evaluate
from .model import CHAR_INDEX_INPUT, CHAR_INPUT, WORD_INPUT, build_model, crf_layer
from .vocabulary import TokenEncoder, Vocabulary

WORDS_SPEC = tf.TensorSpec([None, None], tf.int32)
CHARS_SPEC = tf.TensorSpec([None, None], tf.int32)
INDEX_SPEC = tf.TensorSpec([None, None], tf.int32)
LABELS_SPEC = tf.TensorSpec([None, None], tf.int32)


@dataclasses.dataclass
class Prediction:
    tags: List[str]
    log_probability: float  # log P(tags | tokens) under the CRF

    @property
    def probability(self) -> float:
        return float(np.exp(self.log_probability))


def check_tokens(token_lists: Sequence[Sequence[str]]) -> None:
    """Tokens are non-empty strings (the SavedModel reads ``""`` as padding, so the two agree)."""
    for number, tokens in enumerate(token_lists, start=1):
        for position, token in enumerate(tokens, start=1):
            if not isinstance(token, str) or not token:
                raise DataFormatError(f"sentence {number}, token {position} is {token!r}: tokens must be non-empty "
                                      f"strings (drop empty tokens before tagging)")


class Tagger:
    """A BiLSTM-CRF tagger: hyperparameters, vocabularies, labels and the Keras network."""

    def __init__(self, hp: Hyperparameters, words: Vocabulary, chars: Vocabulary, labels: Sequence[str],
                 network=None, word_dim: Optional[int] = None, history: Optional[list] = None,
                 provenance: Optional[dict] = None):
        self.hp = hp
        self.words = words
        self.chars = chars
        self.labels = list(labels)
        self.word_dim = word_dim or hp.token_embedding_dim
        self.network = network if network is not None else build_model(
            hp, len(words), len(chars), len(self.labels), self.word_dim)
        self.history = list(history or [])
        self.provenance = dict(provenance or {"trained_on": []})
        self.encoder = TokenEncoder(words, chars, lowercase_lookup=hp.lowercase_lookup,
                                    digits_to_zero=hp.replace_digits, max_word_length=hp.max_word_length)
        self._decode: dict = {}
        self.embedding_coverage = None  # set when built with pretrained vectors (embeddings.Coverage)
        self.singletons: List[int] = []  # ids of training words seen once (NeuroNER's UNK swap)

    @property
    def label_index(self) -> Dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def entity_types(self) -> List[str]:
        return tagging.entity_types(self.labels)

    @property
    def crf(self):
        return crf_layer(self.network)

    def encode_corpus(self, corpus: Corpus) -> List[Encoded]:
        """Sentences as ids; labels are rewritten in the model's tag scheme."""
        labels = None
        if corpus.labelled:
            converted = corpus.converted(self.hp.tag_scheme)
            labels = [s.labels for s in converted.sentences]
            known = self.label_index
            for sentence, sentence_labels in zip(corpus.sentences, labels):
                for offset, label in enumerate(sentence_labels):
                    if label not in known:
                        raise DataFormatError(f"label {label!r} is not one of the model's labels "
                                              f"({', '.join(self.labels)})", corpus.path,
                                              sentence.line + offset if sentence.line else None)
        return encode([s.tokens for s in corpus.sentences], self.encoder, labels, self.label_index)

    def network_inputs(self, words, chars, char_index) -> dict:
        return {WORD_INPUT: words, CHAR_INPUT: chars, CHAR_INDEX_INPUT: char_index}

    def decode_function(self, probabilities: bool = False):
        """A compiled ``(word ids, chars, char index) -> (tag ids, log-probability of the path)``;
        the forward algorithm behind the probability runs only when ``probabilities`` is asked for."""
        if self._decode.get(probabilities) is None:
            network, crf, inputs = self.network, self.crf, self.network_inputs

            @tf.function(input_signature=[WORDS_SPEC, CHARS_SPEC, INDEX_SPEC])
            def decode(words, chars, char_index):
                potentials = network(inputs(words, chars, char_index), training=False)
                lengths = tf.reduce_sum(tf.cast(words > 0, tf.int32), axis=1)
                tag_ids, best = crf.decode(potentials, lengths)
                if probabilities:
                    return tag_ids, best - crf.log_norm(potentials, lengths)
                return tag_ids, tf.zeros_like(best)

            self._decode[probabilities] = decode
        return self._decode[probabilities]

    def marginals_function(self):
        """A compiled ``(word ids, chars, char index) -> P(label | sentence)`` per token, ``[B, T, C]``,
        by forward–backward."""
        if self._decode.get("marginals") is None:
            network, crf, inputs = self.network, self.crf, self.network_inputs

            @tf.function(input_signature=[WORDS_SPEC, CHARS_SPEC, INDEX_SPEC])
            def marginals(words, chars, char_index):
                potentials = network(inputs(words, chars, char_index), training=False)
                lengths = tf.reduce_sum(tf.cast(words > 0, tf.int32), axis=1)
                return tf.exp(crf.log_marginals(potentials, lengths))

            self._decode["marginals"] = marginals
        return self._decode["marginals"]

    def predict_marginals(self, items: Sequence[Encoded], batch_size: int = 128) -> List[np.ndarray]:
        """Each sentence's token marginals ``[T, C]`` (rows sum to 1), in the input order."""
        compute = self.marginals_function()
        results: List[np.ndarray] = [np.zeros((0, len(self.labels)), np.float32)] * len(items)
        for batch in inference_batches(items, batch_size):
            values = compute(batch.words, batch.chars, batch.char_index).numpy()
            for row, index in enumerate(batch.indices):
                results[index] = values[row, : len(items[index])]
        return results

    def forget_compiled(self) -> None:
        """Drop the compiled decoders (after the network's weights or shapes change)."""
        self._decode = {}

    def predict_encoded(self, items: Sequence[Encoded], batch_size: int = 128,
                        probabilities: bool = False) -> List[Prediction]:
        """Predictions in the input order; ``log_probability`` is 0.0 unless ``probabilities``."""
        decode = self.decode_function(probabilities)
        results: List[Prediction] = [Prediction([], 0.0)] * len(items)  # empty sentences stay so
        for batch in inference_batches(items, batch_size):
            tag_ids, log_probability = decode(batch.words, batch.chars, batch.char_index)
            tag_ids, log_probability = tag_ids.numpy(), log_probability.numpy()
            for row, index in enumerate(batch.indices):
                length = len(items[index])
                tags = [self.labels[i] for i in tag_ids[row, :length]]
                results[index] = Prediction(tags, float(log_probability[row]))
        return results

    def predict(self, sentences: Sequence, batch_size: int = 128, scheme: Optional[str] = None) -> List[List[str]]:
        """Tags for each sentence (a ``Sentence`` or a list of tokens), in ``scheme`` (default: the
        model's own, BIO or BIOES)."""
        token_lists = [s.tokens if isinstance(s, Sentence) else list(s) for s in sentences]
        check_tokens(token_lists)
        predictions = self.predict_encoded(encode(token_lists, self.encoder), batch_size)
        tags = [p.tags for p in predictions]
        if scheme is not None:
            tags = [tagging.convert(t, scheme) for t in tags]
        return tags

    def evaluate(self, corpus: Corpus, batch_size: int = 128):
        """(conlleval report, predicted IOB2 tags) on a labelled corpus; both sides are scored in IOB2,
        as NeuroNER does, since conlleval has no rule for BIOES."""
        predicted = self.predict(corpus.sentences, batch_size, scheme="IOB2")
        gold = [tagging.convert(s.labels, "IOB2") for s in corpus.sentences]
        return evaluate(gold, predicted), predicted

    def copy_weights_from(self, other: "Tagger") -> None:
        self.network.set_weights(other.network.get_weights())
        self.forget_compiled()

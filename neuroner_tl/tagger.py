"""``Tagger``: a network with its vocabularies and label list — what a model folder holds in memory."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from . import tags as tagging
from .batching import Encoded, check_tokens, encode, inference_batches
from .config import Hyperparameters
from .corpus import Corpus, Sentence
from .errors import DataFormatError
from .evaluation import evaluate_tagger
from .model import CHAR_INPUT, CHARS_SPEC, WORD_INPUT, WORDS_SPEC, build_model, crf_layer
from .predicted import Prediction, SentenceDistribution
from .raw_text import tag_texts
from .thresholds import Threshold, check_threshold, drop_unconfident
from .vocabulary import (TokenEncoder, Vocabulary, build_char_vocabulary, build_word_vocabulary, count_words,
                         replace_digits, singleton_words)


class Tagger:
    """A BiLSTM-CRF tagger: hyperparameters, vocabularies, labels and the Keras network."""

    def __init__(self, hp: Hyperparameters, words: Vocabulary, chars: Vocabulary, labels: Sequence[str],
                 network=None, word_dim: Optional[int] = None, history: Optional[list] = None,
                 provenance: Optional[dict] = None, heads: Optional[dict] = None):
        self.hp = hp
        self.words = words
        self.chars = chars
        self.labels = list(labels)
        self.word_dim = word_dim or hp.token_embedding_dim
        self.network = network if network is not None else build_model(
            hp, len(words), len(chars), self.labels, self.word_dim, heads=heads)
        self.history = list(history or [])
        self.provenance = dict(provenance or {"trained_on": []})
        self.encoder = TokenEncoder(words, chars, lowercase_lookup=hp.lowercase_lookup,
                                    digits_to_zero=hp.replace_digits, max_word_length=hp.max_word_length)
        self._decode: dict = {}  # ("decode", probabilities, calibrated, constrained), ("marginals", constrained), "potentials"
        self._constrained: Optional[bool] = None  # None: as hp.constrained_decoding says
        self._calibrated = True
        self.embedding_coverage = None  # set when built with pretrained vectors (embeddings.Coverage)
        self.singletons: List[int] = []  # ids of training words seen once (NeuroNER's UNK swap)

    @property
    def label_index(self) -> Dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def entity_types(self) -> List[str]:
        return tagging.entity_types(self.labels)

    @property
    def heads(self) -> Optional[dict]:
        """The network's emission layout after isolated updates (``NeuronerModel``), or None."""
        return self.network.sizes["heads"]

    @property
    def crf(self):
        return crf_layer(self.network)

    @property
    def constrained(self) -> bool:
        """Whether decoding and confidences keep to the moves the tag scheme allows (the constraint
        the network's CRF holds). ``hp.constrained_decoding`` unless set, e.g. to measure what the
        constraint does."""
        return self.hp.constrained_decoding if self._constrained is None else self._constrained

    @constrained.setter
    def constrained(self, value: bool) -> None:
        self._constrained = bool(value)

    @property
    def calibrated(self) -> bool:
        """Whether confidences come from the CRF divided by its fitted temperature (``calibration``;
        settable: False shows the raw CRF's numbers). Predicted tags are the same either way."""
        return self._calibrated

    @calibrated.setter
    def calibrated(self, value: bool) -> None:
        self._calibrated = bool(value)

    @property
    def temperature(self) -> float:
        return float(self.network.crf.temperature.numpy())

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

    def decode_function(self, probabilities: bool = False):
        """A compiled ``(word ids [B, T], chars [B, T, W]) -> (tag ids, log-probability of the path,
        token confidences, span confidences)`` (``NeuronerModel.decode``); forward–backward runs only
        when ``probabilities`` is asked for (otherwise the last three are zeros). Compiled once per
        combination of ``probabilities``, ``calibrated`` and ``constrained``; it reads the network's
        variables, so it stays right as the weights change."""
        key = ("decode", probabilities, self.calibrated, self.constrained)
        if self._decode.get(key) is None:
            network, calibrated, constrained = self.network, self.calibrated, self.constrained

            @tf.function(input_signature=[WORDS_SPEC, CHARS_SPEC])
            def decode(words, chars):
                result = network.decode({WORD_INPUT: words, CHAR_INPUT: chars}, probabilities, calibrated,
                                        constrained)
                if probabilities:
                    return (result["tag_ids"], result["log_probability"], result["token_confidence"],
                            result["span_confidence"])
                nothing = tf.zeros_like(words, tf.float32)
                return result["tag_ids"], tf.zeros_like(result["scores"]), nothing, nothing

            self._decode[key] = decode
        return self._decode[key]

    def potentials_function(self):
        """A compiled ``(word ids, chars) -> emission scores [B, T, C]`` (the CRF's input), compiled
        once per tagger (an update's precedence and its calibration both read dev's scores)."""
        if self._decode.get("potentials") is None:
            network = self.network

            @tf.function(input_signature=[WORDS_SPEC, CHARS_SPEC])
            def potentials(words, chars):
                return network({WORD_INPUT: words, CHAR_INPUT: chars}, training=False)

            self._decode["potentials"] = potentials
        return self._decode["potentials"]

    def marginals_function(self):
        """A compiled ``(word ids, chars) -> P(label | sentence)`` per token, ``[B, T, C]``, by
        forward–backward."""
        key = ("marginals", self.constrained)
        if self._decode.get(key) is None:
            network, constrained = self.network, self.constrained

            @tf.function(input_signature=[WORDS_SPEC, CHARS_SPEC])
            def marginals(words, chars):
                return network.marginals({WORD_INPUT: words, CHAR_INPUT: chars}, constrained)

            self._decode[key] = marginals
        return self._decode[key]

    def predict_marginals(self, items: Sequence[Encoded], batch_size: int = 128) -> List[np.ndarray]:
        """Each sentence's token marginals ``[T, C]`` (rows sum to 1), in the input order."""
        compute = self.marginals_function()
        results: List[np.ndarray] = [np.zeros((0, len(self.labels)), np.float32)] * len(items)
        for batch in inference_batches(items, batch_size):
            values = compute(batch.words, batch.chars).numpy()
            for row, index in enumerate(batch.indices):
                results[index] = values[row, : len(items[index])]
        return results

    def uncertainty_function(self, kept: Sequence[bool]):
        """A compiled ``(word ids, chars) -> (tag ids, log P(kept labels as the path puts them), marginals)``
        (``NeuronerModel.uncertainty``) for the kept labels (one boolean per label), compiled once per
        ``kept``, ``calibrated`` and ``constrained``."""
        kept = tuple(bool(k) for k in kept)
        if len(kept) != len(self.labels):
            raise ValueError(f"kept has {len(kept)} flags for {len(self.labels)} labels")
        key = ("uncertainty", kept, self.calibrated, self.constrained)
        if self._decode.get(key) is None:
            network, calibrated, constrained = self.network, self.calibrated, self.constrained
            mask = tf.constant(kept)

            @tf.function(input_signature=[WORDS_SPEC, CHARS_SPEC])
            def uncertainty(words, chars):
                result = network.uncertainty({WORD_INPUT: words, CHAR_INPUT: chars}, mask, calibrated, constrained)
                return result["tag_ids"], result["kept_log_likelihood"], result["marginals"]

            self._decode[key] = uncertainty
        return self._decode[key]

    def predict_distributions(self, items: Sequence[Encoded], kept: Sequence[bool],
                              batch_size: int = 128) -> List[SentenceDistribution]:
        """Each sentence's ``SentenceDistribution`` for the kept labels, in the input order."""
        compute = self.uncertainty_function(kept)
        results: List[Optional[SentenceDistribution]] = [None] * len(items)
        for batch in inference_batches(items, batch_size):
            tag_ids, kept_log_likelihood, marginals = (value.numpy() for value in compute(batch.words, batch.chars))
            for row, index in enumerate(batch.indices):
                length = len(items[index])
                results[index] = SentenceDistribution(tag_ids[row, :length], float(kept_log_likelihood[row]),
                                                      marginals[row, :length].astype(np.float64))
        return results

    def predict_states(self, items: Sequence[Encoded], batch_size: int = 128) -> List[np.ndarray]:
        """Each sentence's token BiLSTM states ``[T, 2 * units]`` (state distillation's teacher), in order."""
        network = self.network

        @tf.function(input_signature=[WORDS_SPEC, CHARS_SPEC])
        def states(words, chars):
            return network.scores({WORD_INPUT: words, CHAR_INPUT: chars}, training=False)[1]

        results: List[np.ndarray] = [None] * len(items)
        for batch in inference_batches(items, batch_size):
            values = states(batch.words, batch.chars).numpy()
            for row, index in enumerate(batch.indices):
                results[index] = values[row, : len(items[index])].astype(np.float32)
        return results

    def predict_encoded(self, items: Sequence[Encoded], batch_size: int = 128,
                        probabilities: bool = False) -> List[Prediction]:
        """Predictions in the input order; the log-probability and the confidences are computed only
        with ``probabilities``."""
        decode = self.decode_function(probabilities)
        results: List[Prediction] = [Prediction([], 0.0, [] if probabilities else None,
                                                [] if probabilities else None)] * len(items)
        for batch in inference_batches(items, batch_size):
            outputs = [value.numpy() for value in decode(batch.words, batch.chars)]
            tag_ids, log_probability, token, span = outputs
            for row, index in enumerate(batch.indices):
                length = len(items[index])
                tags = [self.labels[i] for i in tag_ids[row, :length]]
                if probabilities:
                    results[index] = Prediction(tags, float(log_probability[row]), token[row, :length].tolist(),
                                                span[row, :length].tolist())
                else:
                    results[index] = Prediction(tags, 0.0)
        return results

    def predict(self, sentences: Sequence, batch_size: int = 128, scheme: Optional[str] = None) -> List[List[str]]:
        """Tags for each sentence (a ``Sentence`` or a list of tokens), in ``scheme`` (default: the
        model's own, BIO or BIOES)."""
        tags = [p.tags for p in self.predict_with_confidence(sentences, batch_size, confidence=False)]
        if scheme is not None:
            tags = [tagging.convert(t, scheme) for t in tags]
        return tags

    def predict_with_confidence(self, sentences: Sequence, batch_size: int = 128, confidence: bool = True,
                                min_confidence: Threshold = None) -> List[Prediction]:
        """A ``Prediction`` for each sentence (a ``Sentence`` or a list of tokens), in the model's
        scheme, with token and entity confidences; entities below ``min_confidence`` (one number or
        a mapping by type, ``"*"`` for the rest) are dropped."""
        check_threshold(min_confidence, self.entity_types)
        token_lists = [s.tokens if isinstance(s, Sentence) else list(s) for s in sentences]
        check_tokens(token_lists)
        predictions = self.predict_encoded(encode(token_lists, self.encoder), batch_size,
                                           probabilities=confidence or min_confidence is not None)
        return [drop_unconfident(p, min_confidence, self.hp.tag_scheme) for p in predictions]

    def tag(self, texts: Union[str, Sequence[str]], batch_size: int = 128,
            min_confidence: Threshold = None) -> Union[List[dict], List[List[dict]]]:
        """Entities in raw text (``raw_text.tag_texts``): for one string a list, for a list of strings
        a list per string, of ``{"type", "text", "start", "end", "confidence"}``."""
        return tag_texts(self, texts, batch_size, min_confidence)

    def evaluate(self, corpus: Corpus, batch_size: int = 128, min_confidence: Threshold = None,
                 encoded: Optional[Sequence[Encoded]] = None):
        """(conlleval report, predicted IOB2 tags) on a labelled corpus (``evaluation.evaluate_tagger``);
        ``encoded``: the corpus's ``encode_corpus``, when it was encoded before."""
        return evaluate_tagger(self, corpus, batch_size, min_confidence, encoded)


def build_tagger(hp: Hyperparameters, train: Corpus, others: Sequence[Corpus] = (), vectors=None,
                 extra_types: Sequence[str] = ()) -> Tagger:
    """A fresh tagger whose vocabularies and labels come from the training data: training words seen
    ``hp.min_word_count`` times, plus (with ``vectors``) every word of ``train`` and ``others`` that
    has a pretrained vector; its word embeddings start from those vectors."""
    from .embeddings import embedding_matrix, find_vector
    from .model import set_word_embeddings

    normalize = replace_digits if hp.replace_digits else (lambda t: t)
    counts = count_words((s.tokens for s in train.sentences), normalize)
    has_vector = (lambda w: find_vector(vectors, w) is not None) if vectors is not None else None
    extra_words = (normalize(t) for c in others for s in c.sentences for t in s.tokens)
    words = build_word_vocabulary(counts, hp.min_word_count, has_vector, extra_words)
    chars = build_char_vocabulary((s.tokens for s in train.sentences), normalize)
    types = sorted(set(train.entity_types()).union(*(c.entity_types() for c in others if c.labelled), extra_types))
    labels = tagging.labels_for_types(types, hp.tag_scheme)
    dim = vectors.vector_size if vectors is not None else hp.token_embedding_dim
    tagger = Tagger(hp, words, chars, labels, word_dim=dim)
    matrix, coverage = embedding_matrix(words, dim, np.random.default_rng(hp.seed), vectors)
    set_word_embeddings(tagger.network, matrix)
    tagger.embedding_coverage = coverage
    tagger.singletons = [words.id(w) for w in singleton_words(counts, words)]
    return tagger

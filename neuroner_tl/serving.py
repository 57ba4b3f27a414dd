"""The SavedModel's serving signatures: a model that needs nothing else, for ``tf.saved_model.load``
or TF Serving.

- ``serving_default(tokens)``: token strings ``[batch, time]``, each row padded at the end with
  ``""`` -> ``tags``, ``tag_ids``, ``lengths``, path ``scores``, ``log_probability``,
  ``confidence`` (each token's tag marginal) and ``span_confidence`` (each entity token: its entity's
  confidence, ``crf.crf_confidences``), decoded with the tag scheme's constraint as the package decodes.
- ``serve_text(texts)``: raw strings ``[batch]``, tokenized and split into sentences in the graph
  exactly as ``tokenizer.split_sentences`` does (RE2 spellings of its patterns,
  ``tokenizer.re2_patterns``) -> per token ``tokens``, ``starts``/``ends`` (character offsets, end
  exclusive, -1 on padding), ``sentence`` (its sentence within the text), ``tags``, ``confidence``,
  ``span_confidence``, ``token_count``; per entity ``entity_type``, ``entity_text``,
  ``entity_start``/``entity_end`` (characters), ``entity_confidence``, ``entity_count``: what
  ``Tagger.tag`` returns.

The module holds every weight in one dict by path (``WEIGHTS_ATTRIBUTE``: the checkpoint keys
``model_io`` reads the weights back from) and the vocabularies, labels and hyperparameters as
``tf.saved_model.Asset`` files; the lookup tables are initialized from those very files.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from . import tags as tagging
from .crf import entity_ids, entity_marks
from .model import CHAR_INPUT, CHARS_SPEC, WORD_INPUT, WORDS_SPEC
from .tagger import Tagger
from .tokenizer import ELISION_MARKS, RESERVED, RESERVED_STAND_IN, TOKEN_END, TOKEN_START, re2_patterns
from .vocabulary import PAD_ID, UNK_ID

WEIGHTS_ATTRIBUTE = "weights_by_path"
INTERIOR_EMPTY_MESSAGE = ("an empty string before a row's last token: \"\" is padding and may only follow the "
                          "tokens; drop empty tokens before tagging")
TOKENS_SPEC = tf.TensorSpec([None, None], tf.string, name="tokens")
TEXTS_SPEC = tf.TensorSpec([None], tf.string, name="texts")


def vocabulary_table(asset: tf.saved_model.Asset, entries: int) -> tf.lookup.StaticHashTable:
    """Entry -> line from a vocabulary file (``Vocabulary.save``: the entries from id 2 on, one a
    line); entries it lacks give -1. TensorFlow cannot read a table from an empty file, so a
    vocabulary of padding and UNK alone (a tiny training set) is a table that finds nothing."""
    if entries == 0:
        return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant([""]), tf.constant([-1], tf.int64)), default_value=-1)
    initializer = tf.lookup.TextFileInitializer(asset, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
    return tf.lookup.StaticHashTable(initializer, default_value=-1)


def label_table(asset: tf.saved_model.Asset) -> tf.lookup.StaticHashTable:
    """Label id -> label from ``labels.txt``."""
    initializer = tf.lookup.TextFileInitializer(asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                                                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE)
    return tf.lookup.StaticHashTable(initializer, default_value="")


class ServingModule(tf.Module):
    """What a model folder's ``saved_model/`` holds (see the module's docstring)."""

    def __init__(self, tagger: Tagger, asset_paths: Dict[str, str]):
        super().__init__(name="neuroner_tl_serving")
        self.assets = {name: tf.saved_model.Asset(path) for name, path in asset_paths.items()}
        setattr(self, WEIGHTS_ATTRIBUTE, {v.path: v for v in tagger.network.model_weights()})
        network = tagger.network
        # in a list, so that the network is not tracked a second time: every variable it uses is in
        # the weights dict above, under a key that does not depend on Keras's object graph. One
        # tf.function that both signatures call, so the network is traced and stored once, not twice.
        # autograph is off here and in the signatures: the code writes its control flow as tf ops
        # itself, and converting the network cost about 3 s of every model folder's export.
        constrained = tagger.constrained  # as the model's hyperparameters say (constrained_decoding)
        decode = tf.function(lambda words, chars: network.decode({WORD_INPUT: words, CHAR_INPUT: chars},
                                                                  with_probabilities=True, constrained=constrained),
                             input_signature=[WORDS_SPEC, CHARS_SPEC], autograph=False)
        self._decode = [decode]
        self.word_table = vocabulary_table(self.assets["words.txt"], len(tagger.words) - 2)
        self.char_table = vocabulary_table(self.assets["chars.txt"], len(tagger.chars) - 2)
        self.label_table = label_table(self.assets["labels.txt"])
        self.continues = tf.constant(tagger.crf.continues)  # the span rules the network's CRF holds
        self.is_entity = tf.constant(tagger.crf.is_entity)
        self.entity_types = tf.constant([tagging.split_tag(label)[1] or "" for label in tagger.labels])
        hp = tagger.hp
        self.replace_digits = hp.replace_digits
        self.lowercase_lookup = hp.lowercase_lookup
        self.max_word_length = hp.max_word_length
        self.patterns = re2_patterns()

    def signatures(self) -> dict:
        return {"serving_default": self.serve.get_concrete_function(),
                "serve_text": self.serve_text.get_concrete_function()}

    # token strings ---------------------------------------------------------------------------
    def _ids(self, table, keys):
        ids = tf.cast(table.lookup(keys), tf.int32)
        return tf.where(ids >= 0, ids + 2, ids)  # the file starts at id 2 (after padding and UNK)

    def _word_ids(self, forms):
        ids = self._ids(self.word_table, forms)
        if self.lowercase_lookup:
            ids = tf.where(ids < 0, self._ids(self.word_table, tf.strings.lower(forms, encoding="utf-8")), ids)
        ids = tf.where(ids < 0, tf.constant(UNK_ID, tf.int32), ids)
        return tf.where(forms == "", tf.constant(PAD_ID, tf.int32), ids)

    def _char_ids(self, forms):
        """Each position's character ids ``[B, T, W]`` (0 = padding; the network finds the distinct tokens)."""
        characters = tf.strings.unicode_split(forms, "UTF-8").to_tensor(default_value="")
        characters = characters[:, :, : self.max_word_length]
        ids = self._ids(self.char_table, characters)
        ids = tf.where(ids < 0, tf.constant(UNK_ID, tf.int32), ids)
        return tf.where(characters == "", tf.constant(PAD_ID, tf.int32), ids)

    @tf.function(input_signature=[TOKENS_SPEC], autograph=False)
    def serve(self, tokens):
        """Rows of token strings, each padded at the end with ``""``. An empty string before a row's
        last token is an error (as it is for ``Tagger.predict``): it would shift every later token."""
        forms = tf.strings.regex_replace(tokens, "[0-9]", "0") if self.replace_digits else tokens
        real = forms != ""
        lengths = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
        trailing_padding = tf.reduce_all(tf.equal(real, tf.sequence_mask(lengths, tf.shape(forms)[1])))
        checked = tf.debugging.Assert(trailing_padding, [INTERIOR_EMPTY_MESSAGE])
        with tf.control_dependencies([checked]):
            return tf.cond(tf.reduce_any(real), lambda: self._tag(forms, lengths), lambda: self._nothing(forms))

    def _tag(self, forms, lengths):
        words = self._word_ids(forms)
        decoded = self._decode[0](words, self._char_ids(forms))
        mask = tf.sequence_mask(lengths, tf.shape(words)[1])
        tag_ids = tf.where(mask, decoded["tag_ids"], 0)
        tags = tf.where(mask, self.label_table.lookup(tf.cast(tag_ids, tf.int64)), "")
        return {"tags": tags, "tag_ids": tag_ids, "lengths": lengths, "scores": decoded["scores"],
                "log_probability": decoded["log_probability"], "confidence": decoded["token_confidence"],
                "span_confidence": decoded["span_confidence"]}

    def _nothing(self, forms):
        """The answer for a batch without a single token (no rows, no columns, or all padding)."""
        shape = tf.shape(forms)
        zeros = tf.zeros([shape[0]], tf.float32)
        return {"tags": tf.fill(shape, ""), "tag_ids": tf.zeros(shape, tf.int32),
                "lengths": tf.zeros([shape[0]], tf.int32), "scores": zeros, "log_probability": zeros,
                "confidence": tf.zeros(shape, tf.float32), "span_confidence": tf.zeros(shape, tf.float32)}

    # raw text --------------------------------------------------------------------------------
    def _tokenize(self, texts):
        """(tokens, starts, ends) as ragged ``[B, None]``: ``tokenizer.tokenize`` in RE2."""
        word, before = self.patterns["word"], self.patterns["word_or_mark"]
        marked = tf.strings.regex_replace(texts, RESERVED, RESERVED_STAND_IN)
        for _ in range(2):  # twice: a match consumes the word character after the apostrophe
            for apostrophe, mark in ELISION_MARKS.items():
                marked = tf.strings.regex_replace(marked, f"({before}){apostrophe}({word})", f"\\1{mark}\\2")
        wrapped = tf.strings.regex_replace(marked, self.patterns["token"], f"{TOKEN_START}\\0{TOKEN_END}")
        code_points = tf.strings.unicode_decode(wrapped, "UTF-8")
        positions = tf.ragged.range(code_points.row_lengths())
        opened = tf.ragged.boolean_mask(positions, tf.equal(code_points, ord(TOKEN_START)))
        closed = tf.ragged.boolean_mask(positions, tf.equal(code_points, ord(TOKEN_END)))
        before = 2 * tf.ragged.range(opened.row_lengths())  # the markers of the tokens before each one
        starts = opened - before
        ends = closed - before - 1
        owners = starts.value_rowids()
        flat = tf.strings.substr(tf.gather(texts, owners), tf.cast(starts.flat_values, tf.int32),
                                 tf.cast(ends.flat_values - starts.flat_values, tf.int32), unit="UTF8_CHAR")
        return starts.with_flat_values(flat), starts, ends

    def _sentence_ids(self, texts, tokens, starts, ends):
        """Each token's sentence within its text, ragged ``[B, None]``: a line break between two tokens
        ends a sentence, and so does final punctuation before a token that starts upper-case."""
        flat_tokens = tokens.flat_values
        owners = tokens.value_rowids()
        count = tf.shape(flat_tokens, out_type=tf.int64)[0]
        same_text = tf.equal(owners[1:], owners[:-1])
        gap_end = starts.flat_values[1:]
        gap_start = tf.where(same_text, ends.flat_values[:-1], gap_end)  # no gap across two texts
        gaps = tf.strings.substr(tf.gather(texts, owners[1:]), tf.cast(gap_start, tf.int32),
                                 tf.cast(tf.maximum(gap_end - gap_start, 0), tf.int32), unit="UTF8_CHAR")
        line_break = tf.strings.regex_full_match(gaps, f"(?s).*{self.patterns['line_break']}.*")
        last_char = tf.strings.substr(flat_tokens[:-1], -1, 1, unit="UTF8_CHAR")
        first_char = tf.strings.substr(flat_tokens[1:], 0, 1, unit="UTF8_CHAR")
        punctuation = tf.strings.regex_full_match(last_char, self.patterns["sentence_end"]) & \
            tf.strings.regex_full_match(first_char, self.patterns["upper"])
        new_sentence = tf.concat([[False], same_text & (line_break | punctuation)], axis=0)[: count]
        per_text = tokens.with_flat_values(tf.cumsum(tf.cast(new_sentence, tf.int32)))
        return per_text - tf.reduce_min(per_text, axis=1, keepdims=True)

    @tf.function(input_signature=[TEXTS_SPEC], autograph=False)
    def serve_text(self, texts):
        """Raw texts ``[batch]`` -> tokens with character offsets, tags, confidences and entities."""
        tokens, starts, ends = self._tokenize(texts)
        sentence = self._sentence_ids(texts, tokens, starts, ends)
        sentences_per_text = tf.reduce_max(sentence, axis=1) + 1  # 0 for a text without tokens
        sentences_per_text = tf.where(tokens.row_lengths() > 0, sentences_per_text, 0)
        first_sentence = tf.cumsum(sentences_per_text, exclusive=True)
        global_sentence = tf.cast(sentence + tf.expand_dims(first_sentence, 1), tf.int64).flat_values
        total = tf.reduce_sum(sentences_per_text)
        by_sentence = tf.RaggedTensor.from_value_rowids(tokens.flat_values, global_sentence,
                                                        nrows=tf.cast(total, tf.int64))
        positions = tf.ragged.range(by_sentence.row_lengths()).flat_values
        forms = by_sentence.to_tensor(default_value="")
        forms = tf.strings.regex_replace(forms, "[0-9]", "0") if self.replace_digits else forms
        lengths = tf.cast(by_sentence.row_lengths(), tf.int32)
        tagged = tf.cond(total > 0, lambda: self._tag(forms, lengths), lambda: self._nothing(forms))
        where = tf.stack([global_sentence, positions], axis=1)

        def per_token(values, fill):
            return tokens.with_flat_values(tf.gather_nd(values, where)).to_tensor(default_value=fill)

        entities = self._entities(tagged["tag_ids"], lengths, starts, ends, by_sentence, tagged["span_confidence"],
                                  sentences_per_text, texts)
        return {"tokens": tokens.to_tensor(default_value=""), "starts": starts.to_tensor(default_value=-1),
                "ends": ends.to_tensor(default_value=-1), "sentence": sentence.to_tensor(default_value=-1),
                "tags": per_token(tagged["tags"], ""), "confidence": per_token(tagged["confidence"], 0.0),
                "span_confidence": per_token(tagged["span_confidence"], 0.0),
                "token_count": tokens.row_lengths(), **entities}

    def _entities(self, tag_ids, lengths, starts, ends, by_sentence, span_confidence, sentences_per_text, texts):
        """The entities of every sentence (``tags.spans``' rule, ``span_continuation``), grouped by text."""
        mask = tf.sequence_mask(lengths, tf.shape(tag_ids)[1])
        inside, _, opens = entity_marks(tag_ids, mask, self.continues, self.is_entity)
        entity_of = entity_ids(opens, tf.int64)
        inside_at = tf.where(inside)  # [K, 2]: (sentence, position) of every entity token, in order
        entity_of_token = tf.gather_nd(entity_of, inside_at)
        count = tf.reduce_sum(tf.cast(opens, tf.int64))
        first = tf.math.unsorted_segment_min(inside_at[:, 1], entity_of_token, count)
        last = tf.math.unsorted_segment_max(inside_at[:, 1], entity_of_token, count)
        sentence_of = tf.math.unsorted_segment_min(inside_at[:, 0], entity_of_token, count)
        char_starts = tf.RaggedTensor.from_row_lengths(starts.flat_values, by_sentence.row_lengths())
        char_ends = tf.RaggedTensor.from_row_lengths(ends.flat_values, by_sentence.row_lengths())
        begin = tf.gather_nd(char_starts, tf.stack([sentence_of, first], axis=1))
        end = tf.gather_nd(char_ends, tf.stack([sentence_of, last], axis=1))
        kind = tf.gather(self.entity_types, tf.gather_nd(tag_ids, tf.stack([sentence_of, first], axis=1)))
        confidence = tf.gather_nd(span_confidence, tf.stack([sentence_of, first], axis=1))
        text_of_sentence = tf.repeat(tf.range(tf.shape(sentences_per_text, out_type=tf.int64)[0]), sentences_per_text)
        owner = tf.gather(text_of_sentence, sentence_of)
        nrows = tf.shape(texts, out_type=tf.int64)[0]
        text = tf.strings.substr(tf.gather(texts, owner), tf.cast(begin, tf.int32), tf.cast(end - begin, tf.int32),
                                 unit="UTF8_CHAR")

        def grouped(values, fill):
            return tf.RaggedTensor.from_value_rowids(values, owner, nrows=nrows).to_tensor(default_value=fill)

        return {"entity_type": grouped(kind, ""), "entity_text": grouped(text, ""),
                "entity_start": grouped(begin, -1), "entity_end": grouped(end, -1),
                "entity_confidence": grouped(confidence, 0.0),
                "entity_count": tf.math.bincount(tf.cast(owner, tf.int32), minlength=tf.cast(nrows, tf.int32),
                                                 maxlength=tf.cast(nrows, tf.int32), dtype=tf.int64)}

"""Linear-chain CRF: pure TensorFlow functions with tensorflow-addons' ``tfa.text.crf`` semantics,
and a thin Keras layer that owns the transition weights.

Shapes follow tfa: ``inputs`` (unary potentials) ``[batch, time, tags]``, ``tag_indices`` and the
decoded tags ``[batch, time]``, ``sequence_lengths`` ``[batch]``, right padding.
``transition_params[i, j]`` scores a move from tag ``i`` to tag ``j``. Every function also takes
optional ``start_transitions`` and ``end_transitions`` (``[tags]``): scores for the first and last
tag of a sequence. Without them the functions are exactly tfa's. A sequence of length 0 scores 0,
has log-norm 0 and decodes to zeros.
"""

from __future__ import annotations

from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

# Large enough to rule a transition out, small enough to stay finite in float16.
NEG_INF = -1e4


def _boundary(vector: Optional[tf.Tensor], num_tags, dtype) -> tf.Tensor:
    if vector is None:
        return tf.zeros([num_tags], dtype=dtype)
    return tf.cast(vector, dtype)


def _prepared(potentials, sequence_lengths, transition_params):
    """(potentials, lengths as int32, transitions in the potentials' dtype, number of tags, max length)."""
    potentials = tf.convert_to_tensor(potentials)
    return (potentials, tf.cast(sequence_lengths, tf.int32), tf.cast(transition_params, potentials.dtype),
            tf.shape(potentials)[2], tf.shape(potentials)[1])


def _length_mask(sequence_lengths: tf.Tensor, max_length: tf.Tensor, dtype) -> tf.Tensor:
    return tf.sequence_mask(sequence_lengths, maxlen=max_length, dtype=dtype)


def crf_sequence_score(inputs, tag_indices, sequence_lengths, transition_params,
                       start_transitions=None, end_transitions=None) -> tf.Tensor:
    """The unnormalized score of each tag sequence, ``[batch]``."""
    inputs = tf.convert_to_tensor(inputs)
    dtype = inputs.dtype
    tag_indices = tf.cast(tag_indices, tf.int32)
    sequence_lengths = tf.cast(sequence_lengths, tf.int32)
    transition_params = tf.cast(transition_params, dtype)
    num_tags = tf.shape(inputs)[2]
    max_length = tf.shape(inputs)[1]
    mask = _length_mask(sequence_lengths, max_length, dtype)

    unary = tf.reduce_sum(tf.gather(inputs, tag_indices, batch_dims=2) * mask, axis=1)

    pairs = tf.stack([tag_indices[:, :-1], tag_indices[:, 1:]], axis=-1)
    binary = tf.reduce_sum(tf.gather_nd(transition_params, pairs) * mask[:, 1:], axis=1)

    first = tag_indices[:, 0]
    last = tf.gather(tag_indices, tf.maximum(sequence_lengths - 1, 0), batch_dims=1)
    start = tf.gather(_boundary(start_transitions, num_tags, dtype), first)
    end = tf.gather(_boundary(end_transitions, num_tags, dtype), last)
    nonempty = tf.cast(sequence_lengths > 0, dtype)
    return unary + binary + (start + end) * nonempty


def crf_forward(inputs, state, transition_params, sequence_lengths) -> tf.Tensor:
    """The forward algorithm (tfa's signature): alphas at each sequence's last step, ``[batch, tags]``.

    ``inputs`` are the potentials of steps 1.. (``[batch, time - 1, tags]``), ``state`` the alphas of
    step 0, ``sequence_lengths`` the full lengths.
    """
    transition_params = tf.cast(transition_params, inputs.dtype)
    steps = _with_inert_step(tf.transpose(inputs, [1, 0, 2]))  # time-major
    positions = tf.range(1, tf.shape(steps)[0] + 1)

    def step(alphas, elements):
        potentials, position = elements
        scores = tf.expand_dims(alphas, 2) + tf.expand_dims(transition_params, 0)
        new_alphas = tf.reduce_logsumexp(scores, axis=1) + potentials
        still_running = tf.expand_dims(position < sequence_lengths, 1)
        return tf.where(still_running, new_alphas, alphas)

    return tf.scan(step, (steps, positions), initializer=state)[-1]


def _with_inert_step(time_major):
    """Append one step past every sequence's end: it never counts (its position is >= every length),
    and it keeps ``tf.scan`` from running over zero steps, which graph mode cannot stack."""
    shape = tf.concat([[1], tf.shape(time_major)[1:]], axis=0)
    return tf.concat([time_major, tf.zeros(shape, dtype=time_major.dtype)], axis=0)


def crf_log_norm(inputs, sequence_lengths, transition_params,
                 start_transitions=None, end_transitions=None) -> tf.Tensor:
    """The log partition function of each sequence, ``[batch]``."""
    inputs = tf.convert_to_tensor(inputs)
    dtype = inputs.dtype
    sequence_lengths = tf.cast(sequence_lengths, tf.int32)
    num_tags = tf.shape(inputs)[2]
    first = inputs[:, 0, :] + _boundary(start_transitions, num_tags, dtype)
    alphas = crf_forward(inputs[:, 1:, :], first, transition_params, sequence_lengths)
    log_norm = tf.reduce_logsumexp(alphas + _boundary(end_transitions, num_tags, dtype), axis=1)
    return tf.where(sequence_lengths > 0, log_norm, tf.zeros_like(log_norm))


def crf_log_likelihood(inputs, tag_indices, sequence_lengths, transition_params,
                       start_transitions=None, end_transitions=None) -> Tuple[tf.Tensor, tf.Tensor]:
    """(log-likelihood of each tag sequence ``[batch]``, ``transition_params``), as tfa returns."""
    score = crf_sequence_score(inputs, tag_indices, sequence_lengths, transition_params,
                               start_transitions, end_transitions)
    log_norm = crf_log_norm(inputs, sequence_lengths, transition_params, start_transitions, end_transitions)
    return score - log_norm, transition_params


def _forward_backward(inputs, sequence_lengths, transition_params, start_transitions, end_transitions):
    """(alphas, betas, log_norm, prepared potentials, lengths, transitions): ``alphas[t, b, j]`` is the
    log-sum of the scores of every path of positions ``0..t`` ending in ``j``, ``betas[t, b, i]`` that
    of every continuation after ``t`` from ``i`` (end transition included); both time-major
    ``[T, B, C]``. Past a sequence's end the alphas are never read and the betas are the end scores."""
    inputs, sequence_lengths, transition_params, num_tags, max_length = _prepared(
        inputs, sequence_lengths, transition_params)
    dtype = inputs.dtype
    start = _boundary(start_transitions, num_tags, dtype)
    end = _boundary(end_transitions, num_tags, dtype)
    time_major = tf.transpose(inputs, [1, 0, 2])  # [T, B, C]

    def forward(alphas, potentials):
        return tf.reduce_logsumexp(tf.expand_dims(alphas, 2) + transition_params, axis=1) + potentials

    first = time_major[0] + start
    later = tf.scan(forward, _with_inert_step(time_major[1:]), initializer=first)[:-1]
    alphas = tf.concat([tf.expand_dims(first, 0), later], axis=0)  # [T, B, C]

    def backward(betas, elements):
        next_potentials, position = elements  # position t: betas of t from those of t + 1
        new_betas = tf.reduce_logsumexp(transition_params + tf.expand_dims(next_potentials + betas, 1), axis=2)
        inside = tf.expand_dims(position + 1 < sequence_lengths, 1)  # t is not the last position
        return tf.where(inside, new_betas, tf.broadcast_to(end, tf.shape(betas)))

    last = tf.broadcast_to(end, tf.shape(first))
    positions = tf.range(max_length - 1)
    earlier = tf.scan(backward, (_with_inert_step(time_major[1:]), tf.concat([positions, [max_length]], 0)),
                      initializer=last, reverse=True)[:-1]
    betas = tf.concat([earlier, tf.expand_dims(last, 0)], axis=0)  # [T, B, C]
    log_norm = tf.reduce_logsumexp(alphas[0] + betas[0], axis=1)  # [B]
    return alphas, betas, log_norm, inputs, sequence_lengths, transition_params


def crf_log_marginals(inputs, sequence_lengths, transition_params,
                      start_transitions=None, end_transitions=None) -> tf.Tensor:
    """Forward–backward: ``log P(y_t = j | x)`` for every position and tag, ``[batch, time, tags]``.

    Differentiable (the update's distillation loss trains through it). Positions past a sequence's
    length get 0.
    """
    alphas, betas, log_norm, inputs, sequence_lengths, _ = _forward_backward(
        inputs, sequence_lengths, transition_params, start_transitions, end_transitions)
    marginals = tf.transpose(alphas + betas, [1, 0, 2]) - log_norm[:, None, None]
    mask = _length_mask(sequence_lengths, tf.shape(inputs)[1], tf.bool)
    return tf.where(mask[:, :, None], marginals, tf.zeros_like(marginals))


def entity_marks(tag_indices, valid, continues, is_entity) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Where the entities of a batch of taggings are, by ``tags.spans``' rule, as ``[batch, time]``
    booleans ``(inside, continued, starts)``: the token has an entity tag (``is_entity``, ``[tags]``);
    it extends the entity of the token before it (``continues``, ``[tags, tags]``,
    ``tags.span_continuation``); it starts an entity. ``valid`` masks the padding."""
    tags = tf.cast(tag_indices, tf.int32)
    valid = tf.cast(valid, tf.bool)
    continues = tf.convert_to_tensor(continues, tf.bool)
    inside = tf.logical_and(tf.gather(tf.convert_to_tensor(is_entity, tf.bool), tags), valid)
    linked = tf.logical_and(tf.gather_nd(continues, tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1)), valid[:, 1:])
    continued = tf.concat([tf.zeros_like(valid[:, :1]), linked], axis=1)
    return inside, continued, tf.logical_and(inside, tf.logical_not(continued))


def entity_ids(starts, dtype=tf.int32) -> tf.Tensor:
    """Each token's entity, numbered from 0 through the batch row by row (-1 before the first
    entity): the running count of ``starts`` (``entity_marks``). Meaningful where ``inside``."""
    flat = tf.cumsum(tf.cast(tf.reshape(starts, [-1]), dtype))
    return tf.reshape(flat, tf.shape(starts)) - 1


def crf_confidences(inputs, tag_indices, sequence_lengths, transition_params, continues, is_entity,
                    start_transitions=None, end_transitions=None) -> Tuple[tf.Tensor, tf.Tensor]:
    """How sure the CRF is of a tagging (usually the Viterbi path): ``(token, span)``, both
    ``[batch, time]`` probabilities, 0 past each sequence's end.

    - ``token[b, t] = P(y_t = tags_t | x)``, the marginal of the token's tag;
    - ``span[b, t]``, for a token inside an entity, is the probability that the entity's tokens carry
      exactly its tags *and* that the entity ends where it does: ``P(y_s..y_e = tags_s..tags_e,
      y_{e+1} does not continue it | x)``. For a token outside every entity it is the token's marginal.

    ``continues`` (``[tags, tags]`` booleans, ``tags.span_continuation``) says which tag after which
    extends an entity and ``is_entity`` (``[tags]``) which tags are not O: together they define the
    entities (as ``tags.spans`` does) and "ends where it does".
    Given ``x`` the CRF is a Markov chain, so a span's probability is its first tag's marginal times
    the conditionals ``P(y_t | y_{t-1}) = exp(A[i, j] + u_t(j) + beta_t(j) - beta_{t-1}(i))`` along it.
    """
    alphas, betas, log_norm, inputs, lengths, transitions = _forward_backward(
        inputs, sequence_lengths, transition_params, start_transitions, end_transitions)
    dtype = inputs.dtype
    tags = tf.cast(tag_indices, tf.int32)
    max_length = tf.shape(inputs)[1]
    betas = tf.transpose(betas, [1, 0, 2])  # [B, T, C]
    alphas = tf.transpose(alphas, [1, 0, 2])
    valid = _length_mask(lengths, max_length, tf.bool)
    continues = tf.convert_to_tensor(continues, tf.bool)

    token_log = tf.gather(alphas + betas, tags, batch_dims=2) - log_norm[:, None]  # [B, T]
    previous, following = tags[:, :-1], tags[:, 1:]
    beta_of_tag = tf.gather(betas, tags, batch_dims=2)  # [B, T]
    # log P(y_t = tags_t | y_{t-1} = tags_{t-1}) for t >= 1
    step_log = (tf.gather_nd(transitions, tf.stack([previous, following], axis=-1))
                + tf.gather(inputs[:, 1:], following, batch_dims=2) + beta_of_tag[:, 1:] - beta_of_tag[:, :-1])
    # log P(y_{t+1} does not continue tags_t's entity | y_t = tags_t) for t + 1 < length
    ahead = tf.gather(transitions, previous) + inputs[:, 1:] + betas[:, 1:]  # [B, T-1, C]: over y_{t+1}
    stops = tf.logical_not(tf.gather(continues, previous))  # [B, T-1, C]
    stop_log = tf.reduce_logsumexp(tf.where(stops, ahead, tf.cast(NEG_INF, dtype)), axis=2) - beta_of_tag[:, :-1]

    entity_tag, continued_from_left, starts = entity_marks(tags, valid, continues, is_entity)
    no_link = tf.zeros_like(tags[:, :1], dtype=tf.bool)
    continued_to_right = tf.concat([continued_from_left[:, 1:], no_link], axis=1)  # t + 1 extends t's entity
    zero = tf.zeros_like(token_log[:, :1])
    step_log = tf.concat([zero, step_log], axis=1)
    stop_log = tf.concat([stop_log, zero], axis=1)  # the last position: nothing follows
    stop_log = tf.where(tf.concat([valid[:, 1:], no_link], axis=1), stop_log, tf.zeros_like(stop_log))
    part = tf.where(continued_from_left, step_log, token_log) + tf.where(continued_to_right, tf.zeros_like(stop_log),
                                                                         stop_log)
    part = tf.where(entity_tag, part, tf.zeros_like(part))
    # sum the parts of each entity: number entities through the batch, add per entity, spread back
    entity_id = tf.reshape(entity_ids(starts), [-1])
    flat_parts = tf.reshape(part, [-1])
    count = tf.maximum(tf.reduce_max(entity_id) + 1, 1)
    safe_id = tf.maximum(entity_id, 0)
    flat_entity = tf.reshape(entity_tag, [-1])
    sums = tf.math.unsorted_segment_sum(tf.where(flat_entity, flat_parts, tf.zeros_like(flat_parts)), safe_id, count)
    span_log = tf.reshape(tf.gather(sums, safe_id), tf.shape(tags))
    span_log = tf.where(entity_tag, span_log, token_log)
    token = tf.where(valid, tf.exp(token_log), tf.zeros_like(token_log))
    span = tf.where(valid, tf.exp(span_log), tf.zeros_like(span_log))
    return token, span


def crf_constrained_log_norm(inputs, allowed, sequence_lengths, transition_params,
                             start_transitions=None, end_transitions=None) -> tf.Tensor:
    """The log of the summed scores of the tag sequences that use only ``allowed`` tags
    (``[batch, time, tags]`` booleans, at least one per real position), ``[batch]``.

    ``constrained - crf_log_norm`` is the log-probability of a partial annotation: with one allowed
    tag per position it is the log-likelihood of that sequence; with a set of tags at some
    positions it sums over them (the "fuzzy"/partial CRF of Tsuboi et al., 2008).
    """
    inputs = tf.convert_to_tensor(inputs)
    masked = tf.where(tf.cast(allowed, tf.bool), inputs, tf.cast(NEG_INF, inputs.dtype))
    return crf_log_norm(masked, sequence_lengths, transition_params, start_transitions, end_transitions)


def crf_projected_log_likelihood(inputs, tag_indices, kept, sequence_lengths, transition_params,
                                  start_transitions=None, end_transitions=None) -> tf.Tensor:
    """``log P(y agrees with tag_indices on the kept labels | x)``, ``[batch]``: the probability that
    every token whose tag is a kept label (``kept``, ``[tags]`` booleans) has that label, and every
    other token a label that is not kept. With every label kept it is the tagging's log-likelihood
    (``crf_log_likelihood``'s); with the labels of some types kept, the probability that those types'
    entities are exactly the tagging's, whatever the other types do. One constrained forward pass
    (``crf_constrained_log_norm``) and the log-norm."""
    inputs = tf.convert_to_tensor(inputs)
    tags = tf.cast(tag_indices, tf.int32)
    kept = tf.convert_to_tensor(kept, tf.bool)
    own = tf.one_hot(tags, tf.shape(inputs)[2], on_value=True, off_value=False, dtype=tf.bool)
    others = tf.broadcast_to(tf.logical_not(kept), tf.shape(own))
    allowed = tf.where(tf.gather(kept, tags)[..., None], own, others)
    constrained = crf_constrained_log_norm(inputs, allowed, sequence_lengths, transition_params,
                                           start_transitions, end_transitions)
    return constrained - crf_log_norm(inputs, sequence_lengths, transition_params, start_transitions, end_transitions)


def crf_decode(potentials, transition_params, sequence_length,
               start_transitions=None, end_transitions=None) -> Tuple[tf.Tensor, tf.Tensor]:
    """Viterbi: (best tags ``[batch, time]`` int32, their scores ``[batch]``). Padding decodes to 0."""
    potentials, sequence_length, transition_params, num_tags, max_length = _prepared(
        potentials, sequence_length, transition_params)
    dtype = potentials.dtype
    batch_size = tf.shape(potentials)[0]
    identity = tf.broadcast_to(tf.range(num_tags), [batch_size, num_tags])

    def forward(carry, elements):
        scores, _ = carry
        step_potentials, position = elements
        candidates = tf.expand_dims(scores, 2) + tf.expand_dims(transition_params, 0)
        best_previous = tf.argmax(candidates, axis=1, output_type=tf.int32)
        new_scores = tf.reduce_max(candidates, axis=1) + step_potentials
        running = tf.expand_dims(position < sequence_length, 1)
        return (tf.where(running, new_scores, scores), tf.where(running, best_previous, identity))

    first = potentials[:, 0, :] + _boundary(start_transitions, num_tags, dtype)
    steps = _with_inert_step(tf.transpose(potentials[:, 1:, :], [1, 0, 2]))
    positions = tf.range(1, max_length + 1)
    all_scores, backpointers = tf.scan(forward, (steps, positions), initializer=(first, identity))
    final_scores = all_scores[-1] + _boundary(end_transitions, num_tags, dtype)
    last_tag = tf.argmax(final_scores, axis=1, output_type=tf.int32)
    best_score = tf.reduce_max(final_scores, axis=1)

    def backward(tag, pointers):
        return tf.gather(pointers, tag, batch_dims=1)

    # backpointers[k] points from position k + 1 back to k; the last (inert) one is the identity, so
    # walking them backwards from the last tag yields the tag of every position, last one included.
    tags = tf.transpose(tf.scan(backward, backpointers, initializer=last_tag, reverse=True))
    mask = _length_mask(sequence_length, max_length, tf.bool)
    tags = tf.where(mask, tags, tf.zeros_like(tags))
    best_score = tf.where(sequence_length > 0, best_score, tf.zeros_like(best_score))
    return tags, best_score


def viterbi_decode(score: np.ndarray, transition_params: np.ndarray):
    """tfa's NumPy Viterbi for one sequence: (best tag list, its score)."""
    trellis = np.zeros_like(score)
    backpointers = np.zeros_like(score, dtype=np.int32)
    trellis[0] = score[0]
    for t in range(1, score.shape[0]):
        v = np.expand_dims(trellis[t - 1], 1) + transition_params
        trellis[t] = score[t] + np.max(v, 0)
        backpointers[t] = np.argmax(v, 0)
    viterbi = [int(np.argmax(trellis[-1]))]
    for bp in reversed(backpointers[1:]):
        viterbi.append(int(bp[viterbi[-1]]))
    viterbi.reverse()
    return viterbi, float(np.max(trellis[-1]))


@keras.saving.register_keras_serializable(package="neuroner_tl")
class CRF(keras.layers.Layer):
    """Holds the paper's ``(C+2) x (C+2)`` transition matrix; passes the emission scores through.

    Layout of the matrix: rows and columns ``0..C-1`` are the labels, ``C`` is *start* and ``C+1``
    is *end*. Row ``C`` scores the first label, column ``C+1`` the last one; moves into start and
    out of end never happen, so those entries are never used. Adding labels inserts rows and
    columns at ``C``, which keeps every label index stable (see ``surgery``).

    The layer also holds what its label set allows, as AllenNLP's ``ConditionalRandomField`` holds
    its constraint: ``allowed_transitions`` (a boolean matrix in the same layout,
    ``tags.allowed_transitions``; None: every move), used when a method is asked for
    ``constrained=True``, and the span rules of the confidences, ``continues`` (``[C, C]``,
    ``tags.span_continuation``) and ``is_entity`` (``[C]``). They are part of the layer's config,
    so a saved layer decodes as it did. Training's likelihood is never constrained (tfa's semantics).
    """

    def __init__(self, num_tags: int, allowed_transitions=None, continues=None, is_entity=None, **kwargs):
        super().__init__(**kwargs)
        if num_tags < 1:
            raise ValueError(f"num_tags must be at least 1, not {num_tags}")
        self.num_tags = num_tags
        self.allowed_transitions = _boolean_matrix(allowed_transitions, (num_tags + 2, num_tags + 2),
                                                   "allowed_transitions")
        self.continues = _boolean_matrix(continues, (num_tags, num_tags), "continues")
        self.is_entity = _boolean_matrix(is_entity, (num_tags,), "is_entity")
        self.supports_masking = True

    def build(self, input_shape):
        self.transitions = self.add_weight(
            name="transitions", shape=(self.num_tags + 2, self.num_tags + 2),
            initializer="glorot_uniform", trainable=True)
        # The confidences' temperature (``calibration``): a weight, so that it is saved with the others
        # and every compiled function reads its current value. Never trained by gradient.
        self.temperature = self.add_weight(name="temperature", shape=(), initializer="ones", trainable=False)
        super().build(input_shape)

    def call(self, potentials):
        return potentials

    def compute_output_shape(self, input_shape):
        return input_shape

    @property
    def label_transitions(self):
        return self.transitions[: self.num_tags, : self.num_tags]

    @property
    def start_transitions(self):
        return self.transitions[self.num_tags, : self.num_tags]

    @property
    def end_transitions(self):
        return self.transitions[: self.num_tags, self.num_tags + 1]

    def _allowed(self, constrained: bool):
        return self.allowed_transitions if constrained else None

    def _parts(self, constrained=False, calibrated=False):
        """(label transitions, start, end), with the moves the constraint forbids scored ``NEG_INF``
        when ``constrained``; ``calibrated``: divided by the temperature first."""
        matrix = self.transitions / self.temperature if calibrated else self.transitions
        allowed = self._allowed(constrained)
        if allowed is not None:
            matrix = tf.where(tf.constant(allowed), matrix, tf.cast(NEG_INF, matrix.dtype))
        count = self.num_tags
        return matrix[:count, :count], matrix[count, :count], matrix[:count, count + 1]

    def log_likelihood(self, potentials, tags, lengths):
        log_likelihood, _ = crf_log_likelihood(potentials, tags, lengths, *self._parts())
        return log_likelihood

    def calibrated(self, potentials):
        """The emission scores divided by the temperature: with ``_parts(calibrated=True)``, the
        calibrated CRF, ``P_T(y | x) ∝ exp(score(y) / T)``. Its most probable path is the raw CRF's,
        so decoding never uses it; forward–backward does, for the confidences."""
        return potentials / tf.cast(self.temperature, potentials.dtype)

    def _scaled(self, potentials, constrained, calibrated):
        """(emission scores, label transitions, start, end), divided by the temperature when ``calibrated``."""
        return (self.calibrated(potentials) if calibrated else potentials, *self._parts(constrained, calibrated))

    def log_norm(self, potentials, lengths, constrained=False, calibrated=False):
        potentials, *parts = self._scaled(potentials, constrained, calibrated)
        return crf_log_norm(potentials, lengths, *parts)

    def log_marginals(self, potentials, lengths, constrained=False, calibrated=False):
        potentials, *parts = self._scaled(potentials, constrained, calibrated)
        return crf_log_marginals(potentials, lengths, *parts)

    def constrained_log_norm(self, potentials, allowed_tags, lengths):
        """The log-norm of the paths through ``allowed_tags`` (``[B, T, C]``: a partial annotation)."""
        return crf_constrained_log_norm(potentials, allowed_tags, lengths, *self._parts())

    def projected_log_likelihood(self, potentials, tags, kept, lengths, constrained=False, calibrated=False):
        """``log P`` that the kept labels (``[C]`` booleans) are where ``tags`` puts them
        (``crf_projected_log_likelihood``), ``[B]``."""
        potentials, *parts = self._scaled(potentials, constrained, calibrated)
        return crf_projected_log_likelihood(potentials, tags, kept, lengths, *parts)

    def decode(self, potentials, lengths, constrained=False):
        transitions, start, end = self._parts(constrained)
        return crf_decode(potentials, transitions, lengths, start, end)

    def sequence_score(self, potentials, tags, lengths, constrained=False, calibrated=False):
        potentials, *parts = self._scaled(potentials, constrained, calibrated)
        return crf_sequence_score(potentials, tags, lengths, *parts)

    def confidences(self, potentials, tags, lengths, constrained=False, calibrated=False):
        """(token, span) confidences of ``tags`` (``crf_confidences``), by the layer's span rules."""
        if self.continues is None or self.is_entity is None:
            raise ValueError("this CRF layer has no span rules (continues, is_entity): it cannot score spans")
        potentials, transitions, start, end = self._scaled(potentials, constrained, calibrated)
        return crf_confidences(potentials, tags, lengths, transitions, self.continues, self.is_entity, start, end)

    def get_config(self):
        config = super().get_config()
        config.update({"num_tags": self.num_tags,
                       **{name: None if value is None else value.tolist()
                          for name, value in (("allowed_transitions", self.allowed_transitions),
                                              ("continues", self.continues), ("is_entity", self.is_entity))}})
        return config


def _boolean_matrix(value, shape, name: str) -> Optional[np.ndarray]:
    """``value`` (nested lists or an array) as a boolean array of ``shape``; None stays None."""
    if value is None:
        return None
    array = np.asarray(value, bool)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, not {array.shape}")
    return array

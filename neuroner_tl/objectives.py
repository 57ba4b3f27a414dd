"""What training minimises.

- The CRF negative log-likelihood of each sentence's labels: training, and the update methods
  ``finetune`` and ``self-training``.
- The negative log-probability of a *partial* annotation: a set of allowed labels per token,
  summed over by the constrained forward algorithm (Tsuboi et al., 2008). The update's gold
  target spans are single labels; the other tokens allow every non-target label, or, where the
  teacher is unsure, the labels it might have meant.
- Distillation (``distill``): the KL divergence from a teacher's per-token CRF marginals to the
  student's, both by forward–backward, so the CRF stays exact (after ExtendNER, Monaikul et al.,
  AAAI 2021, which distils per-token softmax outputs).
- L2-SP (Li et al., ICML 2018): ``weight * sum ||w - w_start||^2`` over every weight the update
  started from, pulling the network towards the source model rather than towards zero.
- EWC (Kirkpatrick et al., PNAS 2017): the same distance weighted entry by entry by the diagonal
  Fisher information of the source model.
- State distillation: ``weight * sum_t ||h_t - h*_t||^2``, the distance of the token BiLSTM's
  states to the teacher's.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Objective:
    partial: bool = False  # batches carry ``allowed``: maximise log P(annotation set)
    distill_weight: float = 0.0  # batches carry ``soft``: + weight * KL(teacher || student) per sentence
    l2sp_weight: float = 0.0  # + weight * squared distance to the weights the training started from
    ewc_weight: float = 0.0  # + weight * Fisher-weighted squared distance to the starting weights
    states_weight: float = 0.0  # batches carry ``states``: + weight * squared distance of the token states

    def __post_init__(self) -> None:
        if min(self.distill_weight, self.l2sp_weight, self.ewc_weight, self.states_weight) < 0:
            raise ValueError("objective weights must be at least 0")

    @property
    def uses_targets(self) -> bool:
        """Whether batches must carry ``allowed`` and ``soft`` arrays."""
        return self.partial or self.distill_weight > 0 or self.states_weight > 0

    @property
    def anchored(self) -> bool:
        """Whether the loss pulls the weights towards where they started (L2-SP, EWC)."""
        return self.l2sp_weight > 0 or self.ewc_weight > 0

    def anchor_loss(self, anchors) -> tf.Tensor:
        """L2-SP and EWC over ``anchors``: (variable, its starting value, its Fisher information or None)."""
        loss = tf.constant(0.0)
        if self.l2sp_weight > 0:
            loss += self.l2sp_weight * anchor_penalty([v for v, _, _ in anchors], [a for _, a, _ in anchors])
        if self.ewc_weight > 0:
            terms = [tf.reduce_sum(f * tf.square(v - a)) for v, a, f in anchors if f is not None]
            loss += self.ewc_weight * (tf.add_n(terms) if terms else 0.0)
        return loss

    def sentence_losses(self, crf, potentials, lengths, labels, allowed=None, soft=None, states=None,
                        teacher_states=None) -> tf.Tensor:
        """The loss of each sentence, ``[batch]`` (L2-SP and EWC are added once per batch, not here)."""
        if self.partial:
            losses = crf.log_norm(potentials, lengths) - crf.constrained_log_norm(potentials, allowed, lengths)
        else:
            losses = -crf.log_likelihood(potentials, labels, lengths)
        if self.distill_weight > 0:
            losses += self.distill_weight * distillation_loss(crf.log_marginals(potentials, lengths), soft)
        if self.states_weight > 0:
            mask = tf.sequence_mask(lengths, tf.shape(states)[1], states.dtype)[..., None]
            distance = tf.square(states - tf.cast(teacher_states, states.dtype)) * mask
            losses += self.states_weight * tf.reduce_sum(distance, axis=[1, 2])
        return losses


def distillation_loss(student_log_marginals: tf.Tensor, teacher: tf.Tensor) -> tf.Tensor:
    """Per sentence, the sum over tokens of KL(teacher || student); tokens whose teacher row is all
    zeros (gold target tokens, padding) add nothing. ``[batch]``."""
    teacher = tf.cast(teacher, student_log_marginals.dtype)
    kl = tf.math.xlogy(teacher, teacher) - teacher * student_log_marginals
    return tf.reduce_sum(kl, axis=[1, 2])


def anchor_penalty(variables: Sequence[tf.Variable], anchors: Sequence[Optional[tf.Variable]]) -> tf.Tensor:
    """The squared distance of ``variables`` to ``anchors`` (None: that variable is not anchored)."""
    terms = [tf.reduce_sum(tf.square(v - a)) for v, a in zip(variables, anchors) if a is not None]
    return tf.add_n(terms) if terms else tf.constant(0.0)

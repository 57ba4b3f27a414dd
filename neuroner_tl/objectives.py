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

    def __post_init__(self) -> None:
        if self.distill_weight < 0 or self.l2sp_weight < 0:
            raise ValueError("objective weights must be at least 0")

    @property
    def uses_targets(self) -> bool:
        """Whether batches must carry ``allowed`` and ``soft`` arrays."""
        return self.partial or self.distill_weight > 0

    def sentence_losses(self, crf, potentials, lengths, labels, allowed=None, soft=None) -> tf.Tensor:
        """The loss of each sentence, ``[batch]`` (L2-SP is added once per batch, not here)."""
        if self.partial:
            losses = crf.log_norm(potentials, lengths) - crf.constrained_log_norm(potentials, allowed, lengths)
        else:
            losses = -crf.log_likelihood(potentials, labels, lengths)
        if self.distill_weight > 0:
            losses += self.distill_weight * distillation_loss(crf.log_marginals(potentials, lengths), soft)
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

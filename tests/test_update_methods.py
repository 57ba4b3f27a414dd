"""The comparison methods of an update (EWC, state distillation, CPFD's thresholds) and the dev split
and budget of an update whose dev data are too sparse to select on."""

import numpy as np
import pytest
import tensorflow as tf

from neuroner_tl import api
from neuroner_tl.batching import Encoded
from neuroner_tl.corpus import Corpus, Sentence
from neuroner_tl.config import Hyperparameters
from neuroner_tl.corpora import split_off_dev
from neuroner_tl.datasets import generate_corpus
from neuroner_tl.objectives import Objective
from neuroner_tl.transfer import (UNSURE_ID, UpdateSettings, confident_pseudo_labels, entropy, fixed_budget_epochs,
                                  widened_importance, with_update_targets)

from conftest import SMALL_UPDATE_NETWORK as SMALL
from conftest import keep_types as only


def test_cpfd_keeps_the_teacher_spans_at_most_as_uncertain_as_their_types_median():
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    sure, unsure = [0.05, 0.9, 0.05, 0.0, 0.0], [0.3, 0.4, 0.1, 0.1, 0.1]
    items = [Encoded(np.array([5, 6]), [[1], [2]], labels=np.array([1, 0])) for _ in range(3)]
    marginals = [np.array([sure, [1, 0, 0, 0, 0]], np.float32), np.array([unsure, [1, 0, 0, 0, 0]], np.float32),
                 np.array([sure, [1, 0, 0, 0, 0]], np.float32)]
    result = confident_pseudo_labels(items, marginals, labels, ["ORG"])
    assert [r.labels.tolist() for r in result] == [[1, 0], [UNSURE_ID, 0], [1, 0]]
    assert items[1].labels.tolist() == [1, 0], "the input is not modified"
    (targets,) = with_update_targets(result[1:2], UpdateSettings(method="cpfd"), labels, ["ORG"], marginals[1:2])
    assert targets.labels.tolist() == [0, 0]
    assert targets.allowed.tolist() == [[True, True, True, False, False], [True, False, False, False, False]]
    assert entropy(np.array([[1.0, 0.0]]))[0] == 0.0


def test_ewc_weights_each_entry_by_its_fisher_information():
    variable = tf.Variable([1.0, 2.0, 3.0])
    anchor = tf.Variable([0.0, 0.0, 0.0])
    fisher = tf.constant([0.0, 1.0, 2.0])
    loss = Objective(ewc_weight=0.5).anchor_loss([(variable, anchor, fisher)])
    assert float(loss) == pytest.approx(0.5 * (1.0 * 4.0 + 2.0 * 9.0))
    both = Objective(ewc_weight=0.5, l2sp_weight=0.1).anchor_loss([(variable, anchor, fisher)])
    assert float(both) == pytest.approx(float(loss) + 0.1 * 14.0)
    assert Objective(ewc_weight=1.0).anchored and not Objective().anchored


def test_fisher_information_is_laid_out_where_surgery_put_each_weight():
    class Weight:
        def __init__(self, path, shape):
            self.path, self.shape = path, shape

    class Tagger:
        class network:
            @staticmethod
            def model_weights():
                return [Weight("crf/transitions", (5, 5)), Weight("emissions/kernel", (4, 3))]

    old = np.arange(16, dtype=np.float32).reshape(4, 4)  # 2 labels + start + end
    result = widened_importance({"crf/transitions": old, "emissions/kernel": np.ones((4, 2), np.float32)}, Tagger)
    assert result["crf/transitions"][3, 4] == old[2, 3]  # start -> end moved with the new label
    assert result["crf/transitions"][2].sum() == 0 and result["crf/transitions"][:, 2].sum() == 0
    assert result["emissions/kernel"][:, 2].sum() == 0 and result["emissions/kernel"][:, :2].sum() == 8


@pytest.fixture(scope="module")
def source_without_address():
    """A source trained for one epoch on domain A without Address (the methods only read it)."""
    return api.train(generate_corpus("A", 80, seed=71, exclude_types=["Address"]), None,
                     dev=generate_corpus("A", 20, seed=72, exclude_types=["Address"]),
                     hp=Hyperparameters(max_epochs=1, **SMALL), verbose=False).tagger


@pytest.mark.parametrize("method", ["ewc", "distill-states", "cpfd"])
def test_each_comparison_method_runs_an_update(source_without_address, method):
    source = source_without_address
    target = only(generate_corpus("A", 60, seed=73), {"Address"})
    result = api.update(source, target, ["Address"], None, method=method, max_epochs=2, patience_steps=0,
                        verbose=False)
    assert "Address" not in source.entity_types, "a new type, which the source cannot score"
    assert result.settings.method == method and "Address" in result.tagger.entity_types
    assert len(result.history) == 2 and all(np.isfinite(r["loss"]) for r in result.history)


def sentences_with(count: int, holding: set):
    return Corpus([Sentence([f"w{i}"], ["B-X" if i in holding else "O"]) for i in range(count)], "IOB2")


def test_a_stratified_dev_split_gets_its_share_of_a_rare_type():
    corpus = sentences_with(200, {3, 50, 120, 190})
    train, dev = split_off_dev(corpus, 0.1, seed=1, stratify=["X"])
    held = sum(s.labels == ["B-X"] for s in dev.sentences)
    assert held == 1 and len(dev) == 1 + 20  # round(0.4) is 0, but a rare type gets at least one
    assert len(train) + len(dev) == 200


def test_without_stratification_the_split_is_the_earlier_one():
    corpus = sentences_with(50, {7})
    order = np.random.default_rng(3).permutation(50)
    expected = sorted(order[:5].tolist())
    _, dev = split_off_dev(corpus, 0.1, seed=3)
    assert [int(s.tokens[0][1:]) for s in dev.sentences] == expected


def test_the_fixed_budget_is_about_its_steps_within_bounds():
    hp = Hyperparameters(batch_size=32, max_epochs=100)
    assert fixed_budget_epochs(900, hp) == 52  # 29 steps an epoch
    assert fixed_budget_epochs(180, hp) == 100  # capped
    assert fixed_budget_epochs(10 ** 6, hp) == 5  # at least 5 epochs

"""The update's pieces (targets, objectives, selection, word rows, options) and its promise: after
an update the model finds the new type and still finds the old ones where the source found them."""

import json

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from neuroner_tl import api, tags
from neuroner_tl.batching import Encoded, pad
from neuroner_tl.cli import cli
from neuroner_tl.conll import write_conll
from neuroner_tl.config import Hyperparameters
from neuroner_tl.datasets import generate_corpus
from neuroner_tl.errors import NeuronerError
from neuroner_tl.evaluation import evaluate
from neuroner_tl.model import CHAR_INPUT, WORD_INPUT
from neuroner_tl.objectives import Objective, distillation_loss
from neuroner_tl.surgery import WORDS, ModelSurgeon
from neuroner_tl.training import TrainingModel
from neuroner_tl.transfer import (UpdateSettings, split_update_options, teacher_targets, update_scores,
                                  with_update_targets)
from neuroner_tl.vocabulary import UNK_ID

from conftest import SMALL_UPDATE_NETWORK as SMALL
from conftest import keep_types as only


# teacher targets and partial annotations ----------------------------------------------------------
def test_teacher_targets_keep_old_indices_and_move_ruled_out_mass_to_o():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]  # ORG added by surgery
    teacher = np.array([[0.5, 0.2, 0.0, 0.3, 0.0], [0.1, 0.0, 0.6, 0.0, 0.3]], np.float32)  # over the first 5
    soft = teacher_targets(teacher, len(labels), labels.index("O"), np.array([3, 4]))  # LOC is a gold type
    np.testing.assert_allclose(soft, [[0.8, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0], [0.4, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0]])


def test_distill_targets_pin_gold_tokens_and_open_the_others():
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    item = Encoded(np.array([5, 6, 7]), [[1], [2], [3]], labels=np.array([0, 3, 4]))  # "x ACME Corp", ORG gold
    teacher = [np.array([[0.7, 0.3, 0.0], [0.9, 0.1, 0.0], [0.2, 0.0, 0.8]], np.float32)]
    (result,) = with_update_targets([item], UpdateSettings(method="distill"), labels, ["ORG"], teacher)
    assert result.allowed.tolist() == [[True, True, True, False, False],  # anything but ORG
                                       [False, False, False, True, False], [False, False, False, False, True]]
    np.testing.assert_allclose(result.soft[0], [0.7, 0.3, 0.0, 0.0, 0.0])
    assert not result.soft[1:].any(), "gold tokens are learnt from the annotation, not distilled"


def test_self_training_leaves_unsure_teacher_tokens_open():
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    item = Encoded(np.array([5, 6]), [[1], [2]], labels=np.array([1, 0]))  # pseudo-label B-PER, then O
    teacher = [np.array([[0.4, 0.35, 0.25], [0.95, 0.05, 0.0]], np.float32)]
    settings = UpdateSettings(method="self-training", min_confidence=0.5)
    (result,) = with_update_targets([item], settings, labels, ["ORG"], teacher)
    assert result.allowed.tolist() == [[True, True, True, False, False], [True, False, False, False, False]]
    assert with_update_targets([item], UpdateSettings(method="self-training"), labels, ["ORG"], teacher)[0] is item


def test_distillation_loss_is_zero_when_the_student_is_the_teacher():
    rng = np.random.default_rng(0)
    potentials = tf.constant(rng.normal(size=(2, 5, 4)).astype(np.float32))
    transitions = tf.constant(rng.normal(size=(4, 4)).astype(np.float32))
    from neuroner_tl.crf import crf_log_marginals

    lengths = tf.constant([5, 3])
    log_marginals = crf_log_marginals(potentials, lengths, transitions)
    own = distillation_loss(log_marginals, tf.exp(log_marginals) * tf.sequence_mask(lengths, 5, tf.float32)[..., None])
    other = distillation_loss(crf_log_marginals(potentials * 0.3, lengths, transitions), tf.exp(log_marginals))
    assert np.allclose(own.numpy(), 0.0, atol=1e-5) and np.all(other.numpy() > 1e-3)


def test_settings_choose_their_objective_and_reject_bad_values():
    assert UpdateSettings(method="finetune").objective() == Objective()
    assert UpdateSettings(method="distill", distill_weight=2.0).objective() == Objective(partial=True, distill_weight=2.0)
    assert UpdateSettings(method="l2-sp", l2sp_weight=0.1).objective().l2sp_weight == 0.1
    with pytest.raises(NeuronerError, match="method must be one of"):
        UpdateSettings(method="magic")
    with pytest.raises(NeuronerError, match=r"min_confidence must be in \[0.0, 1.0\]"):
        UpdateSettings(min_confidence=1.5)
    with pytest.raises(NeuronerError, match="token_lstm_units is fixed by the source model"):
        split_update_options({"token_lstm_units": 64})
    assert split_update_options({"distill_weight": "2", "patience": 3}) == ({"distill_weight": "2"}, {"patience": 3})


# selection -------------------------------------------------------------------------------------------
def test_update_scores_judge_gold_types_and_retention_apart():
    gold = [["B-ORG", "I-ORG", "O", "B-PER"], ["B-LOC", "O"]]  # ORG is gold; PER and LOC are the teacher's
    predicted = [["B-ORG", "I-ORG", "O", "O"], ["B-LOC", "O"]]  # ORG all found; PER forgotten, LOC kept
    scored = update_scores(evaluate(gold, predicted), ["ORG"], retention_weight=0.5)
    assert scored.details["target_f1"] == pytest.approx(100.0)
    assert scored.details["retention_f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5 * 100)
    assert scored.score == pytest.approx((100.0 + scored.details["retention_f1"]) / 2)
    nothing_to_keep = update_scores(evaluate([["B-ORG"]], [["B-ORG"]]), ["ORG"], 0.5)
    assert nothing_to_keep.details["retention_f1"] == 100.0  # nothing to find, nothing found


# word rows -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_source():
    corpus = generate_corpus("A", 60, seed=41)
    return api.train(corpus, None, dev=generate_corpus("A", 20, seed=42),
                     hp=Hyperparameters(max_epochs=1, **SMALL), verbose=False).tagger


@pytest.mark.parametrize("init", ["paper", "preserve"])
def test_a_new_word_starts_from_the_row_the_source_used(small_source, init):
    source = small_source
    known = next(w for w in source.words.entries[2:]
                 if w.isalpha() and w.islower() and len(w) > 3 and w.capitalize() not in source.words)
    capitalised = known.capitalize()
    assert capitalised not in source.words and source.encoder.word_id(capitalised) == source.words.id(known)

    class Vectors:  # the smallest gensim-like object: one vector, for a word the source never saw
        vector_size = source.word_dim

        def has_index_for(self, word):
            return word == "zzzvector"

        def __getitem__(self, word):
            return np.full(self.vector_size, 0.125, np.float32)

    tagger = ModelSurgeon(source, 1).operate(new_words=[capitalised, "zzzvector", "zzzunknown"], vectors=Vectors(),
                                             init=init)
    old = source.network.get_layer("word_embedding").embeddings.numpy()
    new = {v.path: v.numpy() for v in tagger.network.trainable_variables}[WORDS]
    np.testing.assert_array_equal(new[tagger.words.id(capitalised)], old[source.words.id(known)])
    np.testing.assert_array_equal(new[tagger.words.id("zzzvector")], np.full(source.word_dim, 0.125))
    unknown_row = new[tagger.words.id("zzzunknown")]
    assert np.array_equal(unknown_row, old[UNK_ID]) == (init == "preserve")


def test_init_preserve_goes_through_a_full_update(small_source):
    """``api.update(init="preserve")``: the surgeon gets it and the record keeps it. With the
    embeddings frozen, a new word the source could only read as UNK keeps the UNK row through the
    update (preserve: nothing changes for it), where the paper's init draws it a row of its own."""
    source = small_source
    target = only(generate_corpus("B", 60, seed=63), {"Phone"})
    rows, records = {}, {}
    for init in ("preserve", "paper"):
        result = api.update(source, target, ["Phone"], None, method="distill", init=init, freeze_embeddings=True,
                            max_epochs=1, patience_steps=0, verbose=False)
        records[init] = result.tagger.provenance["updates"][-1]["settings"]["init"]
        rows[init] = (result.tagger, {v.path: v.numpy() for v in result.tagger.network.trainable_variables}[WORDS])
    assert records == {"preserve": "preserve", "paper": "paper"}
    tagger = rows["preserve"][0]
    unknown = [w for w in tagger.words.entries[len(source.words):]
               if source.encoder.word_id(w) == UNK_ID]
    assert unknown, "the target data bring words the source reads as UNK"
    old = source.network.get_layer("word_embedding").embeddings.numpy()
    for word in unknown:
        np.testing.assert_array_equal(rows["preserve"][1][tagger.words.id(word)], old[UNK_ID], err_msg=word)
        assert not np.array_equal(rows["paper"][1][rows["paper"][0].words.id(word)], old[UNK_ID]), word


# the promise ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def without_address(tmp_path_factory):
    """A source model trained on domain A with Address relabelled O, and its folder."""
    folder = tmp_path_factory.mktemp("promise") / "source"
    train = generate_corpus("A", 400, seed=51, exclude_types=["Address"])
    dev = generate_corpus("A", 60, seed=52, exclude_types=["Address"])
    hp = Hyperparameters(max_epochs=15, patience=15, **SMALL)
    return api.train(train, folder, dev=dev, hp=hp, verbose=False)


def agreement_with_source(source, updated, sentences, types):
    """Of the spans of ``types`` the source found, the share the updated model finds too."""
    before = [set(x for x in tags.spans(t) if x.type in types) for t in source.predict(sentences, scheme="IOB2")]
    after = [set(tags.spans(t)) for t in updated.predict(sentences, scheme="IOB2")]
    found = sum(len(b) for b in before)
    return sum(len(b & a) for b, a in zip(before, after)) / found


def test_update_learns_the_new_type_and_keeps_the_old_ones(without_address, tmp_path):
    source = without_address.tagger
    target = only(generate_corpus("A", 160, seed=53), {"Address"})
    result = api.update(without_address.folder, target, ["Address"], tmp_path / "updated", max_epochs=40,
                        patience_steps=100, test=generate_corpus("A", 80, seed=54), verbose=False)
    updated = api.as_tagger(tmp_path / "updated")
    held_out = generate_corpus("A", 80, seed=54)
    old_types = [t for t in source.entity_types]
    assert "Address" not in old_types and "Address" in updated.entity_types
    report = updated.evaluate(held_out)[0]
    assert report.by_type["Address"].f1 > 60.0, report.format_table()
    assert agreement_with_source(source, updated, [s.tokens for s in held_out.sentences], old_types) > 0.9
    assert result.test_report.by_type["Address"].f1 == pytest.approx(report.by_type["Address"].f1)
    record = updated.provenance["updates"][-1]
    # auto: a new type is learnt by a column of its own
    assert record["settings"]["method"] == "column" and record["dev"]["target_f1"] == result.dev_scores["target_f1"]
    assert json.loads((tmp_path / "updated" / "evaluation.json").read_text())["test"]["overall"]["f1"] > 0


def test_finetune_alone_forgets_more_than_distill(without_address):
    """The forgetting floor: without pseudo-labels or distillation, the old types fade."""
    source = without_address.tagger
    target = only(generate_corpus("A", 160, seed=53), {"Address"})
    held_out = [s.tokens for s in generate_corpus("A", 80, seed=54).sentences]
    kept = {}
    for method in ("finetune", "distill"):
        updated = api.update(source, target, ["Address"], None, method=method, max_epochs=20, patience_steps=0,
                             verbose=False).tagger
        kept[method] = agreement_with_source(source, updated, held_out, source.entity_types)
    assert kept["distill"] > kept["finetune"] + 0.05, kept


# the command line --------------------------------------------------------------------------------------
def test_annotate_then_update_with_the_corrected_file(without_address, tmp_path):
    target = tmp_path / "target.conll"
    write_conll(target, only(generate_corpus("A", 60, seed=55), {"Address"}).sentences)
    source = str(without_address.folder)
    out = CliRunner().invoke(cli, ["annotate", source, str(target), "-e", "Address", "-o", str(tmp_path / "a.conll")])
    assert out.exit_code == 0, out.output
    annotated = api.load_corpus(tmp_path / "a.conll")
    assert "Address" in annotated.entity_types() and len(annotated.entity_types()) > 1
    config = tmp_path / "update.json"
    config.write_text(json.dumps({"method": "self-training", "max_epochs": 2}))
    out = CliRunner().invoke(cli, ["update", "-m", source, "-t", str(tmp_path / "a.conll"), "-e", "Address",
                                   "--annotated", "--config", str(config), "--set", "patience_steps=0",
                                   "--test", str(target), "-o", str(tmp_path / "m")])
    assert out.exit_code == 0, out.output
    assert "test set, per entity type" in out.output and "retention F1" in out.output
    update = api.info(tmp_path / "m")["provenance"]["updates"][-1]
    assert update["settings"]["method"] == "self-training" and update["epochs"] == 2
    assert set(update["gold_types"]) == set(annotated.entity_types())
    shown = CliRunner().invoke(cli, ["info", str(tmp_path / "m")]).output
    assert "method self-training; best epoch" in shown and "retention F1" in shown and "dev F1" not in shown
    out = CliRunner().invoke(cli, ["update", "-m", source, "-t", str(target), "-e", "Address", "--set",
                                   "char_lstm_units=3", "-o", str(tmp_path / "n")])
    assert out.exit_code == 2 and "char_lstm_units is fixed by the source model" in out.output


def test_frozen_layers_stay_as_the_source_and_l2sp_combines_with_any_method(small_source):
    settings = UpdateSettings(method="distill", freeze_embeddings=True, l2sp_weight=0.05)
    assert settings.objective().l2sp_weight == 0.05 and UpdateSettings(method="l2-sp").l2sp_weight == 0.01
    assert UpdateSettings(method="distill").l2sp_weight == 0.0
    target = only(generate_corpus("A", 40, seed=61), {"Phone"})
    before = {v.path: v.numpy() for v in small_source.network.trainable_variables}

    def update(l2sp_weight):
        tagger = api.update(small_source, target, ["Phone"], None, max_epochs=2, patience_steps=0, verbose=False,
                            method="distill", freeze_embeddings=True, l2sp_weight=l2sp_weight).tagger
        return {v.path: v.numpy() for v in tagger.network.trainable_variables}

    after = update(0.05)
    for path, value in after.items():
        old = before[path][: value.shape[0]] if path.endswith("embeddings") else before[path]
        if path.startswith(("word_embedding/", "char_encoder/")):
            np.testing.assert_array_equal(value[: len(old)], old, err_msg=path)
        elif path.startswith("token_bilstm/"):
            assert not np.array_equal(value, old), f"{path} should have been trained"

    # L2-SP pulls the trained weights towards the source's: with it distill moves them less
    def distance(weights):
        return sum(float(np.sum((weights[p] - before[p]) ** 2)) for p in weights if p.startswith("token_bilstm/"))

    without = update(0.0)
    assert distance(after) < distance(without), (distance(after), distance(without))


def test_the_l2sp_penalty_is_the_squared_distance_to_the_anchors_and_is_in_the_training_loss(small_source):
    from neuroner_tl.objectives import anchor_penalty

    first, second = tf.Variable([1.0, -2.0]), tf.Variable([[3.0, 0.5]])
    anchors = [tf.constant([0.0, 1.0]), tf.constant([[1.0, 0.5]])]
    assert float(anchor_penalty([first, second], anchors)) == pytest.approx(1.0 + 9.0 + 4.0 + 0.0)
    assert float(anchor_penalty([first, second], [anchors[0], None])) == pytest.approx(10.0), "None: not anchored"
    assert float(anchor_penalty([], [])) == 0.0
    loss = Objective(l2sp_weight=0.1).anchor_loss([(first, anchors[0], None), (second, anchors[1], None)])
    assert float(loss) == pytest.approx(0.1 * 14.0)
    with tf.GradientTape() as tape:
        penalty = anchor_penalty([first], [anchors[0]])
    np.testing.assert_allclose(tape.gradient(penalty, first).numpy(), [2.0, -6.0])  # 2 (w - anchor)

    # in the training model's compute_loss: the CRF loss plus l2sp_weight times the distance of every anchored weight
    network = small_source.network
    items = small_source.encode_corpus(generate_corpus("A", 4, seed=62))
    batch = pad(items, list(range(len(items))))
    inputs = {WORD_INPUT: batch.words, CHAR_INPUT: batch.chars}
    targets = batch.targets()
    plain_model = TrainingModel(network)
    outputs = plain_model(inputs, training=False)
    plain = float(plain_model.compute_loss(inputs, targets, outputs, training=False))
    variables = network.trainable_variables
    shifted = [tf.constant(v.numpy() + 0.01) for v in variables]  # every anchor 0.01 away
    anchored_model = TrainingModel(network, Objective(l2sp_weight=0.5), [(v, a, None) for v, a in zip(variables, shifted)])
    anchored = float(anchored_model.compute_loss(inputs, targets, outputs, training=False))
    count = sum(int(np.prod(v.shape)) for v in variables)
    assert anchored - plain == pytest.approx(0.5 * count * 0.01 ** 2, rel=1e-3)


def test_an_update_trains_on_its_own_budget_not_the_sources(small_source):
    """The source's max_epochs/patience were set for its own data; an update on a few hundred
    sentences needs the package defaults (or what it is given)."""
    assert small_source.hp.max_epochs == 1
    target = only(generate_corpus("A", 40, seed=61), {"Phone"})
    result = api.update(small_source, target, ["Phone"], None, patience=1, patience_steps=0, verbose=False)
    record = result.tagger.provenance["updates"][-1]["hyperparameters"]
    assert record["max_epochs"] == Hyperparameters().max_epochs and record["patience"] == 1
    assert len(result.history) > small_source.hp.max_epochs


def test_selection_averages_the_last_epochs_so_one_lucky_epoch_is_not_kept():
    from neuroner_tl.transfer import update_selection

    reports = iter([evaluate([["B-ORG"], ["B-ORG"]], predicted) for predicted in
                    ([["O"], ["O"]], [["B-ORG"], ["B-ORG"]], [["O"], ["O"]], [["B-ORG"], ["O"]])])

    class Stub:  # a tagger whose dev reports are given: target F1 0, 100, 0, 66.7
        def encode_corpus(self, corpus):
            return []

        def evaluate(self, corpus, encoded=None):
            return next(reports), None

    select = update_selection(None, ["ORG"], retention_weight=0.5, window=3)
    scores = [select(Stub()) for _ in range(4)]
    assert [round(s.details["epoch_score"], 2) for s in scores] == [50.0, 100.0, 50.0, 83.33]
    assert [round(s.score, 2) for s in scores] == [50.0, 75.0, 66.67, 77.78]  # means of the last three
    # the chance movement of that mean: the epoch-to-epoch spread over sqrt 2, over sqrt 3 (the window)
    differences = np.diff([50.0, 100.0, 50.0, 250 / 3])
    assert scores[-1].noise == pytest.approx(np.std(differences) / np.sqrt(2) / np.sqrt(3))
    assert scores[2].noise == 0.0, "fewer than 4 epochs cannot tell noise"

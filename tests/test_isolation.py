"""The ``isolate`` update method: the source network is frozen and the target types are learnt by an
adapter of their own, so the other types' emission scores and the transitions among the other labels
stay bit for bit the source's, whatever the input (tasks i, ii and iii, chained, saved and reloaded)."""

import numpy as np
import pytest

from neuroner_tl import api, tags
from neuroner_tl.batching import pad
from neuroner_tl.config import Hyperparameters
from neuroner_tl.datasets import generate_corpus
from neuroner_tl.model import CHAR_INPUT, WORD_INPUT
from neuroner_tl.surgery import ModelSurgeon, crf_index_map
from neuroner_tl.transfer import UpdateSettings, isolated_training
from neuroner_tl.batching import Encoded

from conftest import SMALL_UPDATE_NETWORK, keep_types

SMALL = SMALL_UPDATE_NETWORK
only = keep_types


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small model trained without the Address type, and its folder."""
    folder = tmp_path_factory.mktemp("isolation") / "source"
    train = generate_corpus("A", 300, seed=61, exclude_types=["Address"])
    hp = Hyperparameters(max_epochs=8, patience=8, **SMALL)
    api.train(train, folder, dev=generate_corpus("A", 40, seed=62, exclude_types=["Address"]), hp=hp, verbose=False)
    return folder


def random_batch(tagger, rng, sentences=6, length=9):
    """Random word and character ids over the whole vocabulary (padding included at the ends)."""
    items = []
    for _ in range(sentences):
        size = int(rng.integers(1, length + 1))
        words = rng.integers(1, len(tagger.words), size).astype(np.int32)
        chars = [list(rng.integers(1, len(tagger.chars), int(rng.integers(1, 6)))) for _ in range(size)]
        items.append(Encoded(words, chars))
    batch = pad(items, list(range(len(items))))
    return {WORD_INPUT: batch.words, CHAR_INPUT: batch.chars}


def emissions(tagger, inputs):
    return tagger.network.scores(inputs, training=False)[0].numpy()


def old_labels_untouched(source, updated, owned_types, seed=0):
    """Every label of the source but those of ``owned_types``: emission scores on random inputs and
    the transitions among them (start and end included) equal bit for bit."""
    keep = [i for i, label in enumerate(source.labels) if tags.split_tag(label)[1] not in set(owned_types)]
    assert updated.labels[: len(source.labels)] == source.labels
    rng = np.random.default_rng(seed)
    for _ in range(3):
        inputs = random_batch(source, rng)
        np.testing.assert_array_equal(emissions(updated, inputs)[..., keep], emissions(source, inputs)[..., keep])
    before = source.crf.transitions.numpy()
    after = updated.crf.transitions.numpy()
    index = crf_index_map(len(source.labels), len(updated.labels))
    rows = keep + [len(source.labels), len(source.labels) + 1]
    np.testing.assert_array_equal(after[np.ix_(index[rows], index[rows])], before[np.ix_(rows, rows)])


def test_a_new_type_leaves_every_old_score_and_transition_bit_for_bit(source, tmp_path):
    target = only(generate_corpus("A", 120, seed=63), {"Address"})
    result = api.update(source, target, ["Address"], tmp_path / "updated", method="isolate", max_epochs=15,
                        patience_steps=40, learning_rate=0.005, verbose=False)
    src = api.as_tagger(source)
    reloaded = api.as_tagger(tmp_path / "updated")
    assert "Address" in reloaded.entity_types and reloaded.heads["adapters"][0]["units"] == 32
    old_labels_untouched(src, result.tagger, ["Address"])
    old_labels_untouched(src, reloaded, ["Address"], seed=1)
    # the new weights did train: the adapter moved from its starting point and the tagger finds Address
    assert np.abs(reloaded.network.get_layer("adapter_0").head.kernel.numpy()[src.hp.token_lstm_units:]).sum() > 0
    report = reloaded.evaluate(generate_corpus("A", 60, seed=64))[0]
    assert report.by_type["Address"].predicted > 0


def test_a_known_type_and_a_forgotten_type_leave_the_others_untouched(source):
    src = api.as_tagger(source)
    kind = "Person"
    target = only(generate_corpus("A", 120, seed=65), {kind})
    for forget in (False, True):
        result = api.update(src, target, [kind], None, method="isolate", forget=forget, max_epochs=3,
                            patience_steps=10, verbose=False)
        old_labels_untouched(src, result.tagger, [kind], seed=int(forget))
        owned = [i for i, label in enumerate(src.labels) if label.endswith(kind)]
        base = result.tagger.heads["base_columns"]
        assert all((base[i] < 0) == forget for i in owned), "forget: the adapter replaces the rows; else adds to them"


def test_a_second_isolated_update_freezes_the_first_adapter(source):
    src = api.as_tagger(source)
    first = api.update(src, only(generate_corpus("A", 120, seed=63), {"Address"}), ["Address"], None,
                       method="isolate", max_epochs=2, patience_steps=5, verbose=False).tagger
    second = api.update(first, only(generate_corpus("A", 120, seed=66), {"Phone"}), ["Phone"], None,
                        method="isolate", max_epochs=2, patience_steps=5, verbose=False).tagger
    assert [a["labels"] for a in second.heads["adapters"]] == [
        [first.labels.index("B-Address"), first.labels.index("I-Address")],
        [second.labels.index("B-Phone"), second.labels.index("I-Phone")]]
    old_labels_untouched(first, second, ["Phone"])
    frozen, masks = isolated_training(second, ["Phone"])
    assert "adapter_0" in frozen and "adapter_1" not in frozen and "emissions" in frozen
    # a distill update after isolated ones keeps the layout and widens the base layer
    third = ModelSurgeon(second, 1).operate(new_types=["Account"])
    assert third.heads["adapters"] == second.heads["adapters"]
    assert third.heads["base_columns"][-2:] == [second.heads["base_width"], second.heads["base_width"] + 1]
    inputs = random_batch(second, np.random.default_rng(3))
    np.testing.assert_array_equal(emissions(third, inputs)[..., : len(second.labels)], emissions(second, inputs))


def source_inputs(source, updated, inputs):
    """``inputs`` of the updated model as the source reads them: a word the update added is UNK."""
    words = inputs[WORD_INPUT]
    return {**inputs, WORD_INPUT: np.where(words < len(source.words), words, 1).astype(np.int32)}


def test_a_column_learns_new_words_and_leaves_every_old_score_bit_for_bit(source, tmp_path):
    src = api.as_tagger(source)
    target = only(generate_corpus("B", 120, seed=67), {"Address"})
    result = api.update(source, target, ["Address"], tmp_path / "column", method="column", max_epochs=4,
                        patience_steps=10, verbose=False)
    updated = api.as_tagger(tmp_path / "column")
    spec = updated.heads["adapters"][0]
    assert spec["kind"] == "column" and spec["units"] == src.hp.token_lstm_units
    assert len(updated.words) > len(src.words) == updated.heads["base_words"] == spec["words"] - (
        len(updated.words) - len(src.words)), "the column's vocabulary holds the target's new words"
    assert updated.network.word_embedding.embeddings.shape[0] == len(src.words), "the source keeps its rows"
    old_labels_untouched(src, result.tagger, ["Address"])
    old_labels_untouched(src, updated, ["Address"], seed=1)
    # a word only the column knows reaches the frozen source as UNK: old scores as the source gives them
    rng = np.random.default_rng(5)
    keep = [i for i, label in enumerate(src.labels) if "Address" not in label]
    inputs = random_batch(updated, rng)
    assert (inputs[WORD_INPUT] >= len(src.words)).any()
    np.testing.assert_array_equal(emissions(updated, inputs)[..., keep],
                                  emissions(src, source_inputs(src, updated, inputs))[..., keep])
    # the column trained: its word rows, BiLSTM and head moved from the source's copy
    column = updated.network.get_layer("adapter_0")
    assert not np.array_equal(column.bilstm.forward_lstm.cell.kernel.numpy(),
                              src.network.token_bilstm.forward_lstm.cell.kernel.numpy())
    new_row = updated.words.index[updated.words.entries[-1]]
    assert not np.array_equal(column.word_embedding.embeddings.numpy()[new_row],
                              src.network.word_embedding.embeddings.numpy()[1]), "a new word's row started as UNK's"
    frozen, _ = isolated_training(updated, ["Address"])
    assert "adapter_0" not in frozen and {"word_embedding", "char_encoder", "token_bilstm"} <= set(frozen)


def test_a_second_column_freezes_the_first_and_reads_its_words_as_unk(source):
    src = api.as_tagger(source)
    first = api.update(src, only(generate_corpus("B", 120, seed=67), {"Address"}), ["Address"], None,
                       method="column", max_epochs=2, patience_steps=5, verbose=False).tagger
    second = api.update(first, only(generate_corpus("A", 120, seed=66), {"Phone"}), ["Phone"], None,
                        method="column", max_epochs=2, patience_steps=5, verbose=False).tagger
    kinds = [a.get("kind") for a in second.heads["adapters"]]
    assert kinds == ["column", "column"] and second.heads["base_words"] == len(src.words)
    assert second.heads["adapters"][0]["words"] == len(first.words) <= second.heads["adapters"][1]["words"]
    frozen, _ = isolated_training(second, ["Phone"])
    assert "adapter_0" in frozen and "adapter_1" not in frozen
    old_labels_untouched(first, second, ["Phone"])


def test_precedence_reads_the_source_models_own_marginals_and_keeps_the_new_type_off_its_entities(source):
    from neuroner_tl.transfer import rebuilt

    src = api.as_tagger(source)
    updated = api.update(src, only(generate_corpus("A", 120, seed=63), {"Address"}), ["Address"], None,
                         method="column", max_epochs=10, patience_steps=40, verbose=False).tagger
    spec = updated.heads["adapters"][-1]
    assert spec.get("precedence") is None or 0 < spec["precedence"] < 1, "chosen on dev among the grid, or none"
    inputs = random_batch(src, np.random.default_rng(7))
    lengths = src.network.lengths(inputs)
    from neuroner_tl.model import precedence_masks

    earlier, own = precedence_masks(updated.heads, len(updated.labels), 0)
    assert own.sum() == 2 and not earlier[own].any()
    potentials = updated.network(inputs, training=False)
    probability = updated.network.earlier_entity_probability(potentials, lengths, True, earlier).numpy()
    marginals = src.network.marginals(inputs).numpy()
    entity = np.array([label != "O" for label in src.labels])
    mask = inputs[WORD_INPUT] > 0
    np.testing.assert_allclose(probability[mask], marginals[mask][:, entity].sum(axis=-1), atol=1e-5)
    # precedence 0: the source is always "sure enough", so the new type never wins a token; 1 (with the
    # source's probabilities below 1): the new type is where it was
    tagger_at = {t: rebuilt(updated, {**updated.heads, "adapters": [{**spec, "precedence": t}]}) for t in (0.0, 1.0)}
    test = generate_corpus("A", 60, seed=64)
    assert tagger_at[0.0].evaluate(test)[0].by_type.get("Address") is None or \
        tagger_at[0.0].evaluate(test)[0].by_type["Address"].predicted == 0
    free = rebuilt(updated, {**updated.heads, "adapters": [{k: v for k, v in spec.items() if k != "precedence"}]})
    assert tagger_at[1.0].predict(test.sentences[:20]) == free.predict(test.sentences[:20])
    assert free.evaluate(test)[0].by_type["Address"].predicted > 0


def test_isolate_trains_only_the_transitions_of_its_labels():
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]

    class Stub:
        heads = {"adapters": [{"labels": [3, 4], "units": 4}]}
        network = type("Net", (), {"hidden": object()})()

    Stub.labels = labels
    frozen, masks = isolated_training(Stub, ["ORG"])
    mask = masks["crf/transitions"]
    assert mask.shape == (7, 7) and mask[3].all() and mask[:, 4].all()
    assert not mask[np.ix_([0, 1, 2, 5, 6], [0, 1, 2, 5, 6])].any()


def test_settings_resolve_auto_per_task():
    assert UpdateSettings().for_task(["Address"], []).method == "column"
    assert UpdateSettings().for_task([], ["Person"]).method == "distill"
    assert UpdateSettings(method="distill").for_task(["Address"], []).method == "distill"

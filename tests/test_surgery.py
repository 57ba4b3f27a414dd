import numpy as np
import pytest

from neuroner_tl.datasets import generate_corpus
from neuroner_tl.errors import UpdateError
from neuroner_tl.model import weight_arrays
from neuroner_tl.surgery import CHARS, EMISSION_BIAS, EMISSION_KERNEL, TRANSITIONS, WORDS, ModelSurgeon, like, used_transitions


@pytest.fixture(scope="module")
def source(tiny_model):
    return tiny_model[1].tagger


def test_every_old_weight_is_copied_bit_for_bit(source):
    surgeon = ModelSurgeon(source, seed=3)
    target = surgeon.operate(new_types=["Iban", "Email"], new_words=["nuovissima", "parolona"], new_chars=["ŧ"])
    old, new = weight_arrays(source.network), weight_arrays(target.network)
    assert set(old) == set(new)
    c_old, c_new = len(source.labels), len(target.labels)
    assert c_new == c_old + 4 and target.labels[:c_old] == source.labels
    assert target.labels[c_old:] == ["B-Iban", "I-Iban", "B-Email", "I-Email"]
    for name, value in old.items():
        if name == WORDS or name == CHARS:
            assert np.array_equal(new[name][: len(value)], value)
            assert new[name].shape[0] == value.shape[0] + (2 if name == WORDS else 1)
        elif name == EMISSION_KERNEL:
            assert new[name].shape == (value.shape[0], c_new)
            assert np.array_equal(new[name][:, :c_old], value)
        elif name == EMISSION_BIAS:
            assert np.array_equal(new[name][:c_old], value)
        elif name == TRANSITIONS:
            assert new[name].shape == (c_new + 2, c_new + 2)
            # the (C+2)x(C+2) layout: labels, then start, then end; new labels go before start
            assert np.array_equal(new[name][:c_old, :c_old], value[:c_old, :c_old]), "label to label"
            assert np.array_equal(new[name][c_new, :c_old], value[c_old, :c_old]), "start row"
            assert np.array_equal(new[name][:c_old, c_new + 1], value[:c_old, c_old + 1]), "end column"
            assert np.array_equal(new[name][c_new, c_new + 1], value[c_old, c_old + 1])
        else:
            assert np.array_equal(new[name], value), name
    assert source.words.entries == target.words.entries[: len(source.words)]
    assert weight_arrays(source.network)[TRANSITIONS].shape == (c_old + 2, c_old + 2), "the source is untouched"


def test_new_weights_follow_the_existing_statistics(source):
    target = ModelSurgeon(source, seed=4).operate(new_types=[f"T{i}" for i in range(20)])
    old, new = weight_arrays(source.network), weight_arrays(target.network)
    c = len(source.labels)
    fresh_kernel = new[EMISSION_KERNEL][:, c:]
    assert fresh_kernel.mean() == pytest.approx(old[EMISSION_KERNEL].mean(), abs=float(0.1 * old[EMISSION_KERNEL].std()))
    assert fresh_kernel.std() == pytest.approx(old[EMISSION_KERNEL].std(), rel=0.1)
    used = used_transitions(old[TRANSITIONS])
    c_new = len(target.labels)
    fresh = new[TRANSITIONS][c:c_new, :c_new].ravel()
    assert fresh.mean() == pytest.approx(used.mean(), abs=float(0.15 * used.std()))
    assert fresh.std() == pytest.approx(used.std(), rel=0.15)
    drawn = like(np.arange(10.0), 100000, np.random.default_rng(0))
    assert drawn.mean() == pytest.approx(4.5, abs=0.05) and drawn.std() == pytest.approx(np.arange(10.0).std(), rel=0.02)


def test_preserve_decodes_exactly_like_the_source(source):
    sentences = generate_corpus("B", 300, seed=21).sentences  # the other domain: unknown words and forms
    target = ModelSurgeon(source).operate(new_types=["Address2", "Email"], new_words=["Roma", "roma", "Camera", "deputati"], new_chars=["ŧ"], init="preserve")
    assert target.predict(sentences) == source.predict(sentences)
    paper = ModelSurgeon(source, seed=1).operate(new_types=["Address2", "Email"], init="paper")
    assert len(paper.labels) == len(target.labels)


def test_forget_redraws_only_the_forgotten_type(source):
    target = ModelSurgeon(source, seed=5).operate(forget_types=["Phone"])
    old, new = weight_arrays(source.network), weight_arrays(target.network)
    phone = [i for i, label in enumerate(source.labels) if label.endswith("-Phone")]
    others = [i for i in range(len(source.labels)) if i not in phone]
    assert not np.any(new[EMISSION_KERNEL][:, phone] == old[EMISSION_KERNEL][:, phone])
    assert np.array_equal(new[EMISSION_KERNEL][:, others], old[EMISSION_KERNEL][:, others])
    keep = others + [len(source.labels), len(source.labels) + 1]
    assert np.array_equal(new[TRANSITIONS][np.ix_(keep, keep)], old[TRANSITIONS][np.ix_(keep, keep)])
    assert not np.any(new[TRANSITIONS][phone, :] == old[TRANSITIONS][phone, :])
    assert target.labels == source.labels


def test_nothing_new_is_a_no_op(source):
    target = ModelSurgeon(source).operate()
    for name, value in weight_arrays(source.network).items():
        assert np.array_equal(weight_arrays(target.network)[name], value)


def test_forgetting_an_unknown_type_is_an_error(source):
    with pytest.raises(UpdateError, match="no such type"):
        ModelSurgeon(source).operate(forget_types=["Nope"])


def test_surgeon_reads_a_model_folder(tiny_model):
    """From the folder alone the surgeon has the model training built in memory: its labels,
    vocabularies and every weight; and operates on it as on that model."""
    folder, result = tiny_model
    trained = result.tagger  # the model as training left it, never read from the folder
    surgeon = ModelSurgeon.from_folder(folder, seed=7)
    read = surgeon.source
    assert read is not trained
    assert surgeon.labels_with(["Phone", "Iban"]) == trained.labels + ["B-Iban", "I-Iban"]
    assert (read.labels, read.words.entries, read.chars.entries) == \
        (trained.labels, trained.words.entries, trained.chars.entries)
    expected = weight_arrays(trained.network)
    got = weight_arrays(read.network)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    sentences = generate_corpus("B", 20, seed=2).sentences
    assert read.predict(sentences) == trained.predict(sentences)
    grown = surgeon.operate(new_types=["Iban"], new_words=["parolona"])
    expected = weight_arrays(ModelSurgeon(trained, seed=7).operate(new_types=["Iban"], new_words=["parolona"]).network)
    for name, value in weight_arrays(grown.network).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)

import hashlib
import json

import pytest
from click.testing import CliRunner

from neuroner_tl import api, tags
from neuroner_tl.cli import cli
from neuroner_tl.conll import write_conll
from neuroner_tl.corpus import Corpus
from neuroner_tl.datasets import generate_corpus
from neuroner_tl.errors import DataFormatError, NeuronerError, UpdateError
from neuroner_tl.pseudo import annotate, merge_spans
from neuroner_tl.tags import Span

from conftest import SMALL_UPDATE_NETWORK, invoke
from conftest import keep_types as only


def fingerprint(folder):
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def target_file(tmp_path_factory):
    """Domain-B sentences with only Address annotated."""
    path = tmp_path_factory.mktemp("target") / "target.conll"
    write_conll(path, only(generate_corpus("B", 120, seed=31), {"Address"}).sentences)
    return path


def test_merge_spans_gold_wins():
    gold = [Span("Address", 2, 5)]
    predicted = [Span("Person", 0, 1), Span("Location", 4, 6), Span("Address", 8, 9), Span("Phone", 6, 8)]
    kept, accepted, target, overlap = merge_spans(gold, predicted, {"Address"})
    assert accepted == [Span("Person", 0, 1), Span("Phone", 6, 8)]
    assert (target, overlap) == (1, 1)
    assert kept == [Span("Person", 0, 1), Span("Address", 2, 5), Span("Phone", 6, 8)]


def test_annotate_adds_other_types_and_keeps_gold(tiny_model):
    tagger = tiny_model[1].tagger
    corpus = only(generate_corpus("A", 60, seed=32), {"Phone"})
    annotation = annotate(tagger, corpus, ["Phone"])
    assert sum(annotation.added.values()) > 0 and "Phone" not in annotation.added
    for before, after in zip(corpus.sentences, annotation.corpus.sentences):
        gold = tags.spans(before.labels)
        assert set(gold) <= set(tags.spans(after.labels))


def test_update_adds_a_new_type_and_never_touches_the_source(tiny_model, target_file, tmp_path):
    folder, result = tiny_model
    before = fingerprint(folder)
    tagger = result.tagger
    assert "Address" in tagger.entity_types  # the tiny model knows it: use a renamed type for task (iii)
    corpus = api.load_corpus(target_file)
    renamed = Corpus([s.with_labels([l.replace("Address", "Street") for l in s.labels]) for s in corpus.sentences], "IOB2")
    renamed_path = tmp_path / "street.conll"
    write_conll(renamed_path, renamed.sentences)
    out = api.update(folder, renamed_path, ["Street"], tmp_path / "mt", max_epochs=3, verbose=False)
    assert out.new_types == ["Street"] and "B-Street" in out.tagger.labels
    assert fingerprint(folder) == before
    reloaded = api.as_tagger(tmp_path / "mt")
    assert reloaded.labels == out.tagger.labels
    assert reloaded.provenance["updates"][-1]["new_types"] == ["Street"]
    fitted = json.loads((tmp_path / "mt" / "evaluation.json").read_text())["calibration"]  # refitted on the update's dev
    assert fitted["objective"] == "likelihood" and reloaded.temperature == pytest.approx(fitted["temperature"])
    assert reloaded.temperature != pytest.approx(api.as_tagger(folder).temperature)
    again = api.update(tmp_path / "mt", target_file, ["Address"], tmp_path / "mt2", forget=True, max_epochs=1, verbose=False)
    assert len(api.as_tagger(tmp_path / "mt2").provenance["updates"]) == 2 and again.forgotten_types == ["Address"]


def test_update_with_several_types_and_io_target(tiny_model, tmp_path):
    """An IO file annotating two types the model knows: read as IO, its spans become the model's
    BIO labels (no bare IO labels), both types are the update's gold types, and the updated model
    finds them in the target sentences better than the source did."""
    folder, source = tiny_model[0], tiny_model[1].tagger
    corpus = only(generate_corpus("B", 80, seed=33), {"Phone", "Person"}, scheme="IO")
    assert any(x.end - x.start > 1 for s in corpus.sentences for x in tags.spans(s.labels)), "multi-token IO spans"
    path = tmp_path / "io.tsv"
    write_conll(path, corpus.sentences, separator="\t")
    result = api.update(folder, path, ["Phone", "Person"], tmp_path / "mt", max_epochs=4, patience_steps=0,
                        verbose=False)
    assert any("written in IO" in m for m in result.messages)
    assert any("Phone: the model already knows" in m for m in result.messages)
    updated = api.as_tagger(tmp_path / "mt")
    assert updated.labels == source.labels, "known types: no new labels, and none in IO form"
    record = updated.provenance["updates"][-1]
    assert sorted(record["gold_types"]) == ["Person", "Phone"] and record["new_types"] == []
    read = api.load_corpus(path)
    assert read.scheme == "IO" and [tags.spans(s.labels) for s in read.sentences] == \
        [tags.spans(s.labels) for s in corpus.sentences]
    before, after = source.evaluate(read)[0], updated.evaluate(read)[0]
    for kind in ("Person", "Phone"):
        assert after.by_type[kind].gold == sum(x.type == kind for s in corpus.sentences for x in tags.spans(s.labels))
    assert after.by_type["Person"].f1 + after.by_type["Phone"].f1 > \
        before.by_type["Person"].f1 + before.by_type["Phone"].f1, (before.format_table(), after.format_table())
    for predicted in updated.predict([s.tokens for s in read.sentences]):
        assert all(t == "O" or t[:2] in ("B-", "I-") for t in predicted)


def test_a_bioes_model_is_updated_in_its_own_scheme(tmp_path):
    """A source trained in BIOES learns a new type from an IOB2 file: the new type gets its four
    BIOES labels, the target spans are learnt as BIOES, decoding keeps to the scheme."""
    from neuroner_tl.config import Hyperparameters

    hp = Hyperparameters(tag_scheme="BIOES", max_epochs=3, **SMALL_UPDATE_NETWORK)
    source = api.train(generate_corpus("A", 80, seed=34, exclude_types=["Address"]), None,
                       dev=generate_corpus("A", 20, seed=35, exclude_types=["Address"]), hp=hp, verbose=False).tagger
    assert "Address" not in source.entity_types and "S-Phone" in source.labels
    target = only(generate_corpus("A", 120, seed=36), {"Address"})
    path = tmp_path / "target.conll"
    write_conll(path, target.sentences)
    result = api.update(source, path, ["Address"], tmp_path / "updated", max_epochs=6, patience_steps=0,
                        adapter_learning_rate=0.02, verbose=False)  # a column, faster than the default rate
    updated = api.as_tagger(tmp_path / "updated")
    assert updated.hp.tag_scheme == "BIOES"
    assert updated.labels == source.labels + ["B-Address", "I-Address", "E-Address", "S-Address"]
    assert result.new_types == ["Address"]
    # what the update trains on: the IOB2 spans as BIOES labels
    for sentence, item in zip(target.sentences, updated.encode_corpus(target)):
        assert [updated.labels[i] for i in item.labels] == tags.convert(sentence.labels, "BIOES")
    assert any("E-Address" in tags.convert(s.labels, "BIOES") for s in target.sentences), "not IOB2 as it is"
    allowed = tags.allowed_transitions("BIOES", updated.labels)
    index, count = updated.label_index, len(updated.labels)
    sentences = [s.tokens for s in target.sentences]
    predicted = updated.predict(sentences)
    for sequence in predicted:
        steps = [count] + [index[t] for t in sequence] + [count + 1]
        assert all(allowed[a, b] for a, b in zip(steps, steps[1:])), sequence
    found = [x for sequence in predicted for x in tags.spans(sequence) if x.type == "Address"]
    assert found and any(x.end - x.start > 1 for x in found), "multi-token Address spans (B-... E-)"
    # measured 86 on the training sentences; learning a type this small is noisy from epoch to epoch
    assert updated.evaluate(target)[0].by_type["Address"].f1 > 30.0


@pytest.fixture(scope="module")
def street_and_person(tmp_path_factory):
    """(a target annotating Street, a type the tiny model lacks, and Person, one it knows; the same
    sentences with Street alone)."""
    corpus = only(generate_corpus("B", 120, seed=31), {"Address", "Person"})
    renamed = Corpus([s.with_labels([l.replace("Address", "Street") for l in s.labels]) for s in corpus.sentences],
                     "IOB2")
    folder = tmp_path_factory.mktemp("street_and_person")
    both, alone = folder / "street_and_person.conll", folder / "street.conll"
    write_conll(both, renamed.sentences)
    write_conll(alone, only(renamed, {"Street"}).sentences)
    return both, alone


@pytest.mark.parametrize("method", ["isolate", "self-training", "finetune"])
def test_a_known_type_annotated_but_not_asked_for_is_ignored_by_every_method_and_said(tiny_model, street_and_person,
                                                                                    method):
    """-e Street on a target that annotates Person too: the Person labels are ignored, whatever the
    method (the update learns and selects exactly as from the file without them: the model's own
    Person predictions), and one line says so and how to use them instead."""
    both, alone = street_and_person
    with_person = api.update(tiny_model[0], both, ["Street"], None, method=method, max_epochs=1, verbose=False)
    without = api.update(tiny_model[0], alone, ["Street"], None, method=method, max_epochs=1, verbose=False)
    assert with_person.pseudo_labels == without.pseudo_labels
    counts = ("target_spans", "teacher_spans")
    assert {k: with_person.dev_scores[k] for k in counts} == {k: without.dev_scores[k] for k in counts}
    record = with_person.tagger.provenance["updates"][-1]
    assert record["target"]["entities"] == without.tagger.provenance["updates"][-1]["target"]["entities"]
    assert [m for m in with_person.messages if "annotates" in m] == [
        f"{both}: annotates Person, which is not a target type (-e Street): those labels are ignored and the "
        f"model's own predictions are used for Person; pass -e Person to learn them too, or --annotated to use "
        f"them as given"]
    assert not any("annotates" in m for m in without.messages)


def test_a_dev_file_is_read_as_the_target_is(tiny_model, street_and_person, tmp_path):
    """--dev annotating a type the model knows but -e does not name: ignored and said, as in the
    target; one the model does not know either is refused, naming the dev file."""
    both, alone = street_and_person
    code, output = invoke("update", "-m", tiny_model[0], "-t", alone, "--dev", both, "-e", "Street", "-o",
                          tmp_path / "m", "--epochs", "1")
    assert code == 0, output
    assert f"{both}: annotates Person, which is not a target type (-e Street): those labels are ignored" in output
    unknown = tmp_path / "dev.conll"
    unknown.write_text(both.read_text().replace("Person", "Pet"))
    with pytest.raises(UpdateError, match=f"{unknown}: annotates Pet, which is neither a target type nor known"):
        api.update(tiny_model[0], alone, ["Street"], tmp_path / "n", dev=unknown, verbose=False)
    assert not (tmp_path / "n").exists()


def test_update_errors(tiny_model, target_file, tmp_path):
    folder, _ = tiny_model
    with pytest.raises(DataFormatError, match="has no Phone entities"):
        api.update(folder, target_file, ["Phone"], tmp_path / "a", verbose=False)
    with pytest.raises(DataFormatError, match="has no Vehicle entities to learn from; the file annotates Address"):
        api.update(folder, target_file, ["Vehicle"], tmp_path / "b", verbose=False)
    with pytest.raises(NeuronerError, match="is the source model"):
        api.update(folder, target_file, ["Address"], folder, force=True, verbose=False)
    with pytest.raises(NeuronerError, match="cannot be an entity type name"):
        api.update(folder, target_file, ["B-Address"], tmp_path / "c", verbose=False)
    renamed = tmp_path / "new.conll"
    renamed.write_text(target_file.read_text().replace("Address", "Street"))
    with pytest.raises(UpdateError, match="--forget re-learns types the model has"):
        api.update(folder, renamed, ["Street"], tmp_path / "d", forget=True, verbose=False)
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_update_through_the_cli(tiny_model, target_file, tmp_path):
    folder, _ = tiny_model
    result = CliRunner().invoke(cli, ["update", "-m", str(folder), "-t", str(target_file), "-e", "Address", "--forget",
                                      "-o", str(tmp_path / "mt"), "--epochs", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mt" / "saved_model" / "saved_model.pb").exists()
    result = CliRunner().invoke(cli, ["update", "-m", str(folder), "-t", str(target_file), "-e", "Address",
                                      "-o", str(tmp_path / "mt"), "-q"])
    assert result.exit_code == 2 and "already exists" in result.output


def test_encoding_labels_the_model_lacks_names_file_and_line(tiny_model, tmp_path):
    path = tmp_path / "odd.conll"
    path.write_text("Mario B-Person\nRossi I-Person\n\nUna O\nVespa B-Vehicle\n")
    with pytest.raises(DataFormatError, match=r"odd.conll:5: label 'B-Vehicle' is not one of the model's labels"):
        tiny_model[1].tagger.encode_corpus(api.load_corpus(path))


def test_update_embeddings_of_the_right_dimension_are_the_new_words_rows(tiny_model, target_file, tmp_path):
    """``update --embeddings`` with vectors of the model's dimension: each new word that has a
    vector starts from it (kept as it is here, with the embeddings frozen); the source's rows stay."""
    import numpy as np

    from neuroner_tl.model import weight_arrays

    source = tiny_model[1].tagger
    corpus = api.load_corpus(target_file)
    counts = {}
    for sentence in corpus.sentences:
        for token in sentence.tokens:
            counts[token] = counts.get(token, 0) + 1
    unseen = sorted(t for t, c in counts.items() if t.isalpha() and t not in source.words and c >= 3)[:6]
    assert unseen, "the target data have words the source never saw"
    rng = np.random.default_rng(3)
    table = {word: rng.normal(size=source.word_dim).astype(np.float32) for word in unseen + ["zzzabsent"]}
    vectors = tmp_path / "right.vec"
    vectors.write_text(f"{len(table)} {source.word_dim}\n" + "".join(
        f"{w} {' '.join(repr(float(x)) for x in v)}\n" for w, v in table.items()))
    result = CliRunner().invoke(cli, ["update", "-m", str(tiny_model[0]), "-t", str(target_file), "-e", "Address",
                                      "--method", "distill", "--embeddings", str(vectors), "--epochs", "1",
                                      "--set", "freeze_embeddings=true", "-o", str(tmp_path / "mt")])
    assert result.exit_code == 0, result.output
    assert "new words have a pretrained vector" in result.output
    updated = api.as_tagger(tmp_path / "mt")
    rows = weight_arrays(updated.network)["word_embedding/embeddings"]
    added = [w for w in unseen if w in updated.words]
    assert added, result.output
    for word in added:
        np.testing.assert_array_equal(rows[updated.words.id(word)], table[word], err_msg=word)
    assert "zzzabsent" not in updated.words, "only the target data's words are added"
    old = weight_arrays(source.network)["word_embedding/embeddings"]
    np.testing.assert_array_equal(rows[: len(old)], old)

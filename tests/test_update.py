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


def only(corpus, types, scheme="IOB2"):
    return Corpus([s.with_labels(tags.tags_from_spans([x for x in tags.spans(s.labels) if x.type in types], len(s), scheme))
                   for s in corpus.sentences], scheme)


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
    folder, _ = tiny_model
    corpus = only(generate_corpus("B", 80, seed=33), {"Phone", "Person"}, scheme="IO")
    path = tmp_path / "io.tsv"
    write_conll(path, corpus.sentences, separator="\t")
    result = api.update(folder, path, ["Phone", "Person"], tmp_path / "mt", max_epochs=1, verbose=False)
    assert any("written in IO" in m for m in result.messages)
    assert any("Phone: the model already knows" in m for m in result.messages)


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

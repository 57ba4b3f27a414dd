import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from neuroner_tl import api
from neuroner_tl.errors import ModelFolderError, NeuronerError
from neuroner_tl.model import save_weights, weight_arrays
from neuroner_tl.model_io import ASSET_FILES, load_tagger, read_saved_model_weights, save_tagger

from conftest import invoke, serve_without_package


ASSETS = "saved_model/assets"


def test_folder_holds_everything_and_every_weight_only_in_the_saved_model(tiny_model):
    folder, result = tiny_model
    for name in ("saved_model/saved_model.pb", "saved_model/variables/variables.index", "training.png",
                 "evaluation.json", "logs", *(f"{ASSETS}/{asset}" for asset in ASSET_FILES)):
        assert (folder / name).exists(), name
    assert sorted(p.name for p in folder.iterdir()) == ["evaluation.json", "logs", "saved_model", "training.png"]
    assert not list(folder.rglob("*.npz")), "no second copy of the weights"
    provenance = json.loads((folder / ASSETS / "provenance.json").read_text())
    assert provenance["trained_on"][0]["role"] == "train" and len(provenance["trained_on"][0]["sha256"]) == 64
    assert not list(folder.parent.glob(".model.*")), "no staging folders left behind"
    stored = read_saved_model_weights(folder, folder / "saved_model", list(weight_arrays(result.tagger.network)))
    for name, value in weight_arrays(result.tagger.network).items():
        np.testing.assert_array_equal(stored[name], value, err_msg=name)


def test_a_bare_saved_model_is_predicted_with_evaluated_and_updated(tiny_model, tiny_data, tmp_path):
    """What TF Serving deploys is enough: copy saved_model/ alone somewhere and use it as a model."""
    folder, result = tiny_model
    bare = tmp_path / "exported" / "1"
    shutil.copytree(folder / "saved_model", bare)
    tagger = load_tagger(bare)
    corpus = api.load_corpus(tiny_data["test"])
    assert tagger.predict(corpus.sentences) == result.tagger.predict(corpus.sentences)
    assert api.evaluate(bare, tiny_data["test"]).f1 == pytest.approx(result.test_report.f1)
    target = tmp_path / "target.txt"
    target.write_text("".join(f"{t} {'B-Zip' if t == 'Milano' else 'O'}\n" for t in "Abito a Milano .".split()) * 1
                      + "\n" + "".join(f"{t} {'B-Zip' if t == '20121' else 'O'}\n" for t in "CAP 20121 .".split()))
    updated = api.update(bare, target, ["Zip"], tmp_path / "updated", max_epochs=1, verbose=False)
    assert "B-Zip" in updated.tagger.labels and load_tagger(tmp_path / "updated").labels == updated.tagger.labels


def test_upgrade_makes_a_model_folder_of_a_bare_saved_model(tiny_model, tiny_data, tmp_path):
    """``upgrade`` of what TF Serving deploys (saved_model/ alone): a whole model folder with the same
    labels, vocabularies and weights, that predicts what the model predicted."""
    folder, result = tiny_model
    bare = tmp_path / "exported" / "1"
    shutil.copytree(folder / "saved_model", bare)
    code, output = invoke("upgrade", bare, "-o", tmp_path / "upgraded")
    assert code == 0, output
    upgraded = tmp_path / "upgraded"
    assert sorted(p.name for p in upgraded.iterdir()) == ["saved_model"], "nothing the bare SavedModel lacked"
    assert sorted(p.name for p in (upgraded / ASSETS).iterdir()) == sorted(ASSET_FILES)
    tagger = load_tagger(upgraded)
    assert (tagger.labels, tagger.words.entries, tagger.hp) == (result.tagger.labels, result.tagger.words.entries,
                                                                result.tagger.hp)
    expected = weight_arrays(result.tagger.network)
    for name, value in weight_arrays(tagger.network).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)
    sentences = api.load_corpus(tiny_data["test"]).sentences
    assert tagger.predict(sentences) == result.tagger.predict(sentences)
    assert [p.name for p in bare.iterdir()] and api.info(upgraded)["labels"] == result.tagger.labels


def test_a_format_1_folder_loads_with_a_message_and_upgrades(tiny_model, tiny_data, tmp_path, capsys):
    """neuroner_tl 0.1 wrote weights.npz beside config.json, model.json and the vocabularies."""
    folder, result = tiny_model
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ASSET_FILES:
        shutil.copy(folder / ASSETS / name, legacy / name)
    info = json.loads((legacy / "model.json").read_text())
    (legacy / "model.json").write_text(json.dumps({**info, "format_version": 1}))
    save_weights(result.tagger.network, legacy / "weights.npz")
    shutil.copytree(folder / "saved_model", legacy / "saved_model")  # format 1 had one, without assets
    shutil.rmtree(legacy / "saved_model" / "assets")
    (legacy / "saved_model" / "assets").mkdir()
    tagger = load_tagger(legacy)
    note = capsys.readouterr().err
    assert "format 1" in note and "neuroner-tl upgrade" in note
    sentences = api.load_corpus(tiny_data["test"]).sentences
    assert tagger.predict(sentences) == result.tagger.predict(sentences)
    upgraded = api.upgrade(legacy, tmp_path / "upgraded")
    assert (upgraded / "saved_model" / "saved_model.pb").exists() and not (upgraded / "weights.npz").exists()
    assert load_tagger(upgraded).predict(sentences) == result.tagger.predict(sentences)
    (legacy / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(ModelFolderError, match="weights.npz is not a readable weights file"):
        load_tagger(legacy)


def test_reload_gives_the_same_predictions(tiny_model, tiny_data):
    folder, result = tiny_model
    corpus = api.load_corpus(tiny_data["test"])
    assert load_tagger(folder).predict(corpus.sentences) == result.tagger.predict(corpus.sentences)


def test_saved_model_serves_without_the_package(tiny_model, tiny_data):
    folder, result = tiny_model
    sentences = [s.tokens for s in api.load_corpus(tiny_data["test"]).sentences[:20]]
    sentences.append(["Perché", "42", "ÀÉ"])  # unknown words, digits, non-ASCII characters
    served = serve_without_package(folder / "saved_model", sentences)
    assert served["tags"] == result.tagger.predict(sentences)
    keras_side = result.tagger.predict_encoded(__import__("neuroner_tl.batching", fromlist=["encode"]).encode(
        sentences, result.tagger.encoder), probabilities=True)
    np.testing.assert_allclose(served["log_probability"], [p.log_probability for p in keras_side], atol=1e-4)


SERVE_TEXT = r"""
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
out = {k: v.numpy().tolist() for k, v in model.signatures["serve_text"](texts=tf.constant(json.loads(sys.argv[2]))).items()}
assert "neuroner_tl" not in sys.modules
def text(value):
    return value.decode() if isinstance(value, bytes) else value
entities = [[{"type": text(out["entity_type"][i][j]), "text": text(out["entity_text"][i][j]),
              "start": out["entity_start"][i][j], "end": out["entity_end"][i][j],
              "confidence": out["entity_confidence"][i][j]} for j in range(out["entity_count"][i])]
            for i in range(len(out["entity_count"]))]
tokens = [[(text(out["tokens"][i][j]), out["starts"][i][j], out["ends"][i][j], out["sentence"][i][j], text(out["tags"][i][j]))
           for j in range(out["token_count"][i])] for i in range(len(out["token_count"]))]
print(json.dumps({"entities": entities, "tokens": tokens}))
"""


def test_the_raw_text_signature_tags_like_the_package(tiny_model, tiny_data):
    """``serve_text``: the tokenizer and sentence splitter in the graph, offsets and entities out,
    as ``Tagger.tag`` gives them; run without the package."""
    from neuroner_tl.tokenizer import split_sentences

    folder, result = tiny_model
    texts = [" ".join(s.tokens) for s in api.load_corpus(tiny_data["test"]).sentences[:25]]
    texts += ["Buongiorno, sono Laura Bianchi. Abito a Milano\nin via dell'Orso 3, CAP 20121! Tel. +39 02 1234567",
              "", "   ", "rock'n'roll dogs' l'a'b mail a.b@x.it https://x.it/l'a 12,5% Ⅻ Straße …E poi?"]
    completed = subprocess.run([sys.executable, "-c", SERVE_TEXT, str(folder / "saved_model"), json.dumps(texts)],
                               capture_output=True, text=True, check=True, cwd="/")
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    expected = result.tagger.tag(texts)
    assert sum(len(e) for e in expected) > 5, "the test needs entities to compare"
    for found, wanted in zip(served["entities"], expected):
        assert [(e["type"], e["text"], e["start"], e["end"]) for e in found] == \
            [(e["type"], e["text"], e["start"], e["end"]) for e in wanted]
        np.testing.assert_allclose([e["confidence"] for e in found], [e["confidence"] for e in wanted], atol=1e-4)
    for text, tokens in zip(texts, served["tokens"]):
        sentences = split_sentences(text)
        assert [(t, start, end, number) for number, sentence in enumerate(sentences) for t, start, end in sentence] \
            == [tuple(token[:4]) for token in tokens]
        tags = result.tagger.predict([[t for t, _, _ in s] for s in sentences]) if sentences else []
        assert [tag for sentence_tags in tags for tag in sentence_tags] == [token[4] for token in tokens]


def test_never_overwrites_without_force(tiny_model, tmp_path):
    folder, result = tiny_model
    target = tmp_path / "copy"
    save_tagger(result.tagger, target)
    marker = target / "marker.txt"
    marker.write_text("keep")
    with pytest.raises(NeuronerError, match="already exists"):
        save_tagger(result.tagger, target)
    assert marker.exists()
    save_tagger(result.tagger, target, force=True)
    assert not marker.exists() and (target / ASSETS / "model.json").exists()


VARIABLES = "saved_model/variables"


def _data_file(folder):
    return next((folder / VARIABLES).glob("variables.data-*"))


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / ASSETS / "words.txt").unlink(), "lacks assets/words.txt"),
    (lambda f: (f / "saved_model" / "saved_model.pb").unlink(), "missing saved_model/saved_model.pb"),
    (lambda f: shutil.rmtree(f / ASSETS), "missing saved_model/assets"),
    (lambda f: _data_file(f).write_bytes(_data_file(f).read_bytes()[:500]), "variables cannot be read back"),
    (lambda f: _data_file(f).unlink(), "variables cannot be read back"),
    (lambda f: (f / ASSETS / "words.txt").write_text("solo\n"), "words.txt has 3 entries"),
    (lambda f: (f / ASSETS / "labels.txt").write_text("O\n"), "labels.txt does not match"),
    (lambda f: (f / ASSETS / "model.json").write_text(json.dumps({**json.loads((f / ASSETS / "model.json").read_text()),
                                                                   "format_version": 99})), "model format 99"),
    (lambda f: (f / ASSETS / "config.json").write_text("{not json"), "config.json is not valid JSON"),
    (lambda f: (f / "saved_model" / "saved_model.pb").write_bytes((f / "saved_model" / "saved_model.pb").read_bytes()[:2000]),
     "saved_model.pb is truncated or corrupt"),
    (lambda f: (f / VARIABLES / "variables.index").unlink(), "variables cannot be read back"),
])
def test_damaged_folders_give_clear_errors(tiny_model, tmp_path, damage, message):
    folder, _ = tiny_model
    copy = tmp_path / "damaged"
    shutil.copytree(folder, copy)
    damage(copy)
    with pytest.raises(ModelFolderError, match=message):
        load_tagger(copy)


def test_missing_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_tagger(tmp_path / "nothing")

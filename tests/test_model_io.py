import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from neuroner_tl import api
from neuroner_tl.errors import ModelFolderError, NeuronerError
from neuroner_tl.model_io import load_tagger, save_tagger


def test_folder_holds_everything(tiny_model):
    folder, _ = tiny_model
    for name in ("config.json", "model.json", "words.txt", "chars.txt", "labels.txt", "weights.npz",
                 "saved_model/saved_model.pb", "history.json", "provenance.json", "metadata.json", "training.png",
                 "evaluation.json", "logs"):
        assert (folder / name).exists(), name
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["trained_on"][0]["role"] == "train" and len(provenance["trained_on"][0]["sha256"]) == 64
    assert not list(folder.parent.glob(".model.*")), "no staging folders left behind"


def test_reload_gives_the_same_predictions(tiny_model, tiny_data):
    folder, result = tiny_model
    corpus = api.load_corpus(tiny_data["test"])
    assert load_tagger(folder).predict(corpus.sentences) == result.tagger.predict(corpus.sentences)


SERVE = r"""
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
sentences = json.loads(sys.argv[2])
width = max(len(s) for s in sentences)
tokens = tf.constant([s + [""] * (width - len(s)) for s in sentences])
out = model.signatures["serving_default"](tokens=tokens)
tags = [[t.decode() for t in row[:len(s)]] for row, s in zip(out["tags"].numpy().tolist(), sentences)]
assert "neuroner_tl" not in sys.modules
print(json.dumps({"tags": tags, "log_probability": out["log_probability"].numpy().tolist()}))
"""


def serve_without_package(saved_model, sentences):
    completed = subprocess.run([sys.executable, "-c", SERVE, str(saved_model), json.dumps(sentences)],
                               capture_output=True, text=True, check=True, cwd="/")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_saved_model_serves_without_the_package(tiny_model, tiny_data):
    folder, result = tiny_model
    sentences = [s.tokens for s in api.load_corpus(tiny_data["test"]).sentences[:20]]
    sentences.append(["Perché", "42", "ÀÉ"])  # unknown words, digits, non-ASCII characters
    served = serve_without_package(folder / "saved_model", sentences)
    assert served["tags"] == result.tagger.predict(sentences)
    keras_side = result.tagger.predict_encoded(__import__("neuroner_tl.batching", fromlist=["encode"]).encode(
        sentences, result.tagger.encoder), probabilities=True)
    np.testing.assert_allclose(served["log_probability"], [p.log_probability for p in keras_side], atol=1e-4)


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
    assert not marker.exists() and (target / "model.json").exists()


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / "words.txt").unlink(), "missing words.txt"),
    (lambda f: (f / "saved_model" / "saved_model.pb").unlink(), "missing saved_model/saved_model.pb"),
    (lambda f: (f / "weights.npz").write_bytes((f / "weights.npz").read_bytes()[:500]), "truncated or corrupt"),
    (lambda f: (f / "words.txt").write_text("solo\n"), "words.txt has 3 entries"),
    (lambda f: (f / "labels.txt").write_text("O\n"), "labels.txt does not match"),
    (lambda f: (f / "model.json").write_text(json.dumps({**json.loads((f / "model.json").read_text()),
                                                          "format_version": 99})), "model format 99"),
    (lambda f: (f / "config.json").write_text("{not json"), "config.json is not valid JSON"),
    (lambda f: (f / "saved_model" / "saved_model.pb").write_bytes((f / "saved_model" / "saved_model.pb").read_bytes()[:2000]),
     "saved_model.pb is truncated or corrupt"),
    (lambda f: (f / "saved_model" / "variables" / "variables.index").unlink(), "missing saved_model/variables"),
    (lambda f: (f / "weights.npz").write_bytes(b"garbage"), "truncated or corrupt"),
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

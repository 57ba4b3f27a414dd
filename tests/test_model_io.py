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
    assert sorted(p.name for p in folder.iterdir()) == ["checksums.json", "evaluation.json", "logs", "saved_model",
                                                         "training.png"]
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
    assert sorted(p.name for p in upgraded.iterdir()) == ["checksums.json", "saved_model"], \
        "nothing the bare SavedModel lacked"
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


# checksums.json ----------------------------------------------------------------------------------------
def _copy(tiny_model, tmp_path, name="copy"):
    return shutil.copytree(tiny_model[0], tmp_path / name)


def _swap_two_lines(path):
    lines = path.read_text().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_text("".join(lines))


def test_every_file_of_a_written_folder_has_its_checksum_recorded_last(tiny_model):
    import hashlib

    folder = tiny_model[0]
    manifest = json.loads((folder / "checksums.json").read_text())
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert manifest["algorithm"] == "sha256" and sorted(manifest["files"]) == [f for f in files if f != "checksums.json"]
    assert "saved_model/saved_model.pb" in manifest["files"] and any("variables.data" in f for f in manifest["files"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    newest = max((folder / name).stat().st_mtime for name in manifest["files"])
    assert (folder / "checksums.json").stat().st_mtime >= newest


@pytest.mark.parametrize("damage, named", [
    (lambda f: _swap_two_lines(f / ASSETS / "words.txt"), "saved_model/assets/words.txt (changed)"),
    (lambda f: (f / "evaluation.json").write_text((f / "evaluation.json").read_text().replace('"f1": ', '"f1": 1')),
     "evaluation.json (changed)"),
    (lambda f: (f / "evaluation.json").unlink(), "evaluation.json (missing)"),
    (lambda f: (f / "saved_model" / "saved_model.pbtxt").write_text("x"), "saved_model/saved_model.pbtxt (not listed)"),
])
def test_a_model_file_changed_after_it_was_written_is_one_line_naming_it(tiny_model, tmp_path, damage, named):
    """Changes every other check lets through (another word order: other predictions; another F1 in
    info): the checksums name the file; --ignore-checksums loads the folder as it is."""
    from conftest import one_line_error

    copy = _copy(tiny_model, tmp_path)
    damage(copy)
    one_line_error(*invoke("info", copy), f"model folder {copy}", named, "checksums.json", "--ignore-checksums")
    with pytest.raises(ModelFolderError, match="not as the model was written"):
        load_tagger(copy)
    code, output = invoke("--ignore-checksums", "info", copy)
    assert code == 0, output
    assert load_tagger(copy, ignore_checksums=True).labels == tiny_model[1].tagger.labels
    with api.checksums_ignored():
        assert api.info(copy)["labels"] == tiny_model[1].tagger.labels


def test_records_are_checked_by_info_verify_only_and_added_files_are_named(tiny_model, tmp_path):
    """A plot or TensorBoard log changes no number: loading does not need them, ``info --verify``
    checks them; files a user adds beside the model are named, not checked."""
    from conftest import one_line_error

    copy = _copy(tiny_model, tmp_path)
    code, output = invoke("info", "--verify", copy)
    assert code == 0 and output.startswith("checksums: OK, ") and "not listed" not in output, output
    (copy / "NOTES.txt").write_text("trained for the March release\n")
    code, output = invoke("info", "--verify", copy)
    assert code == 0 and "not listed, so not checked: NOTES.txt" in output.splitlines()[0], output
    shutil.rmtree(copy / "logs")
    (copy / "training.png").write_bytes(b"not a plot")
    assert invoke("info", copy)[0] == 0
    one_line_error(*invoke("info", "--verify", copy), "training.png (changed)", "logs/train/")
    code, output = invoke("info", "--verify", "--json", copy)
    assert code == 2 and "training.png (changed)" in output


def test_info_verify_checks_the_saved_model_and_says_when_a_folder_has_nothing_to_verify(tiny_model, tmp_path):
    from conftest import one_line_error

    copy = _copy(tiny_model, tmp_path)
    data = _data_file(copy)
    data.write_bytes(data.read_bytes()[:-1] + bytes([data.read_bytes()[-1] ^ 1]))  # one bit of one weight
    one_line_error(*invoke("info", "--verify", copy), f"{VARIABLES}/{data.name} (changed)")
    one_line_error(*invoke("--ignore-checksums", "info", "--verify", copy), f"{VARIABLES}/{data.name} (changed)")
    older = _copy(tiny_model, tmp_path, "older")
    (older / "checksums.json").unlink()  # a folder written before checksums were recorded
    code, output = invoke("info", "--verify", older)
    assert code == 0 and output.startswith(f"checksums: none to verify: {older} has no checksums.json"), output
    assert load_tagger(older).labels == tiny_model[1].tagger.labels
    code, output = invoke("info", "--verify", "--json", older)
    assert code == 0 and json.loads(output)["checksums"]["manifest"] is False


def test_every_folder_the_package_writes_verifies(tiny_model, tiny_data, tmp_path):
    """``calibrate`` and ``upgrade`` write new folders: each with its own checksums, evaluation.json included."""
    calibrated = tmp_path / "calibrated"
    assert invoke("calibrate", tiny_model[0], tiny_data["test"], "-o", calibrated, "--objective", "likelihood")[0] == 0
    upgraded = tmp_path / "upgraded"
    assert invoke("upgrade", calibrated, "-o", upgraded)[0] == 0
    for folder in (calibrated, upgraded):
        verification = api.verify(folder)
        assert verification.ok and "evaluation.json" in verification.checked and not verification.added, folder
        assert json.loads((folder / "evaluation.json").read_text())["calibration"]["objective"] == "likelihood"


@pytest.mark.parametrize("manifest, expected", [
    ("{", "checksums.json is not valid JSON"),
    ('{"files": {}}', "checksums.json: algorithm is missing"),
    ('{"algorithm": "md5", "files": {}}', "checksums.json: algorithm 'md5' is not sha256"),
    ('{"algorithm": "sha256", "files": {"../../x": "0"}}', "'../../x' is not a path inside the model folder"),
])
def test_a_damaged_checksums_file_is_one_line_naming_it(tiny_model, tmp_path, manifest, expected):
    from conftest import one_line_error

    copy = _copy(tiny_model, tmp_path)
    (copy / "checksums.json").write_text(manifest)
    one_line_error(*invoke("info", copy), expected)
    assert invoke("--ignore-checksums", "info", copy)[0] == 0


def test_a_truncated_variables_file_fails_to_load_as_it_fails_in_tensorflow(tiny_model, tmp_path):
    """Cut after the weights: TensorFlow cannot read the object graph back, so the package does not
    either, with or without checksums (a bare SavedModel has none)."""
    import tensorflow as tf

    bare = shutil.copytree(tiny_model[0] / "saved_model", tmp_path / "exported" / "1")
    data = next((bare / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(Exception):
        tf.saved_model.load(str(bare))
    with pytest.raises(ModelFolderError, match="variables cannot be read back"):
        load_tagger(bare)


def test_a_tag_scheme_that_does_not_match_the_labels_is_one_line_naming_config_json(tiny_model, tiny_data, tmp_path):
    """A BIO model told it is BIOES would decode no entity (BIOES ends an entity with E- or S-):
    whether its checksums are checked or not, and in a folder without any."""
    from conftest import one_line_error

    copy = _copy(tiny_model, tmp_path)
    config = copy / ASSETS / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "tag_scheme": "BIOES"}))
    expected = "saved_model/assets/config.json: tag_scheme BIOES does not match saved_model/assets/labels.txt: " \
               "BIOES needs E-"
    for args in (("evaluate", copy, tiny_data["test"]), ("--ignore-checksums", "evaluate", copy, tiny_data["test"])):
        one_line_error(*invoke(*args), f"model folder {copy}", expected, "the labels of the IOB2 scheme")
    (copy / "checksums.json").unlink()
    with pytest.raises(ModelFolderError, match="tag_scheme BIOES does not match"):
        load_tagger(copy)


@pytest.mark.parametrize("scheme, labels, expected", [
    ("BIOES", ["O", "B-A", "I-A"], "BIOES needs E-A, S-A; they are the labels of the IOB2 scheme"),
    ("BIO", ["O", "B-A", "I-A", "E-A", "S-A"], "E-A, S-A cannot exist in BIO; they are the labels of the BIOES scheme"),
    ("BIO", ["O", "B-A"], "BIO needs I-A"),
    ("BIO", ["O", "B-A", "I-A", "B-B", "I-B"], None),
    ("BIOES", ["O", "B-A", "I-A", "E-A", "S-A"], None),
])
def test_the_labels_of_a_scheme_are_every_prefix_of_each_type_and_no_other(scheme, labels, expected):
    from neuroner_tl import tags

    assert tags.label_set_problem(scheme, labels) == expected

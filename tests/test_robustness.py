"""Issue #19: the second round of trying the package as a new user would. Each test names its class in
the issue: nothing lost (1, 2), nothing silently wrong (3-10), no quadratic reading (11), the HTTP
server (12, 13), and no traceback (14, 15)."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import invoke, one_line_error, snapshot
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from neuroner_tl import api


@pytest.fixture
def model(micro_model, tmp_path):
    """A copy of the micro model that a test may lose."""
    return shutil.copytree(micro_model, tmp_path / "m")


@pytest.fixture
def brat_folder(tmp_path):
    folder = tmp_path / "brat_in"
    folder.mkdir()
    (folder / "doc.txt").write_text("Angela Merkel visited Paris.\nMario Rossi lives in Roma.\n", encoding="utf-8")
    (folder / "doc.ann").write_text("T1\tPER 0 13\tAngela Merkel\n", encoding="utf-8")
    return folder


@pytest.fixture
def conll_file(tmp_path):
    path = tmp_path / "test.conll"
    path.write_text("Mario B-PER\nRossi I-PER\nlives O\nin O\nRoma B-LOC\n", encoding="utf-8")
    return path


# 1. BRAT output follows the -o rule of every folder output ---------------------------------------------
def test_1_brat_output_never_replaces_a_folder_of_other_files_a_model_or_the_current_folder(micro_model, model,
                                                                                               brat_folder, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.doc").write_text("thesis")
    for output in (precious, model):
        before = snapshot(output)
        one_line_error(*invoke("predict", micro_model, brat_folder, "--format", "brat", "-o", output, "--force"),
                       "is not a folder of BRAT .txt/.ann files only")
        assert snapshot(output) == before
    cwd = os.getcwd()
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    (work / "doc.txt").write_text("x")
    os.chdir(work)
    try:
        one_line_error(*invoke("predict", model, brat_folder, "--format", "brat", "-o", ".", "--force"),
                       "is the current folder")
        one_line_error(*invoke("predict", model, brat_folder, "--format", "brat", "-o", "..", "--force"),
                       "current folder")
    finally:
        os.chdir(cwd)
    assert (work / "doc.txt").read_text() == "x"


def test_1_brat_output_replaces_earlier_brat_output_with_force(model, brat_folder, tmp_path):
    output = tmp_path / "out"
    code, text = invoke("predict", model, brat_folder, "--format", "brat", "-o", output)
    assert code == 0, text
    one_line_error(*invoke("predict", model, brat_folder, "--format", "brat", "-o", output), "already exists")
    code, text = invoke("predict", model, brat_folder, "--format", "brat", "-o", output, "--force")
    assert code == 0, text
    assert sorted(p.name for p in output.iterdir()) == ["doc.ann", "doc.txt"]


# 2. a model folder, and everything under it, is an input -------------------------------------------------
def test_2_no_command_writes_inside_its_model_or_any_input(model, conll_file, brat_folder, tmp_path):
    before = snapshot(model)
    index = model / "saved_model" / "variables" / "variables.index"
    for args in (["predict", model, conll_file, "-o", index, "--force"],
                 ["predict", model, conll_file, "-o", model / "new.conll", "--force"],
                 ["evaluate", model, conll_file, "--predictions", model / "saved_model" / "x.conll", "--force"],
                 ["annotate", model, conll_file, "-e", "PER", "-o", index, "--force"],
                 ["predict", model, brat_folder, "--format", "brat", "-o", model / "brat", "--force"],
                 ["predict", model, brat_folder, "--format", "brat", "-o", brat_folder / "sub", "--force"],
                 ["upgrade", model, "-o", model / "v2", "--force"],
                 ["embeddings", conll_file, "-o", conll_file, "--force"]):
        one_line_error(*invoke(*args), "an input of this command")
    one_line_error(*invoke("update", "-m", model, "-t", conll_file, "-e", "PER", "-o", model / "v2", "--epochs", "1"),
                   "lies inside", "an input of this command")
    one_line_error(*invoke("train", conll_file, "-o", tmp_path, "--force", "--epochs", "1"), "holds",
                   "an input of this command")
    assert snapshot(model) == before
    assert not (model / "v2").exists() and not (brat_folder / "sub").exists()
    api.load_tagger(model)


def test_2_a_symlink_to_an_input_is_that_input(model, conll_file, tmp_path):
    link = tmp_path / "link.conll"
    link.symlink_to(conll_file)
    before = conll_file.read_bytes()
    one_line_error(*invoke("predict", model, conll_file, "-o", link, "--force"), "is an input of this command")
    linked_model = tmp_path / "linked_model"
    linked_model.symlink_to(model)
    one_line_error(*invoke("predict", model, conll_file, "-o", linked_model / "x.conll", "--force"),
                   "lies inside")
    assert conll_file.read_bytes() == before


# 3. ids are reserved, not strings ---------------------------------------------------------------------------
def test_3_a_literal_padding_symbol_is_a_word_and_the_saved_model_agrees(micro_model):
    import numpy as np
    import tensorflow as tf

    from neuroner_tl.vocabulary import PAD, PAD_ID, UNK, UNK_ID, Vocabulary

    vocabulary = Vocabulary(["casa", PAD, UNK])
    assert vocabulary.id(PAD) not in (PAD_ID, UNK_ID) and vocabulary.id(UNK) not in (PAD_ID, UNK_ID)
    assert Vocabulary([]).id(PAD) == UNK_ID and PAD not in Vocabulary([])
    tagger = api.load_tagger(micro_model)
    tokens = ["Mario", "Rossi", PAD, "vive", "a", "Roma", UNK, "."]
    assert tagger.encoder.word_id(PAD) == UNK_ID
    prediction = tagger.predict_with_confidence([tokens])[0]
    assert len(prediction.tags) == len(tokens)
    served = tf.saved_model.load(str(micro_model / "saved_model")).signatures["serving_default"](
        tokens=tf.constant([tokens]))
    assert [t.decode() for t in served["tags"].numpy()[0]] == prediction.tags
    np.testing.assert_allclose(served["confidence"].numpy()[0], prediction.token_confidences, atol=1e-4)


# 4, 6, 10. one line reader for every command --------------------------------------------------------------
CONLL_ROWS = ["Mario B-PER", "Rossi I-PER", "vive O", "a O", "Roma B-LOC", "", "Ciao O", "Laura B-PER"]


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"])
def test_4_every_reader_splits_cr_only_lines(micro_model, tmp_path, ending):
    from neuroner_tl.conll import parse_conll, read_conll
    from neuroner_tl.formats import guess_input_format
    from neuroner_tl.lines import LineSource
    from neuroner_tl.prediction import conll_sentences

    path = tmp_path / "mac.txt"
    path.write_bytes(ending.join(CONLL_ROWS).encode() + ending.encode())
    expected = [(["Mario", "Rossi", "vive", "a", "Roma"], ["B-PER", "I-PER", "O", "O", "B-LOC"]),
                (["Ciao", "Laura"], ["O", "B-PER"])]
    assert [(s.tokens, s.labels) for s in read_conll(path).sentences] == expected
    assert [(s.tokens, s.labels) for s in parse_conll(path.read_bytes().decode())] == expected
    with LineSource(path) as lines:
        assert [(s.tokens, s.labels) for s in conll_sentences(lines, path)] == expected
    assert [s.line for s in read_conll(path).sentences] == [1, 7]
    assert guess_input_format(path) == "conll"
    code, output = invoke("evaluate", micro_model, path, "--json")
    assert code == 0, output
    code, output = invoke("predict", micro_model, path)
    assert code == 0 and len(output.strip().splitlines()) == 8, output


def test_6_conll_with_many_columns_is_conll_whatever_the_suffix(micro_model, tmp_path):
    from neuroner_tl.formats import guess_input_format

    rows = [f"{token} x x x x x x x x x x {label}" for token, label in
            [("Mario", "B-PER"), ("Rossi", "I-PER"), ("vive", "O"), ("a", "O"), ("Roma", "B-LOC")]]
    path = tmp_path / "ontonotes.txt"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert len(rows[0].split()) == 12 and guess_input_format(path) == "conll"
    code, output = invoke("predict", micro_model, path)
    assert code == 0 and [line.split()[0] for line in output.split("\n") if line] == \
        ["Mario", "Rossi", "vive", "a", "Roma"], output


@pytest.mark.parametrize("bad_line, lines", [(4, 6), (15001, 15010)])
def test_10_invalid_utf8_is_reported_on_its_line(micro_model, tmp_path, bad_line, lines):
    from neuroner_tl.conll import read_conll
    from neuroner_tl.errors import DataFormatError

    rows = [b"parola O" if (n + 1) % 7 else b"" for n in range(lines)]
    rows[bad_line - 1] = b"caf\xe9 O"
    path = tmp_path / "latin1.conll"
    path.write_bytes(b"\n".join(rows) + b"\n")
    one_line_error(*invoke("predict", micro_model, path, "-o", tmp_path / "out.conll"),
                   f"latin1.conll:{bad_line}: not UTF-8")
    assert not (tmp_path / "out.conll").exists()
    with pytest.raises(DataFormatError, match=f":{bad_line}: not UTF-8"):
        read_conll(path)
    text = tmp_path / "latin1.txt"
    text.write_bytes(b"\r".join(rows) + b"\r")
    one_line_error(*invoke("predict", micro_model, text, "--input-format", "text", "-o", tmp_path / "out.conll"),
                   f"latin1.txt:{bad_line}: not UTF-8")


def test_smaller_an_unusual_space_between_columns_is_named(tmp_path):
    from neuroner_tl.conll import read_conll
    from neuroner_tl.errors import DataFormatError

    path = tmp_path / "nbsp.conll"
    path.write_text("Mario B-PER\nRossi\u00a0Bianchi I-PER\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"nbsp.conll:2: expected 2 columns .* found 3 .*no-break space, U\+00A0"):
        read_conll(path)


# 5. standard input is detected like a file, whatever the output format ---------------------------------
@pytest.mark.parametrize("options", [[], ["--input-format", "text"]])
def test_5_raw_text_on_standard_input_to_brat_is_tokenized(micro_model, tmp_path, options):
    from neuroner_tl.brat import read_brat

    text = "Angela Merkel visited Paris\nMario Rossi vive a Roma\n"
    output = tmp_path / "out"
    code, printed = invoke("predict", micro_model, "-", "--format", "brat", "-o", output, *options, input=text)
    assert code == 0, printed
    assert (output / "stdin.txt").read_text(encoding="utf-8") == text
    assert [s.tokens for s in read_brat(output).sentences] == [["Angela", "Merkel", "visited", "Paris"],
                                                               ["Mario", "Rossi", "vive", "a", "Roma"]]
    code, printed = invoke("predict", micro_model, "-", "--format", "json", *options, input=text)
    assert code == 0 and '"tokens": ["Angela", "Merkel", "visited", "Paris"]' in printed, printed


def test_5_standard_input_is_not_a_brat_folder(micro_model, tmp_path):
    one_line_error(*invoke("predict", micro_model, "-", "--input-format", "brat", "--format", "brat", "-o",
                           tmp_path / "out", input="Angela Merkel\n"), "not a BRAT folder")


# 7. labels that look like a scheme's prefixes without types ----------------------------------------------
@pytest.mark.parametrize("rows, line, shown", [
    (["Mario B", "Rossi I", "vive O"], 1, "'B' is a scheme prefix without a type"),
    (["Mario O", "Rossi O", "", "Roma B", "vive O"], 4, "'B' is a scheme prefix"),
    (["Mario PER", "vive o"], 2, "'o' is not a tag: outside is a capital O"),
    (["Mario S", "vive O"], 1, "'S' is a scheme prefix"),
])
def test_7_labels_without_a_type_are_an_error_naming_the_line(tmp_path, rows, line, shown):
    from neuroner_tl.conll import read_conll
    from neuroner_tl.errors import DataFormatError

    path = tmp_path / "bare.conll"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"bare.conll:{line}: label {shown}"):
        read_conll(path)
    one_line_error(*invoke("train", path, "-o", tmp_path / "m", "--epochs", "1"), f"bare.conll:{line}:", shown)
    assert not (tmp_path / "m").exists()


def test_7_a_type_named_like_a_prefix_is_refused_everywhere(tmp_path):
    from neuroner_tl.brat import read_brat
    from neuroner_tl.corpora import check_types
    from neuroner_tl.errors import DataFormatError, NeuronerError

    with pytest.raises(NeuronerError, match="'I' cannot be an entity type name"):
        check_types(["I"])
    (tmp_path / "d.txt").write_text("Mario vive\n")
    (tmp_path / "d.ann").write_text("T1\tB 0 5\tMario\n")
    with pytest.raises(DataFormatError, match="d.ann:1: entity type 'B'"):
        read_brat(tmp_path)


# 9. nothing the model does not have is silently ignored ---------------------------------------------------
def test_9_a_type_that_differs_from_the_models_only_in_case_is_an_error(micro_model, tmp_path):
    target = tmp_path / "target.conll"
    target.write_text("Chiama B-person\nora O\n\nMario B-person\nRossi I-person\n", encoding="utf-8")
    assert "Person" in api.load_tagger(micro_model).entity_types
    for command in (["update", "-m", micro_model, "-t", target, "-e", "person", "-o", tmp_path / "v2"],
                    ["annotate", micro_model, target, "-e", "person", "-o", tmp_path / "a.conll"]):
        one_line_error(*invoke(*command), "'person'", "differs from the model's 'Person' only in case")
    assert not (tmp_path / "v2").exists() and not (tmp_path / "a.conll").exists()


def test_9_thresholds_for_unknown_types_or_booleans_are_errors(micro_model, conll_file, tmp_path):
    from neuroner_tl.errors import ThresholdError
    from neuroner_tl.serve import create_app
    from conftest import asgi_request

    tagger = api.load_tagger(micro_model)
    with pytest.raises(ThresholdError, match="'PERSON', a type the model does not have .*Person"):
        tagger.tag("Mario Rossi", min_confidence={"PERSON": 0.9})
    with pytest.raises(ThresholdError, match="not True"):
        tagger.tag("Mario Rossi", min_confidence=True)
    for source in (conll_file, "-"):
        one_line_error(*invoke("predict", micro_model, source, "--min-confidence", "PERSON=0.9",
                               input="Mario Rossi\n"), "'PERSON'", "Person")
    app = create_app(micro_model)
    for threshold in (True, {"Person": False}, {"PERSON": 0.9}, "0.5"):
        status, answer = asgi_request(app, "POST", "/tag", {"text": "Mario Rossi", "min_confidence": threshold})
        assert status == 422, (threshold, answer)
    status, answer = asgi_request(app, "POST", "/tag", {"text": "Mario Rossi", "min_confidence": {"Person": 0.5,
                                                                                                    "*": 1}})
    assert status == 200, answer


# 14. every file of a model folder is checked when it is read ------------------------------------------------
ASSETS = "saved_model/assets"


def _edit_json(folder, name, change):
    path = folder / name
    value = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(change(value)), encoding="utf-8")


def _without(key):
    return lambda value: {k: v for k, v in value.items() if k != key}


@pytest.mark.parametrize("name, change, expected", [
    (f"{ASSETS}/model.json", _without("labels"), "model.json: labels is missing"),
    (f"{ASSETS}/model.json", lambda v: {**v, "word_dim": "8"}, "model.json: word_dim must be an integer, not \"8\""),
    (f"{ASSETS}/model.json", lambda v: {**v, "labels": [1, "O"]}, "model.json: labels[0] must be a string"),
    (f"{ASSETS}/model.json", lambda v: [v], "model.json: the file must be an object"),
    (f"{ASSETS}/model.json", lambda v: {**v, "word_dim": 10 ** 12}, "word_dim must be in [1, 4096]"),
    (f"{ASSETS}/provenance.json", lambda v: [], "provenance.json: the file must be an object, not a list"),
    (f"{ASSETS}/provenance.json", lambda v: {**v, "trained_on": [{"role": "train"}]},
     "provenance.json: trained_on[0].sentences is missing"),
    (f"{ASSETS}/provenance.json", lambda v: None, "provenance.json: the file must be an object, not null"),
    (f"{ASSETS}/history.json", lambda v: {"epoch": 1}, "history.json: the file must be a list"),
    ("evaluation.json", lambda v: {**v, "dev": 3}, "evaluation.json: dev must be an object, not 3"),
    ("evaluation.json", lambda v: {**v, "dev": {"overall": {"f1": "high"}}}, "dev.overall.f1 must be a finite number"),
    (f"{ASSETS}/config.json", lambda v: {**v, "seed": 2 ** 32}, "config.json: hyperparameter seed must be in"),
    (f"{ASSETS}/config.json", lambda v: {**v, "token_lstm_units": 10 ** 9}, "token_lstm_units must be in [1, 4096]"),
    (f"{ASSETS}/config.json", lambda v: {**v, "char_embedding_dim": 10 ** 6}, "char_embedding_dim must be in"),
])
def test_14_hand_edited_model_json_files_are_one_line_naming_the_file_and_field(model, name, change, expected):
    _edit_json(model, name, change)
    one_line_error(*invoke("info", model), f"model folder {model}", expected)


@pytest.mark.parametrize("name, content, expected", [
    (f"{ASSETS}/provenance.json", b"{'trained_on': []}", "provenance.json is not valid JSON"),
    ("evaluation.json", b"{\"dev\": ", "evaluation.json is not valid JSON"),
    (f"{ASSETS}/labels.txt", b"O\nB-Per\xf3on\n", "labels.txt is not UTF-8 text"),
    (f"{ASSETS}/words.txt", b"\xff\xfe\n", "words.txt is not UTF-8 text"),
    (f"{ASSETS}/history.json", b"\xff", "history.json is not valid JSON"),
])
def test_14_damaged_model_files_are_one_line(model, name, content, expected):
    (model / name).write_bytes(content)
    one_line_error(*invoke("info", model), expected)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=6)
CORRUPTIONS = ("truncate", "flip", "swap lines")


def model_folder_files(folder):
    """Every file of a model folder, as paths within it: the SavedModel's, the records, checksums.json."""
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())


def corrupted(old: bytes, kind: str, fraction: float = 0.5, noise: bytes = b"\xff", value=None, pick: int = 1) -> bytes:
    """``old`` truncated, with bytes flipped or added, two of its lines swapped, or, for JSON, a value
    replaced, a key dropped or the whole file replaced by another JSON value."""
    at = int(fraction * len(old))
    if kind == "truncate":
        return old[:at]
    if kind == "flip":
        return old[:at] + noise + old[at + len(noise):]
    if kind == "append":
        return old + noise
    if kind == "swap lines":
        lines = old.split(b"\n")
        first = min(int(fraction * len(lines)), len(lines) - 1)
        second = pick % len(lines)
        lines[first], lines[second] = lines[second], lines[first]
        return b"\n".join(lines)
    parsed = json.loads(old)
    if kind == "replace" or not isinstance(parsed, dict) or not parsed:
        return json.dumps(value).encode()
    key = sorted(parsed)[pick % len(parsed)]
    if kind == "drop":
        parsed.pop(key)
    else:
        parsed[key] = value
    return json.dumps(parsed).encode()


def named_in(name: str, line: str) -> bool:
    """The error line names the corrupted file ``name`` (the variables by their folder)."""
    return ("variables" if "variables" in name else Path(name).name) in line


def test_14_every_corruption_of_every_model_file_breaks_its_checksum(micro_model):
    """A byte flipped, the file cut in half or two of its lines swapped, in each file of the folder:
    ``verify`` names it (checksums.json itself: it no longer reads, or names what it lists wrongly, or
    means the same as before)."""
    from neuroner_tl.errors import ModelFolderError

    with tempfile.TemporaryDirectory() as work:
        copy = shutil.copytree(micro_model, Path(work) / "m")
        names = model_folder_files(copy)
        assert "checksums.json" in names and "saved_model/saved_model.pb" in names and "training.png" in names
        for name in names:
            original = (copy / name).read_bytes()
            for kind in CORRUPTIONS:
                damaged = corrupted(original, kind)
                if damaged == original:
                    continue
                (copy / name).write_bytes(damaged)
                try:
                    verification = api.verify(copy)
                except ModelFolderError as error:
                    assert name == "checksums.json" and "checksums.json" in str(error), (name, kind, error)
                else:
                    assert name in verification.changed or (name == "checksums.json" and (
                        verification.ok or not verification.checked)), (name, kind, verification)
                (copy / name).write_bytes(original)
        assert api.verify(copy).ok


@st.composite
def corruptions(draw):
    """(which file: an index into the folder's files, how: a function of its bytes)."""
    pick = draw(st.integers(0, 10 ** 6))
    kind = draw(st.sampled_from(CORRUPTIONS + ("append", "value", "drop", "replace")))
    fraction = draw(st.floats(0, 1))
    noise = draw(st.binary(min_size=1, max_size=8))
    value = draw(JSON_VALUES)
    return pick, kind, lambda name, old: corrupted(old, kind if name.endswith(".json") or kind in CORRUPTIONS
                                                   + ("append",) else "flip", fraction, noise, value, pick)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruption=corruptions())
def test_14_property_a_corrupted_model_file_is_one_line_naming_it_or_loads_as_before_when_ignored(micro_model,
                                                                                                  corruption):
    """Any file of the folder corrupted: loading names it — every change to a model file is caught,
    the SavedModel's included; a plot or log is not needed to load. With --ignore-checksums the
    folder loads, or the file is one line naming it, as before checksums."""
    from neuroner_tl.checksums import MANIFEST, is_model_file

    pick, kind, corrupt = corruption
    with tempfile.TemporaryDirectory() as work:
        copy = shutil.copytree(micro_model, Path(work) / "m")
        names = model_folder_files(copy)
        name = names[pick % len(names)]
        old = (copy / name).read_bytes()
        (copy / name).write_bytes(corrupt(name, old))
        changed = (copy / name).read_bytes() != old
        checked = invoke("info", copy)
        ignored = invoke("--ignore-checksums", "info", copy)
    for (code, output), must_fail in ((checked, changed and (is_model_file(name) and name != MANIFEST)),
                                      (ignored, False)):
        if code == 0 and not must_fail:
            continue  # unchanged, a record, or (ignored) a harmless change: a byte in a weight
        one_line_error(code, output, f"model folder {copy}")
        line = output.strip().splitlines()[-1]
        assert named_in(name, line) or (name == MANIFEST and MANIFEST in line), (name, kind, output)


# 15. the embeddings command and vector files -----------------------------------------------------------
@pytest.mark.parametrize("options, expected", [
    (["--dim", "-5"], "--dim must be a whole number of at least 1, not -5"),
    (["--dim", "0"], "--dim must be"),
    (["--epochs", "0"], "--epochs must be"),
    (["--min-count", "0"], "--min-count must be"),
    (["--min-count", "50"], "no word occurs --min-count 50 times (the most frequent, 'Mario', occurs 3)"),
])
def test_15_embeddings_options_out_of_range_are_one_line(tmp_path, options, expected):
    text = tmp_path / "raw.txt"
    text.write_text("Mario vive a Roma.\nMario Rossi.\nMario.\n", encoding="utf-8")
    one_line_error(*invoke("embeddings", text, "-o", tmp_path / "v.vec", *options), expected)
    assert not (tmp_path / "v.vec").exists()


@pytest.mark.parametrize("content, expected", [
    (b"", "v.vec: is empty"),
    (b"2 2\nMario 0.1 0.2\nRoma nan 0.3\n", "v.vec: the vector of 'Roma' holds NaN or infinity"),
])
def test_15_empty_or_nan_vectors_are_one_line_naming_the_file(micro_data, tmp_path, content, expected):
    vectors = tmp_path / "v.vec"
    vectors.write_bytes(content)
    one_line_error(*invoke("train", micro_data["train"], "-o", tmp_path / "m", "--embeddings", vectors,
                           "--epochs", "1"), expected)


# 11. reading BRAT is linear -------------------------------------------------------------------------------
def _brat_document(folder, lines):
    folder.mkdir()
    row = "Mario Rossi vive a Roma con Laura Bianchi.\n"
    (folder / "doc.txt").write_text(row * lines, encoding="utf-8")
    annotations = []
    for number in range(lines):
        at = number * len(row)
        annotations += [f"T{2 * number + 1}\tPER {at} {at + 11}\tMario Rossi",
                        f"T{2 * number + 2}\tLOC {at + 19} {at + 23}\tRoma"]
    (folder / "doc.ann").write_text("\n".join(annotations) + "\n", encoding="utf-8")
    return folder


def test_11_reading_twice_the_brat_text_takes_less_than_three_times_as_long(tmp_path):
    import time

    from neuroner_tl.brat import read_brat

    def seconds(folder):
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            corpus = read_brat(folder)
            best = min(best, time.perf_counter() - started)
        return best, corpus

    small, corpus = seconds(_brat_document(tmp_path / "small", 1500))
    large, _ = seconds(_brat_document(tmp_path / "large", 3000))
    assert corpus.sentences[1].labels == ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O", "O", "O"]
    assert corpus.sentences[-1].line == 1500
    assert large < 3 * small, (small, large)


def test_smaller_brat_quirks_are_warned_about_with_the_file_and_id(tmp_path, capsys):
    from neuroner_tl.brat import read_brat

    folder = tmp_path / "brat"
    folder.mkdir()
    (folder / "a.txt").write_text("Mario Rossi vive a Roma.\n", encoding="utf-8")
    (folder / "a.ann").write_text("T1\tPER 0 11\tMario Rossi\nT2\tLOC 6 16\tRossi vive\nT3\tLOC 19 23\tRome\n")
    (folder / "orphan.ann").write_text("T1\tPER 0 5\tMario\n")
    (folder / "nested").mkdir()
    (folder / "nested" / "b.txt").write_text("Laura\n")
    corpus = read_brat(folder)
    warnings = capsys.readouterr().err
    assert "T2 (LOC 6-16) overlaps T1 (PER 0-11); T2 is left out" in warnings
    assert "a.ann:3: T3's text 'Rome' is not the document's 'Roma'" in warnings
    assert "orphan.ann has no orphan.txt" in warnings and "nested is a subfolder" in warnings
    assert corpus.sentences[0].labels == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]


# 12, 13. the HTTP server -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_limits_app(micro_model):
    pytest.importorskip("fastapi")
    from neuroner_tl.serve import Limits, create_app

    return create_app(micro_model, limits=Limits(max_texts=50, max_bytes=20_000, max_tokens=2000,
                                                 max_sentence_tokens=300))


def test_12_requests_beyond_the_limits_are_refused_with_413(small_limits_app):
    from conftest import asgi_request

    app = small_limits_app
    status, answer = asgi_request(app, "POST", "/tag", {"text": "Mario " * 5000})
    assert status == 413 and "larger than 20000 bytes" in answer["detail"]
    status, answer = asgi_request(app, "POST", "/tag", b"{" + b" " * 30_000 + b"}",
                                  headers=[(b"content-length", b"10")])  # a lie about the size does not help
    assert status == 413
    status, answer = asgi_request(app, "POST", "/tag", {"text": "Mario " * 301})
    assert status == 413 and "sentence 1 has 301 tokens; at most 300" in answer["detail"]
    status, answer = asgi_request(app, "POST", "/tag", {"texts": ["Mario Rossi .\n" * 100] * 8})
    assert status == 413 and "more than 2000 tokens" in answer["detail"]
    status, answer = asgi_request(app, "POST", "/tag/tokens", {"tokens": [["Mario"] * 301]})
    assert status == 413 and "at most 300" in answer["detail"]
    status, answer = asgi_request(app, "POST", "/tag", {"text": "Mario " * 300})
    assert status == 200, answer


@pytest.mark.parametrize("content_type, body", [
    ("text/plain", b'{"text": "Mario Rossi"}'), (None, b'{"text": "Mario Rossi"}'),
    ("application/x-www-form-urlencoded", b"text=Mario+Rossi"), ("multipart/form-data; boundary=x", b"--x--")])
def test_a_body_not_sent_as_json_is_refused_with_415_naming_the_content_type(small_limits_app, content_type, body):
    from conftest import asgi_request

    for route in ("/tag", "/tag/tokens"):
        status, answer = asgi_request(small_limits_app, "POST", route, body, content_type=content_type)
        assert status == 415 and "expected Content-Type: application/json" in answer["detail"], answer
        assert (repr(content_type) if content_type else "none") in answer["detail"]
    for declared in ("application/json; charset=utf-8", "application/vnd.api+json"):
        status, _ = asgi_request(small_limits_app, "POST", "/tag", {"text": "Mario Rossi"}, content_type=declared)
        assert status == 200
    assert asgi_request(small_limits_app, "GET", "/health", content_type=None)[0] == 200


def test_12_memory_stays_flat_under_repeated_large_requests(small_limits_app):
    from conftest import asgi_request

    def resident_mib():
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    texts = [" ".join(f"Parola{i % 97} Mario Rossi vive a Roma ." for i in range(n)) for n in (280, 150, 60)]
    sizes = []
    for round_ in range(8):
        for text in texts:
            status, _ = asgi_request(small_limits_app, "POST", "/tag", {"texts": [text.replace(" .", "")[:1600]]})
            assert status in (200, 413)
            status, _ = asgi_request(small_limits_app, "POST", "/tag", {"text": text[: 1500 + round_]})
            assert status == 200
        sizes.append(resident_mib())
    assert sizes[-1] - sizes[2] < 25, sizes


def test_13_model_route_shows_no_paths_and_gives_a_model_id(small_limits_app, micro_model, tmp_path):
    from conftest import asgi_request

    from neuroner_tl.model_io import model_id

    status, answer = asgi_request(small_limits_app, "GET", "/model")
    assert status == 200
    shown = json.dumps(answer)
    assert str(micro_model) not in shown and "/tmp" not in shown and "sha256" not in shown and "path" not in shown
    assert answer["labels"] == api.load_tagger(micro_model).labels and answer["limits"]["max_sentence_tokens"] == 300
    assert answer["model_id"] == model_id(shutil.copytree(micro_model, tmp_path / "copy"))
    assert "neuroner_tl" in answer and answer["format_version"] == 2


# 8. the tokenizer never splits a word at a combining mark, in the package and the SavedModel alike ---------
SCRIPTS = {"नरेंद्र मोदी दिल्ली में हैं।": ["नरेंद्र", "मोदी", "दिल्ली", "में", "हैं", "।"],
           "مُحَمَّد ذهب إلى القاهرة.": ["مُحَمَّد", "ذهب", "إلى", "القاهرة", "."],
           "Cafe\u0301 de l'Ope\u0301ra, Paris": ["Cafe\u0301", "de", "l'", "Ope\u0301ra", ",", "Paris"],
           "ஸ்ரீ ராமன் ภาษาไทย দু'টি": ["ஸ்ரீ", "ராமன்", "ภาษาไทย", "দু'", "টি"],
           "क्‍ष and क्‌ष 👩\u200d💻 x-ẍ\u0301": ["क्\u200dष", "and", "क्\u200cष", "👩\u200d", "💻", "x-ẍ\u0301"]}


def test_8_tokens_never_start_with_a_combining_mark_or_joiner_in_any_script(micro_model):
    from conftest import served_tokens

    from neuroner_tl.tokenizer import is_mark, split_sentences, tokenize

    for text, expected in SCRIPTS.items():
        tokens = tokenize(text)
        assert [t for t, _, _ in tokens] == expected, text
        assert all(not is_mark(t[0]) for t, _, _ in tokens) and all(text[a:b] == t for t, a, b in tokens)
    texts = list(SCRIPTS)
    for text, found in zip(texts, served_tokens(micro_model, texts)):
        assert found == [token for sentence in split_sentences(text) for token in sentence], text
    for text, entities in zip(texts, api.load_tagger(micro_model).tag(texts)):
        for entity in entities:  # an entity never ends inside a character
            assert not is_mark(text[entity["start"]]) and not is_mark((text + " ")[entity["end"]])


# the smaller items ------------------------------------------------------------------------------------------
# the command line, sending itself SIGTERM once tag_stream has handed over ARGV[1] predictions (the
# output's temporary is then open and partly written); it first prints the temporaries beside ARGV[2]
SIGTERM_WHILE_WRITING = r"""
import glob, os, signal, sys
from neuroner_tl import prediction

original = prediction.tag_stream
after, output = int(sys.argv[1]), sys.argv[2]


def tag_stream(*args, **kwargs):
    for number, pair in enumerate(original(*args, **kwargs), start=1):
        yield pair
        if number == after:
            folder, name = os.path.split(output)
            print("temporaries:", sorted(glob.glob(os.path.join(folder, "." + name + ".*.tmp"))), file=sys.stderr)
            signal.raise_signal(signal.SIGTERM)


prediction.tag_stream = tag_stream
sys.argv = ["neuroner-tl", *sys.argv[3:]]
from neuroner_tl.cli import main
main()
"""


def test_smaller_sigterm_during_predict_is_ctrl_c_and_leaves_no_temporary(micro_model, tmp_path):
    import subprocess
    import sys

    source = tmp_path / "big.txt"
    source.write_text("Mario Rossi vive a Roma con Laura Bianchi e lavora per la Banca di Milano.\n" * 400)
    output = tmp_path / "out.conll"
    completed = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_WRITING, "150", str(output), "predict",
                                str(micro_model), str(source), "-o", str(output)], capture_output=True, text=True,
                               timeout=600)
    stderr = completed.stderr
    assert "temporaries: ['" in stderr, "the output's temporary was being written when SIGTERM came: " + stderr
    assert completed.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert not output.exists() and not list(tmp_path.glob(".out.conll.*"))


def test_smaller_training_data_without_entities_is_an_error(tmp_path):
    path = tmp_path / "no_entities.conll"
    path.write_text("ciao O\na O\ntutti O\n\ngrazie O\n", encoding="utf-8")
    one_line_error(*invoke("train", path, "-o", tmp_path / "m", "--epochs", "1"), "no_entities.conll",
                   "no entity at all")
    assert not (tmp_path / "m").exists()


def test_smaller_demo_checks_its_sizes_before_writing(tmp_path):
    one_line_error(*invoke("demo", "--workdir", tmp_path / "demo", "--train-size", "-5"), "--train-size", "-5")
    assert not (tmp_path / "demo").exists()


def test_smaller_quiet_silences_tensorflows_python_warnings(micro_data, tmp_path):
    import logging

    logger = logging.getLogger("tensorflow")
    level = logger.level
    try:
        code, output = invoke("train", micro_data["train"], "-o", tmp_path / "m", "-q", "--epochs", "1",
                              "--set", "token_embedding_dim=8", "--set", "token_lstm_units=8")
        assert code == 0 and output == "", output
        assert logger.getEffectiveLevel() >= logging.ERROR
    finally:
        logger.setLevel(level)


# property tests of every reader: random line endings, encodings and label shapes ----------------------------
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])
TOKENS = st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs", "Cf")), min_size=1, max_size=6)
LABELS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "E-LOC", "S-ORG", "PER", "LOC", "B", "I", "o", "B-",
                          "12", "B-1", "i-PER", "X"])
READERS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@READERS
@given(sentences=st.lists(st.lists(st.tuples(TOKENS, LABELS), min_size=1, max_size=4), min_size=1, max_size=4),
       ending=ENDINGS, bom=st.booleans(), latin1=st.booleans())
def test_property_every_conll_reader_agrees_or_names_the_line(sentences, ending, bom, latin1):
    from neuroner_tl.conll import read_conll
    from neuroner_tl.errors import DataFormatError
    from neuroner_tl.lines import LineSource
    from neuroner_tl.prediction import conll_sentences

    text = ending.join(ending.join(f"{token} {label}" for token, label in rows) + ending for rows in sentences)
    try:
        raw = ("\ufeff" * bom + text).encode("latin-1" if latin1 else "utf-8")
    except UnicodeEncodeError:
        raw = ("\ufeff" * bom + text).encode("utf-8")
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "f.conll"
        path.write_bytes(raw)
        try:
            corpus = read_conll(path)
        except DataFormatError as error:
            assert str(error).startswith(f"{path}:") and "\n" not in str(error)
            return
        assert [s.tokens for s in corpus.sentences] == [[t for t, _ in rows] for rows in sentences]
        assert [s.labels for s in corpus.sentences] == [[label for _, label in rows] for rows in sentences]
        with LineSource(path) as lines:
            assert [s.tokens for s in conll_sentences(lines, path)] == [s.tokens for s in corpus.sentences]


@READERS
@given(lines=st.lists(st.text(max_size=30), min_size=1, max_size=5), ending=ENDINGS,
       noise=st.one_of(st.none(), st.tuples(st.integers(0, 4), st.sampled_from([b"\xff", b"\xc3", b"\xe9 "]))))
def test_property_raw_text_streamed_or_whole_gives_the_same_tokens_and_offsets(lines, ending, noise):
    from neuroner_tl.brat import text_sentences
    from neuroner_tl.errors import DataFormatError
    from neuroner_tl.lines import LineSource
    from neuroner_tl.prediction import text_sentences as streamed_sentences

    rows = [line.replace("\r", " ").replace("\n", " ").encode() for line in lines]
    if noise is not None:
        at, junk = noise
        rows[at % len(rows)] += junk
    raw = ending.encode().join(rows) + ending.encode()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "t.txt"
        path.write_bytes(raw)
        with LineSource(path) as source:
            try:
                streamed = [(s.tokens, s.offsets) for s in streamed_sentences(source, "t")]
            except DataFormatError as error:
                assert noise is not None and f"t.txt:{noise[0] % len(rows) + 1}: not UTF-8" in str(error)
                return
    text = raw.decode()
    assert streamed == [(s.tokens, s.offsets) for s in text_sentences(text)]
    assert all(text[a:b] == token for tokens, offsets in streamed for token, (a, b) in zip(tokens, offsets))


@READERS
@given(text=st.text(min_size=1, max_size=40), ending=ENDINGS,
       spans=st.lists(st.tuples(st.integers(-2, 45), st.integers(-2, 45), st.sampled_from(["PER", "LOC", "B", "1"])),
                      max_size=4))
def test_property_brat_reads_or_names_the_file_and_line(text, ending, spans):
    from neuroner_tl.brat import read_brat
    from neuroner_tl.errors import DataFormatError

    text = text.replace("\n", ending)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        (folder / "d.txt").write_bytes(text.encode())
        document = (folder / "d.txt").read_bytes().decode()
        (folder / "d.ann").write_text("".join(f"T{i}\t{kind} {a} {b}\t{document[max(a, 0):max(b, 0)]}\n"
                                              for i, (a, b, kind) in enumerate(spans, start=1)
                                              ).replace("\r", " ").replace("\n", " ") + "\n")
        try:
            corpus = read_brat(folder)
        except DataFormatError as error:
            assert str(error).startswith(str(folder)) and "\n" not in str(error)
            return
        for sentence in corpus.sentences:
            assert [document[a:b] for a, b in sentence.offsets] == sentence.tokens


@settings(max_examples=30, deadline=None)
@given(body=st.one_of(st.binary(max_size=40), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                      st.fixed_dictionaries({"text": JSON_VALUES}).map(lambda v: json.dumps(v).encode()),
                      st.fixed_dictionaries({"tokens": JSON_VALUES, "min_confidence": JSON_VALUES}).map(
                          lambda v: json.dumps(v).encode())),
       route=st.sampled_from(["/tag", "/tag/tokens"]))
@example(body=b"Infinity", route="/tag")  # FastAPI's own 422 echoed the input and failed on it: a 500
@example(body=b'{"text": "x", "min_confidence": NaN}', route="/tag")
def test_property_json_over_http_is_answered_or_refused_never_a_server_error(small_limits_app, body, route):
    from conftest import asgi_request

    status, answer = asgi_request(small_limits_app, "POST", route, body)
    assert status in (200, 400, 413, 422), (status, answer)  # 400: a body that is not JSON at all

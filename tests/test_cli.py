"""The command line end to end: train a tiny model, reload it from the SavedModel alone, predict,
evaluate, and get one-line errors for bad input."""

import json

import pytest
from click.testing import CliRunner

from neuroner_tl.cli import cli

from conftest import INTERRUPTED_EPOCHS, serve_without_package


@pytest.fixture(scope="module")
def cli_model(uninterrupted_training):
    """The model the command line trained in a process of its own (conftest's, which the tests of
    interrupted training compare with)."""
    folder, stderr = uninterrupted_training
    assert f"epoch {INTERRUPTED_EPOCHS:3d}" in stderr and "model saved" in stderr
    return folder


def test_trained_through_cli_reloads_from_saved_model_alone(cli_model, tiny_data):
    from neuroner_tl import api

    sentences = [s.tokens for s in api.load_corpus(tiny_data["test"]).sentences]
    served = serve_without_package(cli_model / "saved_model", sentences)
    assert served["tags"] == api.as_tagger(cli_model).predict(sentences)


def test_predict_formats_and_evaluate(cli_model, tiny_data, tmp_path):
    runner = CliRunner()
    out = tmp_path / "pred.conll"
    result = runner.invoke(cli, ["predict", str(cli_model), str(tiny_data["test"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    first = out.read_text().splitlines()[0].split()
    assert len(first) == 3  # token, gold, predicted
    text = tmp_path / "chat.txt"
    text.write_text("Buongiorno, sono Mario Rossi e il mio numero è 3331234567.\nGrazie mille.\n")
    result = runner.invoke(cli, ["predict", str(cli_model), str(text), "--format", "json"])
    records = json.loads(result.output)
    assert records[0]["tokens"][:3] == ["Buongiorno", ",", "sono"] and len(records) == 2
    brat_out = tmp_path / "brat"
    result = runner.invoke(cli, ["predict", str(cli_model), str(text), "--format", "brat", "-o", str(brat_out)])
    assert result.exit_code == 0 and (brat_out / "chat.ann").exists()
    result = runner.invoke(cli, ["evaluate", str(cli_model), str(tiny_data["test"]), "--json"])
    assert result.exit_code == 0 and "overall" in json.loads(result.output)
    result = runner.invoke(cli, ["info", str(cli_model)])
    assert "entity types: Address" in result.output


@pytest.mark.parametrize("content,expected", [
    ("Mario B-PER\nRossi I-PER extra\n", "bad.txt:2: expected 2 columns"),
    ("", "bad.txt: no sentences"),
    ("Mario Q-PER\n", "bad.txt:1: label 'Q-PER' is not a tag"),
])
def test_bad_input_is_one_line_and_nonzero(cli_model, tmp_path, content, expected):
    bad = tmp_path / "bad.txt"
    bad.write_text(content)
    result = CliRunner().invoke(cli, ["evaluate", str(cli_model), str(bad)])
    assert result.exit_code == 2
    assert expected in result.output and result.output.count("\n") == 1 and "Traceback" not in result.output


def test_errors_for_model_scheme_and_output(cli_model, tiny_data, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["info", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(cli, ["evaluate", str(cli_model), str(tiny_data["test"]), "--scheme", "XYZ"])
    assert result.exit_code == 2 and "unknown tag scheme" in result.output
    before = tiny_data["test"].read_bytes()
    result = runner.invoke(cli, ["predict", str(cli_model), str(tiny_data["test"]), "-o", str(tiny_data["test"]),
                                 "--force"])
    assert result.exit_code == 2 and "is an input" in result.output
    assert tiny_data["test"].read_bytes() == before
    result = runner.invoke(cli, ["train", str(tiny_data["train"]), "-o", str(cli_model), "--epochs", "1"])
    assert result.exit_code == 2 and "already exists" in result.output
    vectors = tmp_path / "v.vec"
    vectors.write_text("2 3\nciao 1 2\n")
    result = runner.invoke(cli, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "m"), "--embeddings", str(vectors)])
    assert result.exit_code == 2 and "v.vec" in result.output and not (tmp_path / "m").exists()


def test_embeddings_command(tmp_path):
    text = tmp_path / "raw.txt"
    text.write_text("Il cliente chiama il servizio clienti.\n" * 30)
    result = CliRunner().invoke(cli, ["embeddings", str(text), "-o", str(tmp_path / "own.vec"), "--dim", "8"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "own.vec").read_text().splitlines()[0].split()[1] == "8"

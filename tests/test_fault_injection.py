"""Fault injection (issue #10): ``train``, ``update`` and ``predict -o`` killed with SIGKILL at 20
seeded random moments each. After every kill each input is byte-identical and the output is either
absent or complete; the next run (with ``--resume`` where it applies) carries on, and the last one
finishes with a model equal to an uninterrupted run's. Slow: about five minutes on 2 cores."""

import hashlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neuroner_tl.conll import write_conll
from neuroner_tl.datasets import generate_corpus

pytestmark = pytest.mark.slow
KILLS = 20
SMALL = ["--batch-size", "16", "--set", "token_embedding_dim=16", "--set", "token_lstm_units=16"]


def cli(*args):
    return [sys.executable, "-m", "neuroner_tl.cli", *map(str, args)]


def digest(paths):
    result = {}
    for path in paths:
        files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        for file in files:
            result[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return result


def timed_run(command):
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return time.perf_counter() - started


def killed_after(command, seconds):
    """Run ``command``, SIGKILL it after ``seconds``; True if it was killed, False if it had finished."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.communicate()
        return True
    assert process.returncode == 0, stderr[-2000:]
    return False


def assert_complete_model_or_nothing(output: Path):
    if output.exists():
        names = {p.name for p in output.iterdir()}
        assert {"saved_model", "evaluation.json", "logs"} <= names, names
        assert (output / "saved_model" / "assets" / "model.json").is_file()
    leftovers = [p.name for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.")
                 and not p.name.endswith(".checkpoint")]
    assert not leftovers, f"half-written output beside the model: {leftovers}"


def weights(folder):
    from test_resume import weights as saved_weights

    return saved_weights(folder)


def kill_and_resume(command, output, inputs, reference, seed):
    """Kill ``command`` (then ``command --resume``) at random moments in [0, reference] seconds until
    it has been killed KILLS times, checking the inputs and the output after each kill; a run that
    finishes first must have written the uninterrupted run's model, and the chain starts over. Then
    the last run finishes with ``--resume``."""
    before = digest(inputs)
    expected = weights(reference[1])
    rng = np.random.default_rng(seed)
    attempt, kills = command, 0
    while kills < KILLS:
        kills += killed_after(attempt, float(rng.uniform(0.0, reference[0])))
        assert digest(inputs) == before, "an input changed"
        assert_complete_model_or_nothing(output)
        if output.exists():  # finished before the kill, or killed while tidying up after saving
            assert_same_weights(expected, weights(output))
            shutil.rmtree(output)
            shutil.rmtree(output.parent / f".{output.name}.checkpoint", ignore_errors=True)
            attempt = command
        else:
            attempt = command + ["--resume"]
    completed = subprocess.run(attempt, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert digest(inputs) == before
    assert_complete_model_or_nothing(output)
    assert not (output.parent / f".{output.name}.checkpoint").exists()
    assert_same_weights(expected, weights(output))


def assert_same_weights(expected, got):
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from neuroner_tl.datasets import write_dataset

    return write_dataset(tmp_path_factory.mktemp("fault_data"), "A", sizes=(120, 30, 30), seed=8)


def test_train_killed_anywhere_loses_nothing_and_resumes_to_the_same_model(small_data, tmp_path):
    def train(output):
        return cli("train", small_data["train"], "--dev", small_data["dev"], "-o", output, "--epochs", "3", *SMALL)

    reference = (timed_run(train(tmp_path / "reference")), tmp_path / "reference")
    kill_and_resume(train(tmp_path / "model"), tmp_path / "model", small_data.values(), reference, seed=10)


def test_update_killed_anywhere_loses_nothing_and_resumes_to_the_same_model(tiny_model, tmp_path):
    from test_update import only

    source = tiny_model[0]
    target = tmp_path / "target.conll"
    write_conll(target, only(generate_corpus("B", 80, seed=31), {"Address"}).sentences)

    def update(output):
        return cli("update", "-m", source, "-t", target, "-e", "Address", "-o", output, "--epochs", "3",
                   "--set", "patience_steps=0")

    source_before = digest([source])
    reference = (timed_run(update(tmp_path / "reference")), tmp_path / "reference")
    kill_and_resume(update(tmp_path / "model"), tmp_path / "model", [target], reference, seed=11)
    assert digest([source]) == source_before, "the source model is never written"


def contents(path: Path):
    """Each file's SHA-256 by its path inside ``path`` ("" for a file)."""
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("output_format, name", [("conll", "out.conll"), ("brat", "out_brat")])
def test_predict_killed_anywhere_leaves_the_old_output_or_the_new_one(tiny_model, tiny_data, tmp_path,
                                                                       output_format, name):
    source = tiny_data["test"]
    reference_output = tmp_path / f"reference_{name}"
    reference = timed_run(cli("predict", tiny_model[0], source, "-o", reference_output, "--format", output_format))
    expected = contents(reference_output)
    output = tmp_path / name
    before = digest([source, tiny_model[0]])
    rng = np.random.default_rng(12)
    command = cli("predict", tiny_model[0], source, "-o", output, "--format", output_format, "--force")
    kills = 0
    while kills < KILLS:
        kills += killed_after(command, float(rng.uniform(0.0, reference)))
        assert digest([source, tiny_model[0]]) == before
        if output.exists():
            assert contents(output) == expected, "a half-written output"
    assert not killed_after(command, 600)
    assert contents(output) == expected
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]
    assert not leftovers, f"temporary files of killed runs left behind: {leftovers}"

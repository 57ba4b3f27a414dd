"""Interrupted training: Ctrl-C and a killed process both resume with --resume, and the finished
model equals the one an uninterrupted run with the same seed produces."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

ARGS = ["--epochs", "5", "--batch-size", "16", "--set", "token_embedding_dim=16", "--set", "token_lstm_units=16",
        "--set", "patience=10", "--set", "learning_rate=0.005"]


def command(data, output, *extra):
    return [sys.executable, "-m", "neuroner_tl.cli", "train", str(data["train"]), "--dev", str(data["dev"]),
            "-o", str(output), *ARGS, *extra]


def interrupt_after(data, output, epoch, sig, *extra):
    """Start training, wait for the checkpoint of ``epoch``, send ``sig``; (exit code, stderr)."""
    return interrupt_process_after(command(data, output, *extra), output, epoch, sig)


def interrupt_process_after(arguments, output, epoch, sig):
    """Run ``arguments`` (a train or update writing ``output``), wait for the checkpoint of ``epoch``,
    send ``sig``; (exit code, stderr)."""
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    state = output.parent / f".{output.name}.checkpoint" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if json.loads(state.read_text())["epoch"] >= epoch:
                break
        except (OSError, ValueError):
            pass
        if process.poll() is not None:
            raise AssertionError(f"the run ended before epoch {epoch}: {process.stderr.read()[-2000:]}")
        time.sleep(0.05)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def weights(folder):
    """Every weight of a model folder, as its SavedModel's variables hold it."""
    from neuroner_tl.model import weight_arrays
    from neuroner_tl.model_io import load_tagger

    return weight_arrays(load_tagger(folder).network)


def test_interrupted_and_killed_training_resumes_to_the_same_model(tiny_data, tmp_path):
    full = tmp_path / "full"
    completed = subprocess.run(command(tiny_data, full), capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]

    resumed = tmp_path / "resumed"
    code, stderr = interrupt_after(tiny_data, resumed, 1, signal.SIGINT)  # Ctrl-C
    assert code == 130, stderr[-3000:]
    assert "checkpoint of epoch" in stderr and "--resume" in stderr.strip().splitlines()[-1]
    assert not resumed.exists(), "no half-written model"

    code, stderr = interrupt_after(tiny_data, resumed, 3, signal.SIGKILL, "--resume")  # a killed process
    assert code == -signal.SIGKILL
    assert "resuming after epoch" in stderr
    assert not resumed.exists()

    third = subprocess.run(command(tiny_data, resumed, "--resume"), capture_output=True, text=True)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "resuming after epoch" in third.stderr
    expected, got = weights(full), weights(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    history = json.loads((resumed / "saved_model" / "assets" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert not (tmp_path / ".resumed.checkpoint").exists(), "the checkpoint is removed once the model is saved"

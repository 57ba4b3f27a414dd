"""Interrupted training: Ctrl-C and a killed process both resume with --resume, and the finished
model equals the one an uninterrupted run with the same seed produces. The interruptions come at
chosen training steps (``NEURONER_TL_INTERRUPT``), never at a moment measured on the clock. Ctrl-C
and the last run are the command line run in this process; the killed run is a process of its own."""

import json
import signal

from neuroner_tl import api
from neuroner_tl.interrupts import INTERRUPT_VARIABLE

from conftest import (INTERRUPTED_EPOCHS, assert_same_weights, invoke, run_interrupted, saved_weights,
                      steps_per_epoch, train_command)

HISTORY = "saved_model/assets/history.json"


def test_interrupted_and_killed_training_resumes_to_the_same_model(tiny_data, uninterrupted_training, tmp_path,
                                                                   monkeypatch):
    full, _ = uninterrupted_training
    steps = steps_per_epoch(len(api.load_corpus(tiny_data["train"])))
    full_history = json.loads((full / HISTORY).read_text())
    assert max(full_history, key=lambda r: r["dev_f1"])["epoch"] > 2, \
        "the model kept must come from epochs after the interruptions for the comparison to mean much"

    resumed = tmp_path / "resumed"
    checkpoint = tmp_path / ".resumed.checkpoint"
    with monkeypatch.context() as ctrl_c:  # SIGINT in epoch 2
        ctrl_c.setenv(INTERRUPT_VARIABLE, f"INT@{steps + 2}")
        code, output = invoke(*train_command(tiny_data, resumed)[3:])
    assert code == 130, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert "checkpoint of epoch 1" in last and "--resume" in last, last
    assert "epoch   1" in output and "epoch   2" not in output, "stopped inside epoch 2"
    assert not resumed.exists(), "no half-written model"
    assert json.loads((checkpoint / "state.json").read_text())["epoch"] == 1

    killed = run_interrupted(train_command(tiny_data, resumed, "--resume"), step=steps + 3, sig="KILL")  # epoch 3
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert "resuming after epoch 1" in killed.stderr
    assert "epoch   2" in killed.stderr and "epoch   3" not in killed.stderr
    assert not resumed.exists()
    assert json.loads((checkpoint / "state.json").read_text())["epoch"] == 2

    code, output = invoke(*train_command(tiny_data, resumed, "--resume")[3:])
    assert code == 0, output[-2000:]
    assert "resuming after epoch 2" in output and "epoch   2" not in output
    assert_same_weights(saved_weights(full), saved_weights(resumed))
    history = json.loads((resumed / HISTORY).read_text())
    assert [r["epoch"] for r in history] == list(range(1, INTERRUPTED_EPOCHS + 1))
    assert [(r["loss"], r["dev_f1"]) for r in history] == [(r["loss"], r["dev_f1"]) for r in full_history]
    assert not checkpoint.exists(), "the checkpoint is removed once the model is saved"

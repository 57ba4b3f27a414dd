"""Fault injection (issue #10): ``train``, ``update`` and ``predict -o`` killed with SIGKILL at chosen
points: in the middle of an epoch (``NEURONER_TL_INTERRUPT``) and just before or after each step
that changes what is on disk (a checkpoint's state replaced, a model moved into place, a checkpoint
removed, an output renamed), which ``KILLER`` intercepts. After every kill each input is
byte-identical and the output is either absent or complete (or the old one); the next run (with
``--resume`` where it applies) carries on, and the chain ends with a model equal to an uninterrupted
run's. Slow: a new process for every kill."""

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from neuroner_tl import api

from conftest import (assert_same_weights, cli_command, invoke, run_interrupted, saved_weights, steps_per_epoch,
                      train_command, update_command)

pytestmark = pytest.mark.slow

# Runs the command line, SIGKILLing the process just before (or after) the NTH call of os.replace,
# os.rename or shutil.rmtree whose destination (rmtree: whose path) matches PATTERN (fnmatch; {pid}
# stands for the process's id, which names its temporaries).
KILLER = r"""
import fnmatch, json, os, shutil, signal, sys
operation, pattern, nth, when = json.loads(sys.argv[1])
pattern = pattern.replace("{pid}", str(os.getpid()))
seen = [0]


def watched(name, original, target):
    def call(*args, **kwargs):
        hit = False
        if name == operation and fnmatch.fnmatch(str(target(*args)), pattern):
            seen[0] += 1
            hit = seen[0] == nth
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return call


os.replace = watched("replace", os.replace, lambda source, destination, *rest: destination)
os.rename = watched("rename", os.rename, lambda source, destination, *rest: destination)
shutil.rmtree = watched("rmtree", shutil.rmtree, lambda path, *rest: path)
sys.argv = ["neuroner-tl", *sys.argv[2:]]
from neuroner_tl.cli import main
main()
"""


def killed_at(command, operation, pattern, nth=1, when="before"):
    """Run ``command`` (a ``cli_command`` list) under ``KILLER``; the process must have been killed."""
    args = [sys.executable, "-c", KILLER, json.dumps([operation, pattern, nth, when]), *command[3:]]
    completed = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert completed.returncode == -signal.SIGKILL, \
        f"not killed at {operation} {pattern} #{nth}: {completed.stderr[-3000:]}"
    return completed


def digest(paths):
    result = {}
    for path in paths:
        files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        for file in files:
            result[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return result


def assert_complete_model_or_nothing(output: Path):
    if output.exists():
        names = {p.name for p in output.iterdir()}
        assert {"saved_model", "evaluation.json", "logs", "checksums.json"} <= names, names
        assert (output / "saved_model" / "assets" / "model.json").is_file()
        assert api.verify(output).ok, "every file as its checksums.json recorded it"
    leftovers = [p.name for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.")
                 and not p.name.endswith(".checkpoint")]
    assert not leftovers, f"half-written output beside the model: {leftovers}"


def checkpoint_epoch(output: Path):
    """The epoch of the checkpoint an interrupted run left beside ``output`` (None: none finished)."""
    state = output.parent / f".{output.name}.checkpoint" / "state.json"
    return json.loads(state.read_text())["epoch"] if state.exists() else None


def kill_and_resume(command, output, inputs, reference, steps):
    """Kill ``command`` at each chosen point, resuming after each kill, and check the inputs, the
    output and the checkpoint every time; the last run, killed once its model is in place, must have
    written the uninterrupted run's model. ``steps``: training steps per epoch."""
    before = digest(inputs)
    resume = [*command, "--resume"]

    def check(expected_epoch):
        assert digest(inputs) == before, "an input changed"
        assert_complete_model_or_nothing(output)
        assert not output.exists()
        assert checkpoint_epoch(output) == expected_epoch

    # 1. in the first epoch: nothing finished, nothing to resume
    assert run_interrupted(command, step=2, sig="KILL").returncode == -signal.SIGKILL
    check(None)
    # 2. epoch 1 saved but its state.json not yet in place: still nothing to resume
    killed = killed_at(resume, "replace", "*/state.json", 1)
    assert "no finished epoch to resume from" in killed.stderr
    check(None)
    # 3. epoch 2's state.json just in place, epoch 1's files not yet removed
    killed_at(resume, "replace", "*/state.json", 2, when="after")
    check(2)
    # 4. in the middle of epoch 4, the resumed run's second epoch
    killed = run_interrupted(resume, step=steps + 2, sig="KILL")
    assert killed.returncode == -signal.SIGKILL and "resuming after epoch 2" in killed.stderr
    check(3)
    # 5. the last epoch trained and the model written, but not yet moved into place
    killed_at(resume, "rename", f"*/{output.name}")
    check(4)
    # 6. the model moved into place, its checkpoint not yet removed
    killed = killed_at(resume, "rmtree", f"*/.{output.name}.checkpoint", when="before")
    assert "resuming after epoch 4" in killed.stderr
    assert digest(inputs) == before
    assert_complete_model_or_nothing(output)
    assert output.exists(), "the model is in place"
    assert_same_weights(saved_weights(reference), saved_weights(output))


def test_train_killed_anywhere_loses_nothing_and_resumes_to_the_same_model(tiny_data, uninterrupted_training,
                                                                           tmp_path):
    output = tmp_path / "model"
    steps = steps_per_epoch(len(api.load_corpus(tiny_data["train"])))
    kill_and_resume(train_command(tiny_data, output), output, tiny_data.values(), uninterrupted_training[0], steps)


def test_update_killed_anywhere_loses_nothing_and_resumes_to_the_same_model(tiny_model, address_target,
                                                                            uninterrupted_update, tmp_path):
    source = tiny_model[0]
    source_before = digest([source])
    output = tmp_path / "model"
    reference, _, sentences = uninterrupted_update
    kill_and_resume(update_command(source, address_target, output), output, [address_target], reference,
                    steps_per_epoch(sentences))
    assert digest([source]) == source_before, "the source model is never written"


def contents(path: Path):
    """Each file's SHA-256 by its path inside ``path`` ("" for a file)."""
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*") if p.is_file()}


# (operation, on what, before or after it, what the output must then be): a CoNLL file is written
# to a temporary and renamed over the old one; BRAT output is a folder written beside the old one,
# which is renamed away (in the moment between the two renames there is neither), then removed
PREDICT_KILLS = {
    "conll": [("replace", "*/out.conll", "before", "old"), ("replace", "*/out.conll", "after", "new")],
    "brat": [("rename", "*/.out_brat.{pid}.old.tmp", "before", "old"), ("rename", "*/out_brat", "before", "none"),
             ("rmtree", "*/.out_brat.{pid}.old.tmp", "before", "new")],
}


@pytest.mark.parametrize("output_format, name", [("conll", "out.conll"), ("brat", "out_brat")])
def test_predict_killed_anywhere_leaves_the_old_output_or_the_new_one(tiny_model, tiny_data, tmp_path,
                                                                       output_format, name):
    source = tiny_data["test"]
    reference_output = tmp_path / f"reference_{name}"
    code, text = invoke("predict", tiny_model[0], source, "-o", reference_output, "--format", output_format)
    assert code == 0, text
    new = contents(reference_output)
    output = tmp_path / name
    if output_format == "conll":
        output.write_text("an earlier output\n")
    else:
        output.mkdir()
        (output / "doc.txt").write_text("an earlier document\n")
        (output / "doc.ann").write_text("")
    old = contents(output)
    before = digest([source, tiny_model[0]])
    command = cli_command("predict", tiny_model[0], source, "-o", output, "--format", output_format, "--force")
    for operation, pattern, when, expected in PREDICT_KILLS[output_format]:
        killed_at(command, operation, pattern, when=when)
        assert digest([source, tiny_model[0]]) == before
        found = contents(output) if output.exists() else None
        assert found == {"old": old, "new": new, "none": None}[expected], (operation, pattern, when)
    completed = subprocess.run(command, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert contents(output) == new
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]
    assert not leftovers, f"temporary files of killed runs left behind: {leftovers}"

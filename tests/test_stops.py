"""SIGINT and SIGTERM at chosen moments of the long-running commands, each in a process of its own:
before and during TensorFlow's import, as the model loads, in the middle of an eager BiLSTM step and
of a ``tf.function``'s tracing, inside a finalizer, a fixed time after the start, after the first
progress line, and in Python's teardown after the result. Whatever the moment before the result,
the command ends with its one ``interrupted ...`` line on stderr (after the progress lines it
printed before) and exit code 130 (README); a signal once the result is printed changes nothing."""

import json
import signal
import subprocess
import sys
import threading

import pytest

from conftest import cli_command

# Runs the command line; SIGNAL is sent at the moment TRIGGER names: ["call", "module:attribute", N]
# (the process sends it at the Nth call, once module has the attribute), ["import", "module"] (once
# module is being imported), ["after", SECONDS] (that long after main() starts) or ["exit"] (in
# Python's teardown, once main() has returned). A trigger that fired writes its name to ARGV[3].
STOPPER = r"""
import atexit, builtins, json, os, signal, sys, threading

trigger, name, fired = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
stop = signal.Signals["SIG" + name]
original_import = builtins.__import__


def send(deliver=signal.raise_signal):
    with open(fired, "w") as record:
        record.write(json.dumps(trigger))
    deliver(stop)


def patched(module_name, attribute, nth):
    owner = sys.modules.get(module_name)
    *path, last = attribute.split(".")
    for part in path:
        owner = getattr(owner, part, None)
    if not hasattr(owner, last):
        return False
    original, calls = getattr(owner, last), [0]

    def counted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            send()
        return original(*args, **kwargs)

    setattr(owner, last, counted)
    return True


def watching(*args, **kwargs):
    result = original_import(*args, **kwargs)
    if builtins.__import__ is watching:
        if trigger[0] == "import" and trigger[1] in sys.modules:
            builtins.__import__ = original_import
            send()
        elif trigger[0] == "call" and patched(*trigger[1].split(":"), trigger[2]):
            builtins.__import__ = original_import
    return result


if trigger[0] == "after":
    timer = threading.Timer(trigger[1], send, (lambda number: os.kill(os.getpid(), number),))
    timer.daemon = True
elif trigger[0] == "exit":
    atexit.register(send)
else:
    builtins.__import__ = watching
sys.argv = ["neuroner-tl", *sys.argv[4:]]
from neuroner_tl.cli import main
if trigger[0] == "after":
    timer.start()
main()
"""

NOISE = ("Traceback", "Error", "ERROR", "Exception", "never used", "Aborted", "WARNING")


def run_stopped(command, trigger, name, tmp_path):
    """``CompletedProcess`` of ``command`` (a ``cli_command`` list) stopped by signal ``name`` (INT,
    TERM) at ``trigger`` (``STOPPER``'s, or ["line", STREAM]: once the process printed a first line
    there); plus whether the trigger fired."""
    fired = tmp_path / "fired.json"
    if trigger[0] != "line":
        args = [sys.executable, "-c", STOPPER, json.dumps(trigger), name, str(fired), *command[3:]]
        completed = subprocess.run(args, capture_output=True, text=True, timeout=600)
        return completed, fired.exists()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched, other = (process.stdout, process.stderr) if trigger[1] == "stdout" else (process.stderr, process.stdout)
    other_text = []
    reader = threading.Thread(target=lambda: other_text.append(other.read()), daemon=True)
    reader.start()
    first = watched.readline()
    if first:
        process.send_signal(signal.Signals["SIG" + name])
    rest = watched.read()
    process.wait(timeout=600)
    reader.join()
    text = first + rest
    out, err = (text, other_text[0]) if trigger[1] == "stdout" else (other_text[0], text)
    return subprocess.CompletedProcess(command, process.returncode, out, err), bool(first)


def assert_one_interrupted_line(completed, progress_lines: bool):
    """Exit 130 and, on stderr, the command's one ``interrupted`` line, last; before it nothing
    (``progress_lines`` False) or only progress lines."""
    lines = completed.stderr.splitlines()
    assert completed.returncode == 130, (completed.returncode, completed.stderr[-3000:])
    assert lines and lines[-1].startswith("interrupted"), completed.stderr[-3000:]
    assert [line for line in lines if line.startswith("interrupted")] == lines[-1:], completed.stderr[-3000:]
    if not progress_lines:
        assert lines == lines[-1:], completed.stderr[-3000:]
    assert not [line for line in lines if any(mark in line for mark in NOISE)], completed.stderr[-3000:]


CALIBRATE_POINTS = {
    "before TensorFlow is imported": (["call", "neuroner_tl.cli:_quiet_tensorflow", 1], "TERM"),
    "during TensorFlow's import": (["import", "tensorflow.python.framework.ops"], "TERM"),
    "as the model loads": (["call", "neuroner_tl.model_io:load_tagger", 1], "TERM"),
    "mid eager BiLSTM step": (["call", "neuroner_tl.bilstm:_cell", 3], "INT"),
    "2 s after the start": (["after", 2.0], "INT"),
}


@pytest.mark.parametrize("point", list(CALIBRATE_POINTS))
def test_calibrate_stopped_anywhere_prints_one_line_and_exits_130(tiny_model, tiny_data, tmp_path, point):
    trigger, name = CALIBRATE_POINTS[point]
    output = tmp_path / "calibrated"
    command = cli_command("calibrate", tiny_model[0], tiny_data["dev"], "-o", output, "--objective", "likelihood")
    completed, fired = run_stopped(command, trigger, name, tmp_path)
    if trigger[0] == "after" and completed.returncode == 0:
        pytest.skip(f"calibrate ended within {trigger[1]} s")
    assert fired, f"the signal was never sent: {completed.stderr[-2000:]}"
    assert_one_interrupted_line(completed, progress_lines=False)
    assert completed.stderr == "interrupted; nothing was written\n"
    assert not output.exists() and not list(tmp_path.glob(".calibrated*"))


def test_a_signal_in_the_teardown_after_calibrates_result_changes_nothing(tiny_model, tiny_data, tmp_path):
    """The result is printed (stdout), the model written: SIGTERM then is ignored, Python's teardown
    included, where it would be printed as an error or kill the process (exit 143)."""
    output = tmp_path / "calibrated"
    command = cli_command("calibrate", tiny_model[0], tiny_data["dev"], "-o", output, "--objective", "likelihood")
    completed, fired = run_stopped(command, ["exit"], "TERM", tmp_path)
    assert fired and "temperature" in completed.stdout, completed.stderr[-2000:]
    assert (completed.returncode, completed.stderr) == (0, ""), (completed.returncode, completed.stderr[-2000:])
    assert (output / "saved_model").is_dir()


OTHER_POINTS = {
    "predict, mid tf.function tracing": ("predict", ["call", "neuroner_tl.bilstm:_cell", 2], "TERM"),
    "train, mid tf.function tracing": ("train", ["call", "neuroner_tl.bilstm:_cell", 4], "INT"),
    "update, after its first progress line": ("update", ["line", "stderr"], "INT"),
    "evaluate, mid tf.function tracing": ("evaluate", ["call", "neuroner_tl.bilstm:_cell", 2], "TERM"),
}


@pytest.mark.parametrize("point", list(OTHER_POINTS))
def test_the_other_long_commands_stopped_print_one_line_and_exit_130(micro_model, micro_data, address_target,
                                                                       tmp_path, point):
    command_name, trigger, name = OTHER_POINTS[point]
    output = tmp_path / "out"
    arguments = {
        "predict": [micro_model, micro_data["test"], "-o", output],
        "evaluate": [micro_model, micro_data["test"]],
        "train": [micro_data["train"], "--dev", micro_data["dev"], "-o", output, "--epochs", "2",
                  "--set", "token_embedding_dim=8", "--set", "token_lstm_units=8"],
        "update": ["-m", micro_model, "-t", address_target, "-e", "Address", "-o", output, "--epochs", "2"],
    }[command_name]
    completed, fired = run_stopped(cli_command(command_name, *arguments), trigger, name, tmp_path)
    assert fired, f"the signal was never sent: {completed.stderr[-2000:]}"
    assert_one_interrupted_line(completed, progress_lines=command_name in ("train", "update"))
    assert not output.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out") and not p.name.endswith(".checkpoint")]


# the same rules without TensorFlow, in a bare process: fast, and each moment exactly where it is meant
RULES = r"""
import os, signal, sys
from neuroner_tl import interrupts

stops = interrupts.handle_stops()
case = sys.argv[1]
if case == "before the work, stderr on /dev/null":
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # as while TensorFlow is imported
    signal.raise_signal(signal.SIGTERM)
    print("carried on")
if case == "inside a finalizer":
    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)
            print("finalizer done", flush=True)
    try:
        with stops.at_work():
            Finalized()
            for _ in range(10 ** 8):
                pass
            print("never stopped")
    except KeyboardInterrupt:
        print("stopped after the finalizer", flush=True)
        stops.leave(interrupts.EXIT_INTERRUPTED)
if case == "after the work":
    with stops.at_work():
        pass
    signal.raise_signal(signal.SIGTERM)
    stops.leave(0)
"""


@pytest.mark.parametrize("case, code, stdout, stderr", [
    ("before the work, stderr on /dev/null", 130, "", "interrupted; nothing was written\n"),
    ("inside a finalizer", 130, "finalizer done\nstopped after the finalizer\n", ""),
    ("after the work", 0, "", ""),
])
def test_the_rules_of_a_stop(case, code, stdout, stderr):
    """Before the command works: its line and exit 130 at once, on the real stderr; inside a finalizer:
    raised once the finalizer is done, not printed and dropped by Python; once the work is done:
    ignored."""
    completed = subprocess.run([sys.executable, "-c", RULES, case], capture_output=True, text=True, timeout=60)
    assert (completed.returncode, completed.stdout, completed.stderr) == (code, stdout, stderr)

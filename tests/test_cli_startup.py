"""The command line starts without TensorFlow where it needs none, and keeps TensorFlow's C++ log
lines off the terminal unless ``--verbose``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import neuroner_tl

PACKAGE_ROOT = Path(neuroner_tl.__file__).resolve().parents[1]


def run_python(*args):
    """A fresh interpreter on this tree, without the test session's TF_CPP_MIN_LOG_LEVEL."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "NEURONER_TL_VERBOSE_TF")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["train", "--help"], ["predict", "--help"]])
def test_help_and_version_do_not_import_tensorflow(args):
    code = ("import sys\nfrom neuroner_tl.cli import main\n"
            f"sys.argv = ['neuroner-tl', *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)")
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout or "version" in result.stdout
    assert result.stdout.strip().endswith("tensorflow loaded: False")


def test_a_command_keeps_tensorflow_log_lines_off_stderr(micro_model):
    result = run_python("-m", "neuroner_tl.cli", "info", str(micro_model))
    assert result.returncode == 0, result.stderr
    assert "entity types:" in result.stdout
    noise = [line for line in result.stderr.splitlines()
             if any(mark in line for mark in ("I0000", "W0000", "E0000", "oneDNN", "cuda", "cuInit", "absl"))]
    assert noise == []


def test_verbose_is_a_global_option():
    result = run_python("-m", "neuroner_tl.cli", "--help")
    assert "--verbose" in result.stdout

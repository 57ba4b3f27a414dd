import os
import signal
import threading
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

@pytest.fixture(autouse=True)
def python_handles_ctrl_c():
    """Every test starts with Python's own Ctrl-C handler: a handler another test of the same
    worker process left behind (ignored, or a server's) would turn the Ctrl-C that the interruption
    tests send themselves into nothing (seen once in a full run, not in any file run alone)."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_file(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs the real data in ../shared/data ({path} is absent)")
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Small generated customer-service splits (domain A), shared by the tests that train."""
    from neuroner_tl.datasets import write_dataset

    folder = tmp_path_factory.mktemp("tiny_data")
    return write_dataset(folder, "A", sizes=(240, 60, 60), seed=5)


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory):
    """A small model trained for a few epochs and saved; (folder, TrainResult)."""
    from neuroner_tl import api
    from neuroner_tl.config import Hyperparameters

    hp = Hyperparameters(token_embedding_dim=32, token_lstm_units=32, max_epochs=12, patience=12, batch_size=16,
                         learning_rate=0.005)
    folder = tmp_path_factory.mktemp("tiny_model") / "model"
    result = api.train(tiny_data["train"], folder, dev=tiny_data["dev"], test=tiny_data["test"], hp=hp, verbose=False)
    return folder, result


# the smallest model that is still a real model folder: for tests that only need one to exist, load
# or be damaged (about 10 s to train, once per session)
MICRO_HP = dict(token_embedding_dim=8, token_lstm_units=8, char_embedding_dim=4, char_lstm_units=4, max_epochs=1,
                patience=1, batch_size=16)


@pytest.fixture(scope="session")
def micro_data(tmp_path_factory):
    from neuroner_tl.datasets import write_dataset

    return write_dataset(tmp_path_factory.mktemp("micro_data"), "A", sizes=(40, 10, 10), seed=5)


@pytest.fixture(scope="session")
def micro_model(micro_data, tmp_path_factory):
    """A model folder trained for one epoch on 40 sentences with tiny layers; tests copy it before changing it."""
    from neuroner_tl import api
    from neuroner_tl.config import Hyperparameters

    folder = tmp_path_factory.mktemp("micro_model") / "model"
    api.train(micro_data["train"], folder, dev=micro_data["dev"], hp=Hyperparameters(**MICRO_HP), verbose=False)
    return folder


def invoke(*args, input=None):
    """(exit code, output) of the CLI run in this process."""
    from click.testing import CliRunner

    from neuroner_tl.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        return 1, result.output + "".join(traceback.format_exception(result.exception))
    return result.exit_code, result.output


def one_line_error(code, output, *expected):
    """The CLI stopped with exit code 2 and one line ``error: ...`` holding each of ``expected``."""
    assert code == 2, output
    lines = output.strip().splitlines()
    assert "Traceback" not in output and lines[-1].startswith("error: "), output
    for text in expected:
        assert text in lines[-1], output


def snapshot(folder):
    """Every file under ``folder`` and its bytes."""
    folder = Path(folder)
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def asgi_request(app, method, path, body=None, headers=(), content_type="application/json"):
    """(status, JSON or text) of one HTTP request to an ASGI application, in this process and
    without a network client: what a test of the server needs (``content_type`` None: no such header)."""
    import asyncio
    import json

    payload = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    typed = [] if content_type is None else [(b"content-type", content_type.encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("test", 80), "client": ("test", 1234),
             "headers": [*typed, (b"content-length", str(len(payload)).encode()), *headers]}
    chunks = [{"type": "http.request", "body": payload, "more_body": False}]
    sent = {"status": None, "body": b""}

    async def receive():
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    try:
        return sent["status"], json.loads(sent["body"])
    except ValueError:
        return sent["status"], sent["body"].decode(errors="replace")


SMALL_UPDATE_NETWORK = dict(token_embedding_dim=32, token_lstm_units=32, batch_size=16, learning_rate=0.005)


def keep_types(corpus, types, scheme="IOB2"):
    """``corpus`` with every span not of ``types`` relabelled O, written in ``scheme``: target data
    with only the target types annotated."""
    from neuroner_tl import tags
    from neuroner_tl.corpus import Corpus

    return Corpus([s.with_labels(tags.tags_from_spans([x for x in tags.spans(s.labels) if x.type in types], len(s),
                                                      scheme)) for s in corpus.sentences], scheme)


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def saved_weights(folder):
    """Every weight of a model folder, as its SavedModel's variables hold it."""
    from neuroner_tl.model import weight_arrays
    from neuroner_tl.model_io import load_tagger

    return weight_arrays(load_tagger(folder).network)


def assert_same_weights(expected, got):
    """Two ``saved_weights`` results are equal, bit for bit."""
    import numpy as np

    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def cli_command(*args):
    """The command line that runs ``neuroner-tl ARGS`` in a new Python process."""
    import sys

    return [sys.executable, "-m", "neuroner_tl.cli", *map(str, args)]


def run_interrupted(command, step=None, sig="INT"):
    """Run ``command`` (a list) in a new process; with ``step``, its trainer sends itself ``sig`` (INT,
    KILL, TERM) right after its ``step``-th training step (``NEURONER_TL_INTERRUPT``; a resumed run
    counts from 1 again). ``CompletedProcess`` with text output."""
    import subprocess

    from neuroner_tl.interrupts import INTERRUPT_VARIABLE

    environment = dict(os.environ)
    environment.pop(INTERRUPT_VARIABLE, None)
    if step is not None:
        environment[INTERRUPT_VARIABLE] = f"{sig}@{step}"
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)


# interrupted runs (test_resume, test_fault_injection, test_user_mistakes; test_cli) ---------------------
# the epochs are few and the layers small: these tests are about what is saved and resumed, and each
# run is a new process; at this high learning rate dev F1 still rises at the last epoch, so the model
# kept (the best epoch's) comes from epochs trained after the interruptions (test_resume checks it)
INTERRUPTED_EPOCHS = 4
INTERRUPTED_TRAINING = ["--epochs", str(INTERRUPTED_EPOCHS), "--batch-size", "16", "--set", "token_embedding_dim=16",
                        "--set", "token_lstm_units=16", "--set", "patience=10", "--set", "learning_rate=0.1"]


def train_command(data, output, *extra):
    """``neuroner-tl train`` of the tiny data into ``output``, as every interrupted-training test runs it."""
    return cli_command("train", data["train"], "--dev", data["dev"], "--output", output, *INTERRUPTED_TRAINING,
                       *extra)


def update_command(source, target, output, *extra):
    """``neuroner-tl update`` learning Address from ``target``, as every interrupted-update test runs it."""
    return cli_command("update", "-m", source, "-t", target, "-e", "Address", "-o", output, "--epochs",
                       INTERRUPTED_EPOCHS, "--patience", "10", "--set", "patience_steps=0", *extra)


def steps_per_epoch(sentences: int, batch_size: int = 16) -> int:
    import math

    return math.ceil(sentences / batch_size)


@pytest.fixture(scope="session")
def uninterrupted_training(tiny_data, tmp_path_factory):
    """(model folder, stderr) of ``train_command`` run without interruption, in a process of its own:
    what every interrupted and resumed training must end with, and test_cli's model."""
    folder = tmp_path_factory.mktemp("uninterrupted_training") / "model"
    completed = run_interrupted(train_command(tiny_data, folder))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return folder, completed.stderr


@pytest.fixture(scope="session")
def address_target(tmp_path_factory):
    """Domain-B sentences with only Address annotated: what the interrupted updates learn from."""
    from neuroner_tl.conll import write_conll
    from neuroner_tl.datasets import generate_corpus

    path = tmp_path_factory.mktemp("address_target") / "target.conll"
    write_conll(path, keep_types(generate_corpus("B", 120, seed=31), {"Address"}).sentences)
    return path


@pytest.fixture(scope="session")
def uninterrupted_update(tiny_model, address_target, tmp_path_factory):
    """(model folder, stderr, training sentences) of ``update_command`` run without interruption."""
    import re

    folder = tmp_path_factory.mktemp("uninterrupted_update") / "model"
    completed = run_interrupted(update_command(tiny_model[0], address_target, folder))
    assert completed.returncode == 0, completed.stderr[-3000:]
    sentences = int(re.search(r"predictions on (\d+) target sentences", completed.stderr).group(1))
    return folder, completed.stderr, sentences


# the CRF by enumeration of every tag sequence (test_crf, test_calibration) ---------------------------
def brute_force(inputs, length, transitions, start=None, end=None):
    """(every sequence's score, best sequence) for one example."""
    import itertools

    num_tags = inputs.shape[1]
    scores = {}
    for sequence in itertools.product(range(num_tags), repeat=length):
        score = sum(inputs[t, sequence[t]] for t in range(length))
        score += sum(transitions[sequence[t - 1], sequence[t]] for t in range(1, length))
        if length and start is not None:
            score += start[sequence[0]] + end[sequence[-1]]
        scores[sequence] = score
    return scores


def random_case(seed, batch=4, time=4, tags=3, boundaries=True):
    import numpy as np

    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(batch, time, tags)).astype(np.float32)
    transitions = rng.normal(size=(tags, tags)).astype(np.float32)
    lengths = rng.integers(0, time + 1, size=batch).astype(np.int32)
    lengths[0] = time  # one full, others random (0 and 1 included by the seeds below)
    start = rng.normal(size=tags).astype(np.float32) if boundaries else None
    end = rng.normal(size=tags).astype(np.float32) if boundaries else None
    return inputs, transitions, lengths, start, end


def enumerated_probabilities(inputs, length, transitions, start, end):
    """(every sequence, its probability) for one example."""
    import numpy as np

    scores = brute_force(inputs, length, transitions, start, end)
    sequences = list(scores)
    values = np.array([scores[s] for s in sequences], dtype=np.float64)
    return sequences, np.exp(values - np.logaddexp.reduce(values))


# a SavedModel served by TensorFlow alone (test_model_io, test_cli) ---------------------------------
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


def served_tokens(model_folder, texts):
    """Per text, ``(token, start, end)`` of each token the SavedModel's ``serve_text`` finds."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(Path(model_folder) / "saved_model"))
    served = {name: value.numpy() for name, value in loaded.signatures["serve_text"](texts=tf.constant(texts)).items()}
    found = []
    for row in range(len(texts)):
        count = int(served["token_count"][row])
        found.append([(t.decode(), int(a), int(b)) for t, a, b in zip(served["tokens"][row][:count],
                                                                      served["starts"][row][:count],
                                                                      served["ends"][row][:count])])
    return found


def serve_without_package(saved_model, sentences):
    """Tags and log-probabilities of ``sentences`` from the SavedModel, in a process without neuroner_tl."""
    import json
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-c", SERVE, str(saved_model), json.dumps(sentences)],
                               capture_output=True, text=True, check=True, cwd="/")
    return json.loads(completed.stdout.strip().splitlines()[-1])

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

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


def asgi_request(app, method, path, body=None, headers=()):
    """(status, JSON or text) of one HTTP request to an ASGI application, in this process and
    without a network client: what a test of the server needs."""
    import asyncio
    import json

    payload = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("test", 80), "client": ("test", 1234),
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                         *headers]}
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


def keep_types(corpus, types):
    """``corpus`` (IOB2) with every span not of ``types`` relabelled O: target data with only the
    target types annotated."""
    from neuroner_tl import tags
    from neuroner_tl.corpus import Corpus

    return Corpus([s.with_labels(tags.tags_from_spans([x for x in tags.spans(s.labels) if x.type in types], len(s),
                                                      "IOB2")) for s in corpus.sentences], "IOB2")

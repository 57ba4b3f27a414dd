"""Confidence, constrained decoding, in-memory tagging, streaming prediction and the HTTP service,
on the small trained model of conftest."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from neuroner_tl import api
from neuroner_tl import tags as tagging
from neuroner_tl.prediction import tag_stream
from neuroner_tl.predicted import Prediction
from neuroner_tl.thresholds import drop_unconfident, threshold_for

from conftest import free_port

REPO = Path(__file__).resolve().parents[1]


def assert_same_entities(found, expected):
    """Entity lists equal, confidences within float32 noise (batch composition changes the last digit)."""
    assert [{k: v for k, v in e.items() if k != "confidence"} for e in found] == \
        [{k: v for k, v in e.items() if k != "confidence"} for e in expected]
    np.testing.assert_allclose([e["confidence"] for e in found], [e["confidence"] for e in expected], atol=2e-4)


def test_thresholds_one_for_all_or_per_type():
    assert threshold_for(None, "PER") == 0.0
    assert threshold_for(0.7, "PER") == 0.7
    assert threshold_for({"PER": 0.9, "*": 0.5}, "PER") == 0.9
    assert threshold_for({"PER": 0.9, "*": 0.5}, "LOC") == 0.5
    assert threshold_for({"PER": 0.9}, "LOC") == 0.0


def test_dropping_an_entity_turns_its_tokens_to_o_and_keeps_the_others():
    prediction = Prediction(["B-PER", "I-PER", "O", "B-LOC"], 0.0, [0.9, 0.8, 0.99, 0.6], [0.7, 0.7, 0.99, 0.55])
    kept = drop_unconfident(prediction, {"LOC": 0.6, "*": 0.5}, "BIO")
    assert kept.tags == ["B-PER", "I-PER", "O", "O"]
    assert kept.token_confidences[3] == pytest.approx(0.4) and kept.span_confidences[:2] == [0.7, 0.7]
    assert drop_unconfident(prediction, 0.8, "BIO").tags == ["O", "O", "O", "O"]
    assert drop_unconfident(prediction, None, "BIO") is prediction


def test_tagger_confidences_are_probabilities_and_thresholds_drop_entities(tiny_model, tiny_data):
    _, result = tiny_model
    tagger = result.tagger
    sentences = api.load_corpus(tiny_data["test"]).sentences
    predictions = tagger.predict_with_confidence(sentences)
    assert [p.tags for p in predictions] == tagger.predict(sentences)
    entities = [e for p in predictions for e in p.entities()]
    assert entities, "the tiny model finds entities"
    for prediction in predictions:
        assert all(0.0 <= c <= 1.0 + 1e-6 for c in prediction.token_confidences)
        for entity in prediction.entities():
            # the span's path is one event among those where each of its tokens has its tag
            assert entity.confidence <= min(prediction.token_confidences[entity.start:entity.end]) + 1e-5
    threshold = float(np.median([e.confidence for e in entities]))
    filtered = tagger.predict_with_confidence(sentences, min_confidence=threshold)
    kept = [e for p in filtered for e in p.entities()]
    assert kept and len(kept) < len(entities)
    assert all(e.confidence >= threshold for e in kept)
    assert set(kept) <= set(entities)
    with pytest.raises(ValueError):
        tagger.predict_with_confidence(sentences[:1], min_confidence=1.5)


def forbidden_moves(tagger, predicted):
    """The moves (start and end included) of ``predicted`` that the tagger's scheme forbids."""
    allowed = tagging.allowed_transitions(tagger.hp.tag_scheme, tagger.labels)
    index, count = tagger.label_index, len(tagger.labels)
    moves = []
    for tags in predicted:
        steps = [count] + [index[t] for t in tags] + [count + 1]
        moves += [(a, b) for a, b in zip(steps, steps[1:]) if not allowed[a, b]]
    return moves


def test_constrained_decoding_never_outputs_a_move_the_scheme_forbids(tiny_model, tiny_data):
    """A copy of the tiny model whose transitions favour the forbidden moves into I-Person (from
    start, O or another type): decoded without the constraint it makes them; with it, never."""
    from neuroner_tl.model import assign_weights, weight_arrays

    folder, result = tiny_model
    sentences = api.load_corpus(tiny_data["test"]).sentences
    assert result.tagger.constrained and not forbidden_moves(result.tagger, result.tagger.predict(sentences))
    tagger = api.load_tagger(folder)  # a copy to change
    weights = weight_arrays(tagger.network)
    inside = tagger.label_index["I-Person"]
    allowed = tagging.allowed_transitions(tagger.hp.tag_scheme, tagger.labels)
    weights["crf/transitions"][~allowed[:, inside], inside] += 50.0
    assign_weights(tagger.network, weights)
    assert tagger.constrained
    constrained = tagger.predict(sentences)
    assert not forbidden_moves(tagger, constrained)
    tagger.constrained = False
    unconstrained = tagger.predict(sentences)
    assert forbidden_moves(tagger, unconstrained), "the crafted scores make the unconstrained decoder break the scheme"
    assert all(inside in move for move in forbidden_moves(tagger, unconstrained)), "into or out of I-Person"


def test_tag_gives_character_offsets_and_batches_like_single_calls(tiny_model):
    _, result = tiny_model
    tagger = result.tagger
    texts = ["Hello, my name is Laura Bianchi and I live in Via Roma 12, Milano.\nCall me at 333 1234567.",
             "", "Order 4451 never arrived. My e-mail is laura.bianchi@example.com."]
    batched = api.tag(tagger, texts)
    for found, text in zip(batched, texts):
        assert_same_entities(found, tagger.tag(text))
    assert batched[1] == []
    found = [entity for entities in batched for entity in entities]
    assert found, "the tiny model finds entities in customer-service text"
    for text, entities in zip(texts, batched):
        for entity in entities:
            assert text[entity["start"]:entity["end"]] == entity["text"]
            assert entity["type"] in tagger.entity_types and 0.0 < entity["confidence"] <= 1.0
    with pytest.raises(TypeError):
        tagger.tag([b"bytes"])


def test_streaming_in_chunks_equals_tagging_all_at_once(tiny_model, tiny_data):
    _, result = tiny_model
    sentences = api.load_corpus(tiny_data["test"]).sentences
    whole = result.tagger.predict_with_confidence(sentences)
    chunked = [p for _, p in tag_stream(result.tagger, iter(sentences), chunk=7)]
    assert [p.tags for p in chunked] == [p.tags for p in whole]
    np.testing.assert_allclose([c for p in chunked for c in p.span_confidences],
                               [c for p in whole for c in p.span_confidences], atol=2e-4)


def run_cli(*args, stdin=None):
    """The command line run in this process: (exit code, standard output, standard error)."""
    from click.testing import CliRunner

    from neuroner_tl.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_predict_reads_standard_input_and_writes_confidences(tiny_model, tiny_data, tmp_path):
    folder, result = tiny_model
    corpus = api.load_corpus(tiny_data["test"])
    conll = Path(tiny_data["test"]).read_text(encoding="utf-8")
    code, stdout, stderr = run_cli("predict", folder, "-", "--confidence", stdin=conll)
    assert code == 0, stderr
    rows = [line.split() for line in stdout.splitlines() if line.strip()]
    assert len(rows) == sum(len(s) for s in corpus.sentences)
    predicted = [tag for tags in result.tagger.predict(corpus.sentences) for tag in tags]
    assert [row[-2] for row in rows] == predicted
    assert all(0.0 <= float(row[-1]) <= 1.0 for row in rows)

    text = "Hello, I am Laura Bianchi from Milano.\nMy order 4451 never arrived.\n"
    code, stdout, stderr = run_cli("predict", folder, "-", "--format", "json", stdin=text)
    assert code == 0, stderr
    records = json.loads(stdout)
    streamed = [(e["type"], e["start"], e["end"], e["confidence"]) for r in records for e in r["entities"]]
    in_memory = [(e["type"], e["start"], e["end"], e["confidence"]) for e in result.tagger.tag(text)]
    assert [x[:3] for x in streamed] == [x[:3] for x in in_memory]
    np.testing.assert_allclose([x[3] for x in streamed], [x[3] for x in in_memory], atol=2e-4)
    for record in records:
        for entity in record["entities"]:
            assert "".join(text[entity["start"]:entity["end"]].split()) == "".join(entity["text"].split())
            tokens = record["tokens"][entity["token_start"]:entity["token_end"]]
            assert "".join(tokens) == "".join(entity["text"].split())


def test_min_confidence_on_the_command_line_drops_entities(tiny_model, tiny_data, tmp_path):
    folder, _ = tiny_model
    code, _, stderr = run_cli("predict", folder, tiny_data["test"], "--format", "json", "-o", tmp_path / "all.json")
    assert code == 0, stderr
    records = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))
    confidences = sorted(e["confidence"] for r in records for e in r["entities"])
    threshold = confidences[len(confidences) // 2]
    code, stdout, stderr = run_cli("predict", folder, tiny_data["test"], "--format", "json", "--min-confidence",
                                   threshold)
    assert code == 0, stderr
    kept = [e["confidence"] for r in json.loads(stdout) for e in r["entities"]]
    assert kept and all(c >= threshold - 1e-6 for c in kept) and len(kept) < len(confidences)
    code, _, stderr = run_cli("predict", folder, tiny_data["test"], "--min-confidence", "PER=2")
    assert code != 0 and "between 0 and 1" in stderr and "Traceback" not in stderr


def test_saved_model_returns_the_same_confidences(tiny_model, tiny_data):
    from neuroner_tl.batching import encode

    folder, result = tiny_model
    sentences = [s.tokens for s in api.load_corpus(tiny_data["test"]).sentences[:12]]
    script = (
        "import json, sys\nimport tensorflow as tf\nm = tf.saved_model.load(sys.argv[1])\n"
        "s = json.loads(sys.argv[2]); w = max(map(len, s))\n"
        "out = m.signatures['serving_default'](tokens=tf.constant([x + [''] * (w - len(x)) for x in s]))\n"
        "print(json.dumps({k: out[k].numpy().tolist() for k in ('confidence', 'span_confidence')}))\n")
    completed = subprocess.run([sys.executable, "-c", script, str(folder / "saved_model"), json.dumps(sentences)],
                               capture_output=True, text=True, check=True, cwd="/")
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    package = result.tagger.predict_encoded(encode(sentences, result.tagger.encoder), probabilities=True)
    for row, prediction in enumerate(package):
        length = len(prediction.tags)
        np.testing.assert_allclose(served["confidence"][row][:length], prediction.token_confidences, atol=1e-4)
        np.testing.assert_allclose(served["span_confidence"][row][:length], prediction.span_confidences, atol=1e-4)


# the HTTP service ------------------------------------------------------------------------------
def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(tiny_model):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    folder, _ = tiny_model
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "neuroner_tl.cli", "serve", str(folder), "--host", "127.0.0.1",
                                "--port", str(port), "--max-texts", "5"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if http(base + "/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail("the server did not start: " + (process.stdout.read() if process.stdout else ""))
        time.sleep(0.5)
    yield base
    process.terminate()
    process.wait(timeout=30)


def test_server_health_and_model_info(server, tiny_model):
    _, result = tiny_model
    assert http(server + "/health") == (200, {"status": "ok"})
    status, model = http(server + "/model")
    assert status == 200 and model["labels"] == result.tagger.labels and model["constrained_decoding"] is True
    assert model["hyperparameters"]["token_lstm_units"] == result.tagger.hp.token_lstm_units


def test_server_tags_texts_like_the_package(server, tiny_model):
    _, result = tiny_model
    texts = ["Hello, my name is Laura Bianchi and I live in Milano.", "My order 4451 never arrived."]
    status, single = http(server + "/tag", {"text": texts[0]})
    assert status == 200
    assert_same_entities(single["entities"], result.tagger.tag(texts[0]))
    status, batch = http(server + "/tag", {"texts": texts, "min_confidence": {"*": 0.0}})
    assert status == 200
    for found, expected in zip(batch["results"], result.tagger.tag(texts)):
        assert_same_entities(found, expected)
    status, tokens = http(server + "/tag/tokens", {"tokens": [["Laura", "Bianchi", "from", "Milano"]]})
    assert status == 200
    assert tokens["results"][0]["tags"] == result.tagger.predict([["Laura", "Bianchi", "from", "Milano"]])[0]


def test_server_refuses_bad_requests_with_a_reason(server):
    assert http(server + "/tag", {})[0] == 422
    status, body = http(server + "/tag", {"text": "x", "min_confidence": 3})
    assert status == 422 and "[0, 1]" in body["detail"]
    assert http(server + "/tag", {"texts": ["a"] * 6})[0] == 413
    status, body = http(server + "/tag/tokens", {"tokens": [["a", ""]]})
    assert status == 422 and "non-empty" in body["detail"]


def test_entity_offsets_are_characters_in_the_cli_the_api_http_and_the_saved_model(tiny_model, tmp_path):
    """One convention (README, "Entity offsets"): ``start``/``end`` are character offsets everywhere,
    token indices are ``token_start``/``token_end``."""
    pytest.importorskip("fastapi")
    import tensorflow as tf

    from neuroner_tl import api
    from neuroner_tl.serve import create_app

    from conftest import asgi_request, invoke

    folder, result = tiny_model
    text = "Hello, my name is Laura Bianchi and I live in Milano. My order 4451 never arrived."
    expected = [(e["type"], e["start"], e["end"]) for e in api.tag(folder, text)]
    assert expected and all(text[s:e] for _, s, e in expected)

    source = tmp_path / "input.txt"
    source.write_text(text + "\n")
    code, output = invoke("predict", folder, source, "--format", "json")
    assert code == 0, output
    records = json.loads(output)
    assert [(e["type"], e["start"], e["end"]) for r in records for e in r["entities"]] == expected
    for record in records:
        for entity in record["entities"]:
            assert record["tokens"][entity["token_start"]:entity["token_end"]] == entity["text"].split()

    status, answer = asgi_request(create_app(folder), "POST", "/tag", {"text": text})
    assert status == 200 and [(e["type"], e["start"], e["end"]) for e in answer["entities"]] == expected

    served = tf.saved_model.load(str(folder / "saved_model")).signatures["serve_text"](texts=tf.constant([text]))
    count = int(served["entity_count"].numpy()[0])
    found = [(served["entity_type"].numpy()[0][i].decode(), int(served["entity_start"].numpy()[0][i]),
              int(served["entity_end"].numpy()[0][i])) for i in range(count)]
    assert found == expected

    tokens = [["Laura", "Bianchi", "from", "Milano"]]
    status, answer = asgi_request(create_app(folder), "POST", "/tag/tokens", {"tokens": tokens})
    record = answer["results"][0]
    assert record["text"] == "Laura Bianchi from Milano"
    for entity in record["entities"]:
        assert record["text"][entity["start"]:entity["end"]] == " ".join(tokens[0][entity["token_start"]:entity["token_end"]])

    conll = tmp_path / "input.conll"
    conll.write_text("".join(f"{token} O\n" for token in tokens[0]) + "\n")
    code, output = invoke("predict", folder, conll, "--format", "json")
    record = json.loads(output)[0]
    assert record["text"] == "Laura Bianchi from Milano"
    for entity in record["entities"]:
        assert record["text"][entity["start"]:entity["end"]] == entity["text"]

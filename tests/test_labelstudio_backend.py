"""The Label Studio ML backend driven with the requests Label Studio and the reference backend's tests send."""

import base64
import io
import json
import math
import shutil
import time
from pathlib import Path

import pytest

from conftest import asgi_request, invoke, one_line_error, snapshot
from labelstudio_tasks import (CONFIG, GREETING_TEXTS, annotated_sentences, annotation_event, predict_request,
                               setup_request, texts)

pytest.importorskip("fastapi")

from neuroner_tl import api, selection  # noqa: E402
from neuroner_tl.errors import NeuronerError  # noqa: E402
from neuroner_tl.labelstudio_backend import (BackendSettings, create_backend_app, task_prediction,  # noqa: E402
                                             task_score)
from neuroner_tl.labelstudio_config import (LabelingConfigError, map_labels, parse_label_pairs,  # noqa: E402
                                            parse_labeling_config)
from neuroner_tl.labelstudio_learning import (LearningSettings, authorization, export_tasks,  # noqa: E402
                                              is_dev_task)

LEARNING_TASKS = 40
# a tiny update: 32 training sentences, 30 epochs of 2 steps (about 25 s on two cores)
TINY_UPDATE = (("max_epochs", 30), ("patience", 30), ("batch_size", 16))


def backend_app(model, models_dir, **learning):
    settings = BackendSettings(learning=LearningSettings(**{"options": TINY_UPDATE, "verbose": False, **learning}))
    return create_backend_app(model, models_dir, settings)


@pytest.fixture()
def base_app(micro_model, tmp_path):
    app = backend_app(micro_model, tmp_path / "models", train_every=1000)
    yield app
    app.backend.close()


# the labeling config -----------------------------------------------------------------------------------
def test_the_config_names_the_control_the_text_and_its_labels():
    config = parse_labeling_config(CONFIG)
    assert (config.from_name, config.to_name, config.text_key) == ("ner", "txt", "text")
    assert config.labels == ("Person", "Organization", "Greeting")
    aliased = parse_labeling_config('<View><Text name="a" value="$body"/><Text name="b" value="$title"/>'
                                    '<Labels name="l" toName="b,a"><Label value="Person" alias="PER"/></Labels></View>')
    assert (aliased.to_name, aliased.text_key, aliased.labels) == ("b", "title", ("PER",))


@pytest.mark.parametrize("xml, expected", [
    ('<View><Choices name="c" toName="t"><Choice value="x"/></Choices><Text name="t" value="$text"/></View>',
     "no <Labels> control on a <Text>"),
    ('<View><Labels name="l" toName="t"><Label value="X"/></Labels><Text name="t" value="text"/></View>',
     "expected a task field such as \"$text\""),
    ('<View><Labels name="l" toName="t"></Labels><Text name="t" value="$text"/></View>', "has no <Label value"),
    ('<View><Labels', "not valid XML"),
    ('<!DOCTYPE x [<!ENTITY a "aaaa">]><View/>', "DOCTYPE"),
    ("", "no labeling config")])
def test_a_config_the_backend_cannot_serve_says_what_it_expected(xml, expected):
    with pytest.raises(LabelingConfigError, match=expected.replace("$", r"\$").replace("(", r"\(")):
        parse_labeling_config(xml)


def test_labels_map_to_the_models_types_by_option_name_or_case_and_the_rest_are_new():
    config = parse_labeling_config('<View><Labels name="l" toName="t"><Label value="Human"/><Label value="location"/>'
                                   '<Label value="Phone"/><Label value="Disease"/></Labels><Text name="t" '
                                   'value="$text"/></View>')
    label_map = map_labels(config, ["Person", "Location", "Phone", "Organization"], {"Person": "Human"})
    assert label_map.pairs == (("Person", "Human"), ("Location", "location"), ("Phone", "Phone"))
    assert label_map.new == ("Disease",)
    assert label_map.label_of("Organization") is None and label_map.type_of("Human") == "Person"
    assert parse_label_pairs(["PER=Person"]) == {"PER": "Person"}
    with pytest.raises(NeuronerError, match="expected TYPE=LABEL"):
        parse_label_pairs(["Person"])


def test_a_prediction_holds_the_configs_labels_only_and_scores_the_task_by_their_mean_confidence():
    config = parse_labeling_config(CONFIG)
    label_map = map_labels(config, ["PER", "Phone", "Organization"], {"PER": "Person"})
    text = "Mario Rossi , 345 1234567 , ACME"
    entities = [{"type": "PER", "text": "Mario Rossi", "start": 0, "end": 11, "confidence": 0.9},
                {"type": "Phone", "text": "345 1234567", "start": 14, "end": 25, "confidence": 0.3},
                {"type": "Organization", "text": "ACME", "start": 28, "end": 32, "confidence": 0.5}]
    prediction = task_prediction(entities, config, label_map, "v0003@abc", 17, 0.25)
    assert [(r["value"]["labels"], r["value"]["text"]) for r in prediction["result"]] == [
        (["Person"], "Mario Rossi"), (["Organization"], "ACME")]  # the config shows no Phone
    assert all(text[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"] for r in prediction["result"])
    assert {(r["from_name"], r["to_name"], r["type"]) for r in prediction["result"]} == {("ner", "txt", "labels")}
    assert [r["id"] for r in prediction["result"]] == ["17_1", "17_2"]
    assert prediction["score"] == 0.25 and prediction["model_version"] == "v0003@abc"
    assert task_score(0.0) == 1.0 and task_score(math.log(2)) == pytest.approx(0.5)


def test_dev_tasks_are_chosen_by_id_for_good():
    held_out = [i for i in range(1, 1001) if is_dev_task(i, 20)]
    assert 150 < len(held_out) < 250
    assert held_out == [i for i in range(1, 1001) if is_dev_task(i, 20)]
    assert set(held_out) <= {i for i in range(1, 1001) if is_dev_task(i, 40)}


# the routes before any learning -------------------------------------------------------------------------
def test_health_and_root_answer_up(base_app, micro_model):
    for path in ("/health", "/"):
        status, answer = asgi_request(base_app, "GET", path)
        assert status == 200 and answer["status"] == "UP" and answer["model_class"] == "neuroner_tl"
        assert answer["model_version"] == api.model_version(micro_model) and answer["training"] is False
    assert asgi_request(base_app, "GET", "/metrics") == (200, {})


def test_setup_returns_the_served_model_version(base_app, micro_model):
    status, answer = asgi_request(base_app, "POST", "/setup", setup_request())
    assert (status, answer) == (200, {"model_version": api.model_version(micro_model)})
    image_only = "<View><Image name='i' value='$i'/></View>"
    status, answer = asgi_request(base_app, "POST", "/setup", setup_request(schema=image_only))
    assert status == 422 and "no <Labels> control on a <Text>" in answer["detail"]


def test_predict_answers_every_task_in_label_studios_shape(base_app, micro_model):
    request = predict_request(texts(6))
    status, answer = asgi_request(base_app, "POST", "/predict", request)
    assert status == 200, answer
    assert len(answer["results"]) == 6
    for task, prediction in zip(request["tasks"], answer["results"]):
        assert prediction["model_version"] == api.model_version(micro_model)
        text = task["data"]["text"]
        for region in prediction["result"]:
            assert (region["from_name"], region["to_name"], region["type"]) == ("ner", "txt", "labels")
            assert region["value"]["labels"][0] in ("Person", "Organization")
            assert text[region["value"]["start"]:region["value"]["end"]] == region["value"]["text"]
    # each task's score is how sure the model is of its tagging, the uncertainty select ranks by
    doubts = selection.document_uncertainty(api.as_tagger(micro_model), [t["data"]["text"] for t in request["tasks"]])
    assert [p["score"] for p in answer["results"]] == pytest.approx([math.exp(-d) for d in doubts], abs=1e-6)
    assert len({p["score"] for p in answer["results"]}) > 1
    assert any(prediction["result"] for prediction in answer["results"])  # the micro model finds something


def test_predict_refuses_a_task_without_the_configs_text_and_requests_beyond_the_limits(micro_model, tmp_path):
    settings = BackendSettings(limits=api_limits(max_texts=3), learning=LearningSettings(verbose=False))
    app = create_backend_app(micro_model, tmp_path / "models", settings)
    try:
        request = predict_request(["one text"])
        request["tasks"][0]["data"] = {"sentence": "one text"}
        status, answer = asgi_request(app, "POST", "/predict", request)
        assert status == 422 and "task 1 (id 1) has no text in data.text" in answer["detail"], answer
        status, answer = asgi_request(app, "POST", "/predict", predict_request(["a"] * 4))
        assert status == 413 and "4 tasks in one request; at most 3" in answer["detail"]
        status, answer = asgi_request(app, "POST", "/predict", {"tasks": [], "label_config": CONFIG})
        assert (status, answer["results"]) == (200, [])
    finally:
        app.backend.close()


def api_limits(**changes):
    import dataclasses

    from neuroner_tl.labelstudio_backend import BACKEND_LIMITS

    return dataclasses.replace(BACKEND_LIMITS, **changes)


def test_basic_auth_guards_every_route(micro_model, tmp_path):
    settings = BackendSettings(learning=LearningSettings(verbose=False), basic_auth=("studio", "s3cret"))
    app = create_backend_app(micro_model, tmp_path / "models", settings)
    try:
        good = [(b"authorization", b"Basic " + base64.b64encode(b"studio:s3cret"))]
        bad = [(b"authorization", b"Basic " + base64.b64encode(b"studio:guess"))]
        for headers in ((), bad):
            assert asgi_request(app, "GET", "/health", headers=headers)[0] == 401
            assert asgi_request(app, "POST", "/predict", predict_request(["Mario"]), headers=headers)[0] == 401
        assert asgi_request(app, "GET", "/health", headers=good)[0] == 200
        assert asgi_request(app, "POST", "/predict", predict_request(["Mario"]), headers=good)[0] == 200
    finally:
        app.backend.close()


def test_webhooks_keep_submissions_forget_deleted_ones_and_ignore_other_projects_and_events(base_app):
    folder = base_app.backend.store.folder
    status, answer = asgi_request(base_app, "POST", "/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 1}})
    assert (status, answer) == (200, {"status": "Unknown event"})
    (text, result), = annotated_sentences(1)
    status, answer = asgi_request(base_app, "POST", "/webhook", annotation_event(7, text, result))
    assert status == 201 and answer["status"] == "ok" and "1 new annotations of 1000" in answer["result"]
    kept = json.loads((folder / "annotations.json").read_text(encoding="utf-8"))
    assert kept["project"] == "1" and kept["label_config"] == CONFIG and kept["pending"] == ["7"]
    assert kept["tasks"]["7"]["annotations"][0]["result"] == result
    status, answer = asgi_request(base_app, "POST", "/webhook", annotation_event(8, text, result, project_id=2))
    assert status == 200 and "learns from project 1" in answer["status"]
    status, answer = asgi_request(base_app, "POST", "/webhook", {"action": "ANNOTATIONS_DELETED",
                                                                 "project": {"id": 1}, "annotations": [{"id": 1007}]})
    assert status == 201 and answer["result"] == "1 annotations forgotten"
    assert json.loads((folder / "annotations.json").read_text(encoding="utf-8"))["tasks"] == {}
    status, answer = asgi_request(base_app, "POST", "/webhook", {"action": "ANNOTATION_CREATED", "project": {"id": 1}})
    assert status == 422 and "needs \"annotation\" and \"task\"" in answer["detail"]
    assert asgi_request(base_app, "POST", "/train", {"annotations": [], "project": "1.1"})[0] == 400


def test_start_training_without_a_dev_task_says_so_and_serves_the_same_model(base_app, micro_model):
    train_only = [i for i in range(1, 50) if not is_dev_task(i, 20)][:3]
    for task_id, (text, result) in zip(train_only, annotated_sentences(3)):
        asgi_request(base_app, "POST", "/webhook", annotation_event(task_id, text, result))
    status, answer = asgi_request(base_app, "POST", "/webhook", {"action": "START_TRAINING",
                                                                 "project": {"id": 1, "label_config": CONFIG}})
    assert status == 201 and answer["result"] == "update started"
    assert base_app.backend.learner.wait_idle(120)
    last = asgi_request(base_app, "GET", "/health")[1]["last_update"]
    assert last["outcome"] == "skipped" and "3 training and 0 dev tasks" in last["reason"]
    assert asgi_request(base_app, "GET", "/health")[1]["model_version"] == api.model_version(micro_model)


# learning from submissions ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def learned(tiny_model, tmp_path_factory):
    """(app, what happened): 40 submitted tasks make the backend update the tiny model to learn Greeting."""
    folder = tmp_path_factory.mktemp("learned") / "models"
    base = tiny_model[0]
    before = snapshot(base)
    app = backend_app(base, folder, train_every=LEARNING_TASKS)
    seen = {}
    for task_id, (text, result) in enumerate(annotated_sentences(LEARNING_TASKS), start=1):
        status, answer = asgi_request(app, "POST", "/webhook", annotation_event(task_id, text, result))
        assert status == 201, answer
    seen["started"] = answer["result"]
    started = time.perf_counter()
    seen["during"] = asgi_request(app, "POST", "/predict", predict_request(GREETING_TEXTS))
    seen["health_during"] = asgi_request(app, "GET", "/health")[1]
    seen["predict_seconds"] = time.perf_counter() - started
    assert app.backend.learner.wait_idle(600)
    seen["base_unchanged"] = snapshot(base) == before
    yield app, seen
    app.backend.close()


def test_submissions_start_an_update_and_predict_is_answered_meanwhile(learned, tiny_model):
    app, seen = learned
    assert seen["started"] == "update started"
    assert seen["health_during"]["training"] is True
    status, answer = seen["during"]
    assert status == 200 and answer["model_version"] == api.model_version(tiny_model[0])  # the base, still
    assert seen["predict_seconds"] < 15


def test_the_new_version_predicts_the_new_type_and_the_base_is_never_written(learned):
    app, seen = learned
    health = asgi_request(app, "GET", "/health")[1]
    last = health["last_update"]
    assert last["outcome"] == "accepted" and last["version"] == "v0001" and last["types"] == ["Greeting"]
    assert last["dev_f1_after"] >= last["dev_f1_before"]
    assert last["train_tasks"] + last["dev_tasks"] == LEARNING_TASKS
    folder = app.backend.store.folder
    assert health["model_version"] == api.model_version(folder / "v0001")
    assert asgi_request(app, "POST", "/setup", setup_request())[1] == {"model_version": health["model_version"]}
    status, answer = asgi_request(app, "POST", "/predict", predict_request(GREETING_TEXTS))
    greetings = [[r["value"]["text"] for r in p["result"] if r["value"]["labels"] == ["Greeting"]]
                 for p in answer["results"]]
    assert "Buongiorno" in greetings[0] and "salve" in greetings[1], answer
    assert {p["model_version"] for p in answer["results"]} == {health["model_version"]}
    assert asgi_request(app, "GET", "/versions")[1] == {"versions": ["v0001"]}
    assert seen["base_unchanged"]
    state = json.loads((folder / "backend.json").read_text(encoding="utf-8"))
    assert state["updates"][-1]["version"] == "v0001"
    dev = json.loads((folder / "annotations" / "v0001-dev.json").read_text(encoding="utf-8"))
    assert dev and all(is_dev_task(task["id"], 20) for task in dev)


def test_an_update_worse_on_dev_is_not_served(learned, tiny_model, tmp_path, monkeypatch):
    from neuroner_tl import labelstudio_learning

    app, _ = learned
    models = tmp_path / "models"
    shutil.copytree(app.backend.store.folder, models, ignore=shutil.ignore_patterns(".backend.lock"))
    again = backend_app(tiny_model[0], models, train_every=1000, options=(("max_epochs", 2), ("patience", 2)))
    try:
        served = again.backend.served
        assert served.folder.name == "v0001"  # a restart serves the newest version
        monkeypatch.setattr(labelstudio_learning, "dev_f1", lambda tagger, corpus, types:
                            50.0 if tagger is served.tagger else 10.0)
        asgi_request(again, "POST", "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
        assert again.backend.learner.wait_idle(600)
        last = asgi_request(again, "GET", "/health")[1]["last_update"]
        assert last["outcome"] == "rejected" and "dev F1 10.00 is below the served model's 50.00" in last["reason"]
        assert again.backend.served is served and [p.name for p in again.backend.store.versions()] == ["v0001"]
        assert not any(p.name.startswith("candidate-") for p in models.iterdir())
    finally:
        again.backend.close()


def test_a_restart_drops_what_an_interrupted_update_left_and_keeps_the_newest_versions(learned, tiny_model,
                                                                                       tmp_path):
    app, _ = learned
    models = tmp_path / "models"
    shutil.copytree(app.backend.store.folder, models, ignore=shutil.ignore_patterns(".backend.lock"))
    shutil.copytree(models / "v0001", models / "candidate-v0002")  # killed while the update was saving
    (models / ".candidate-v0002.checkpoint").mkdir()
    again = backend_app(tiny_model[0], models)
    try:
        assert again.backend.served.folder == models / "v0001"
        assert sorted(p.name for p in models.iterdir() if "candidate" in p.name) == []
        for number in (2, 3, 4):  # as accepted updates would publish them
            shutil.copytree(models / "v0001", models / f"candidate-v{number:04d}")
            again.backend.store.publish(models / f"candidate-v{number:04d}", f"v{number:04d}", keep=3)
        assert [p.name for p in again.backend.store.versions()] == ["v0002", "v0003", "v0004"]
    finally:
        again.backend.close()


def test_a_models_dir_of_another_base_model_is_refused(learned, micro_model, tmp_path):
    app, _ = learned
    models = tmp_path / "models"
    shutil.copytree(app.backend.store.folder, models, ignore=shutil.ignore_patterns(".backend.lock"))
    with pytest.raises(NeuronerError, match="holds updates of another base model .* choose another --models-dir"):
        backend_app(micro_model, models)
    assert not (models / ".backend.lock").exists() and [p.name for p in (models).glob("v*")] == ["v0001"]


# refusals -----------------------------------------------------------------------------------------------
def test_the_models_dir_must_be_new_or_the_backends_own(micro_model, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    one_line_error(*invoke("label-studio", micro_model, "--models-dir", other), "holds other files (notes.txt...)")
    one_line_error(*invoke("label-studio", micro_model, "--models-dir", Path(micro_model) / "versions"),
                   "lies inside")
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine"
    one_line_error(*invoke("label-studio", micro_model, "--models-dir", tmp_path / "new", "--set", "bogus=1"),
                   "unknown update option 'bogus'")
    one_line_error(*invoke("label-studio", micro_model, "--models-dir", tmp_path / "new", "--set", "max_epochs=x"),
                   "max_epochs")
    assert not (tmp_path / "new" / ".backend.lock").exists()


def test_learning_settings_are_checked():
    with pytest.raises(NeuronerError, match="--dev-percent must be a whole number from 1 to 90"):
        LearningSettings(dev_percent=0)
    with pytest.raises(NeuronerError, match="--label-studio-url and --api-key go together"):
        LearningSettings(api_key="abc")


# Label Studio's export API ------------------------------------------------------------------------------
class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_export_api_is_asked_with_a_legacy_or_a_personal_token():
    asked = []

    def opener(request, timeout):
        asked.append((request.full_url, request.get_header("Authorization"), request.data))
        if request.full_url.endswith("/api/token/refresh"):
            return FakeResponse(json.dumps({"access": "short-lived"}).encode())
        return FakeResponse(json.dumps([{"id": 3, "data": {"text": "x"}, "annotations": []}]).encode())

    assert authorization("http://ls:8080", "abc123", opener) == "Token abc123"
    tasks = export_tasks("http://ls:8080/", "head.body.signature", 5, opener)
    assert tasks == [{"id": 3, "data": {"text": "x"}, "annotations": []}]
    assert asked[0][0] == "http://ls:8080/api/token/refresh"
    assert json.loads(asked[0][2]) == {"refresh": "head.body.signature"}
    assert asked[1][:2] == ("http://ls:8080/api/projects/5/export?exportType=JSON", "Bearer short-lived")


def test_the_export_replaces_the_kept_submissions(tmp_path):
    from neuroner_tl.labelstudio_learning import Submissions

    kept = Submissions(tmp_path / "annotations.json")
    (text, result), = annotated_sentences(1)
    event = annotation_event(1, text, result)
    kept.add(event["task"], event["annotation"])
    kept.take()
    exported = [{"id": 2, "data": {"text": text}, "annotations": [{**event["annotation"], "id": 9, "task": 2}]},
                {"id": 3, "data": {"text": text}, "annotations": []}]
    assert kept.replace_all(exported) == 1  # task 1's annotation is gone from Label Studio, task 3 has none
    again = Submissions(tmp_path / "annotations.json")
    assert list(again.tasks) == ["2"] and again.pending == ["2"]
    assert again.tasks["2"]["annotations"][0]["result"] == result

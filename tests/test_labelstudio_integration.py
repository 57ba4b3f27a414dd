"""The backend against a real Label Studio (its own environment, SQLite, 127.0.0.1): predictions, updates."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import cli_command, free_port
from labelstudio_tasks import CONFIG, GREETING_TEXTS, annotated_sentences

REPOSITORY = Path(__file__).resolve().parents[1]
LABEL_STUDIO = Path(os.environ.get("NEURONER_TL_LABEL_STUDIO",
                                   REPOSITORY / ".venv-labelstudio" / "bin" / "label-studio"))
TOKEN = "5b2f0c1e9a7d4c3b8e6f1a2d3c4b5a6978695a4b"  # a legacy token, made with the user at start
USER, PASSWORD = "annotator@example.com", "correct-horse-7"
SCREENSHOT = os.environ.get("NEURONER_TL_LS_SCREENSHOT")  # a PNG to write of the new version's pre-annotations
ANNOTATED = 40
UPDATE = ["--set", "max_epochs=30", "--set", "patience=30", "--set", "batch_size=16"]

pytestmark = [pytest.mark.labelstudio,
              pytest.mark.skipif(not LABEL_STUDIO.exists(), reason=f"needs Label Studio in {LABEL_STUDIO} (python3 -m "
                                 f"venv .venv-labelstudio && .venv-labelstudio/bin/pip install label-studio)")]


def request(base: str, method: str, path: str, body=None, token: str = TOKEN, timeout: float = 120):
    """(status, JSON) of one call to Label Studio's REST API or to the backend."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})}
    call = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def wait_until_up(base: str, process, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{base} stopped with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if request(base, "GET", "/health", token=None, timeout=3)[0] == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    pytest.fail(f"{base} did not answer /health in {seconds} s:\n{log.read_text(errors='replace')[-3000:]}")


def label_studio_environment(data: Path) -> dict:
    """Label Studio on SQLite in ``data``, allowed to call a backend on the loopback (its SSRF guards
    refuse local addresses by default), without telemetry or error reports leaving the machine."""
    return {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "", "DJANGO_DB": "sqlite"}


@pytest.fixture(scope="module")
def live(tiny_model, tmp_path_factory):
    """(Label Studio's URL, the backend's URL, the models folder): both running, on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("live")
    studio_port, backend_port = free_port(), free_port()
    studio, backend = f"http://127.0.0.1:{studio_port}", f"http://127.0.0.1:{backend_port}"
    studio_log, backend_log = folder / "label-studio.log", folder / "backend.log"
    with open(studio_log, "wb") as out:
        studio_process = subprocess.Popen(
            [str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(studio_port),
             "--data-dir", str(folder / "studio"), "--username", USER, "--password", PASSWORD, "--user-token", TOKEN,
             "--enable-legacy-api-token"],
            stdout=out, stderr=subprocess.STDOUT, env=label_studio_environment(folder / "studio"), cwd=folder)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY),
                                                                             os.environ.get("PYTHONPATH")]))}
    with open(backend_log, "wb") as out:
        backend_process = subprocess.Popen(
            cli_command("label-studio", tiny_model[0], "--models-dir", folder / "models", "--port", backend_port,
                        "--train-every", 1000, "--label-studio-url", studio, "--api-key", TOKEN, *UPDATE),
            stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=folder)
    try:
        wait_until_up(backend, backend_process, backend_log, 120)
        wait_until_up(studio, studio_process, studio_log, 300)
        yield studio, backend, folder / "models"
    finally:
        for process in (backend_process, studio_process):
            process.terminate()
        for process in (backend_process, studio_process):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def predictions_of(studio: str, task_id: int):
    status, found = request(studio, "GET", f"/api/predictions?task={task_id}")
    assert status == 200, found
    return found


def retrieve_predictions(studio: str, project: int, task_ids):
    status, answer = request(studio, "POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
                             {"selectedItems": {"all": False, "included": list(task_ids)}})
    assert status == 200, answer


def test_label_studio_stores_the_backends_predictions_and_its_annotations_make_a_new_version(live):
    studio, backend, models = live
    started = time.perf_counter()
    status, project = request(studio, "POST", "/api/projects", {"title": "chats", "label_config": CONFIG})
    assert status == 201, project
    annotated = annotated_sentences(ANNOTATED)
    tasks = [{"data": {"text": text}} for text, _ in annotated] + [{"data": {"text": t}} for t in GREETING_TEXTS]
    status, imported = request(studio, "POST", f"/api/projects/{project['id']}/import", tasks)
    assert status == 201 and imported["task_count"] == len(tasks), imported
    status, listed = request(studio, "GET", f"/api/tasks?project={project['id']}&page_size=100")
    task_ids = {task["data"]["text"]: task["id"] for task in listed["tasks"]}

    # connecting the backend: Label Studio asks /health and /setup, and learns the model version
    status, connection = request(studio, "POST", "/api/ml", {"project": project["id"], "url": backend,
                                                              "title": "neuroner_tl"})
    assert status == 201 and connection["readable_state"] == "Connected", connection
    base_version = request(backend, "GET", "/health", token=None)[1]["model_version"]
    assert connection["model_version"] == base_version

    # pre-annotations: Label Studio stores what /predict answers, in the config's names
    retrieve_predictions(studio, project["id"], task_ids.values())
    stored = {text: predictions_of(studio, task_id) for text, task_id in task_ids.items()}
    assert all(len(found) == 1 and found[0]["model_version"] == base_version for found in stored.values())
    regions = [region for found in stored.values() for region in found[0]["result"]]
    assert regions and {(r["from_name"], r["to_name"]) for r in regions} == {("ner", "txt")}
    assert {r["value"]["labels"][0] for r in regions} <= {"Person", "Organization"}  # no Greeting yet
    for text, found in stored.items():
        assert all(text[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"] for r in found[0]["result"])

    # annotators submit: every annotation reaches the backend's webhook
    for text, result in annotated:
        status, answer = request(studio, "POST", f"/api/tasks/{task_ids[text]}/annotations",
                                 {"result": result, "was_cancelled": False, "lead_time": 3.0})
        assert status == 201, answer
    assert request(backend, "GET", "/health", token=None)[1]["pending_annotations"] == ANNOTATED

    # "Start training" in Label Studio: START_TRAINING at the webhook; the update runs in the background
    status, answer = request(studio, "POST", f"/api/ml/{connection['id']}/train", {})
    assert status == 200, answer
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        health = request(backend, "GET", "/health", token=None)[1]
        if not health["training"] and health["last_update"]:
            break
        time.sleep(2)
    last = health["last_update"]
    assert last["outcome"] == "accepted" and last["version"] == "v0001", last
    assert last["train_tasks"] + last["dev_tasks"] == ANNOTATED  # the export API gave the same tasks
    assert health["model_version"].startswith("v0001@") and (models / "v0001").is_dir()

    # the new version: Label Studio asks /setup again, and predicts the tasks still open with it
    greeting_ids = [task_ids[text] for text in GREETING_TEXTS]
    retrieve_predictions(studio, project["id"], greeting_ids)
    newest = [next(p for p in predictions_of(studio, task_id) if p["model_version"] == health["model_version"])
              for task_id in greeting_ids]
    greetings = [[r["value"]["text"] for r in p["result"] if r["value"]["labels"] == ["Greeting"]] for p in newest]
    assert "Buongiorno" in greetings[0] and "salve" in greetings[1], newest
    print(f"\nLabel Studio loop: {time.perf_counter() - started:.1f} s from the project's creation to the new "
          f"version's predictions (the update {last['seconds']} s)", file=sys.stderr)
    if SCREENSHOT:
        take_screenshot(studio, project["id"], greeting_ids[0], SCREENSHOT)


def take_screenshot(studio: str, project: int, task: int, output: str) -> None:
    """The labeling page of ``task`` as a PNG (``labelstudio_screenshot.py``, in Label Studio's environment
    with playwright installed, and Debian's chromium)."""
    script = Path(__file__).with_name("labelstudio_screenshot.py")
    completed = subprocess.run([str(LABEL_STUDIO.with_name("python")), str(script), studio, USER, PASSWORD,
                                str(project), str(task), output], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

"""``neuroner-tl label-studio``: a Label Studio ML backend that pre-annotates tasks and learns from submissions."""

import base64
import dataclasses
import functools
import hmac
import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from .errors import NeuronerError
from .labelstudio_config import LabelingConfig, LabelingConfigError, LabelMap, map_labels, parse_labeling_config
from .labelstudio_learning import TRAIN_EVENTS, Learner, LearningSettings, ModelStore, Submissions, SUBMISSIONS_FILE
from .serve import BodyLimit, JsonOnly, Limits, RequestTooLarge, check_token_counts, missing_extra_message

PathLike = Union[str, Path]
logger = logging.getLogger("neuroner_tl.labelstudio")
MODEL_CLASS = "neuroner_tl"
# Label Studio sends every task of a "retrieve predictions" in one request: larger bounds than serve's
BACKEND_LIMITS = Limits(max_texts=5000, max_bytes=16 << 20, max_tokens=200_000, max_sentence_tokens=1000)


@dataclasses.dataclass(frozen=True)
class Served:
    """The model answering ``/predict`` now: swapped whole, so a request sees one version throughout."""

    tagger: object
    folder: Path
    version: str


def load_served(folder: Path, calibrated: bool) -> Served:
    """A model folder loaded, warmed up (its decoder compiled) and named as Label Studio shows it."""
    from . import api

    tagger = api.as_tagger(folder, calibrated)
    tagger.tag("Warm up.")
    return Served(tagger, folder, api.model_version(folder))


def task_score(uncertainty: float) -> float:
    """A task's score in Label Studio (sortable in the data manager): how sure the model is of its
    whole tagging, ``exp(-u)`` for ``u`` the least confidence per token of ``select``
    (``selection.document_uncertainty``), the per-token geometric mean of the tagging's probability
    (1.0 for a task without tokens). Sorted ascending, the data manager lists first the tasks
    ``select`` scores highest (without its diversity term)."""
    return round(math.exp(-float(uncertainty)), 6)


def region_of(entity: dict, label: str, config: LabelingConfig, task_key, index: int) -> dict:
    """One entity as a Label Studio ``labels`` region of ``config``'s control, with its confidence."""
    return {"id": f"{task_key}_{index}", "from_name": config.from_name, "to_name": config.to_name, "type": "labels",
            "value": {"start": entity["start"], "end": entity["end"], "text": entity["text"], "labels": [label]},
            "score": entity["confidence"]}


def task_prediction(entities: Sequence[dict], config: LabelingConfig, label_map: LabelMap, version: str,
                    task_key, score: float) -> dict:
    """A task's prediction: the entities of the types the config shows, under the config's labels."""
    regions = []
    for entity in entities:
        label = label_map.label_of(entity["type"])
        if label is not None:
            regions.append(region_of(entity, label, config, task_key, len(regions) + 1))
    return {"result": regions, "score": score, "model_version": version}


def task_texts(tasks, config: LabelingConfig) -> List[str]:
    """Each task's text (``data[KEY]`` of the config's ``<Text value="$KEY">``); a task without one is
    a ``LabelingConfigError`` naming it."""
    if not isinstance(tasks, list):
        raise LabelingConfigError(f"\"tasks\" must be a list of tasks, not {type(tasks).__name__}")
    texts = []
    for number, task in enumerate(tasks, start=1):
        data = task.get("data") if isinstance(task, dict) else None
        text = data.get(config.text_key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            identity = f" (id {task['id']})" if isinstance(task, dict) and "id" in task else ""
            raise LabelingConfigError(f"task {number}{identity} has no text in data.{config.text_key} (the labeling "
                                      f"config's <Text name=\"{config.to_name}\" value=\"${config.text_key}\">)")
        texts.append(text)
    return texts


@functools.lru_cache(maxsize=32)
def cached_config(xml: str) -> LabelingConfig:
    return parse_labeling_config(xml)


def project_id(project) -> Optional[str]:
    """A project's id from Label Studio's ``"ID.TIMESTAMP"`` (``/predict``, ``/setup``) or its webhook object."""
    if isinstance(project, dict):
        project = project.get("id")
    if project is None or project == "":
        return None
    return str(project).split(".", 1)[0]


class BasicAuth:
    """ASGI middleware: with a user and a password set, every request needs them (HTTP basic auth), as
    the reference backend's ``BASIC_AUTH_USER``/``BASIC_AUTH_PASS``; others get 401."""

    def __init__(self, app, user: str, password: str):
        self.app = app
        self.expected = b"Basic " + base64.b64encode(f"{user}:{password}".encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                return await self._refuse(send)
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send):
        body = b'{"detail": "Unauthorized"}'
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Basic realm="Login required"')]})
        await send({"type": "http.response.body", "body": body})


@dataclasses.dataclass(frozen=True)
class BackendSettings:
    """What ``create_backend_app`` serves and how it learns (``neuroner-tl label-studio``'s options)."""

    limits: Limits = BACKEND_LIMITS
    learning: LearningSettings = LearningSettings()
    labels: Tuple[Tuple[str, str], ...] = ()  # (model type, config label) given with --label
    calibrated: bool = True
    basic_auth: Optional[Tuple[str, str]] = None  # (user, password)


def basic_auth_from_environment() -> Optional[Tuple[str, str]]:
    """``BASIC_AUTH_USER`` and ``BASIC_AUTH_PASS``, as the reference backend reads them (None unless both)."""
    user, password = os.environ.get("BASIC_AUTH_USER"), os.environ.get("BASIC_AUTH_PASS")
    return (user, password) if user and password else None


def check_update_options(options, tagger) -> None:
    """The updates' options (``--set``, ``--config``) are checked at start, not at the first update."""
    from .transfer import update_hyperparameters, update_options

    _, changes = update_options(dict(options))
    update_hyperparameters(tagger, changes)


class Backend:
    """The served model, the models folder and the learner behind the routes."""

    def __init__(self, model: PathLike, models_dir: PathLike, settings: BackendSettings):
        self.settings = settings
        self.labels = dict(settings.labels)
        self.store = ModelStore(models_dir, model)
        latest = self.store.open()
        try:
            self._served = load_served(latest, settings.calibrated)
            check_update_options(settings.learning.options, self._served.tagger)
            if self.store.base_types is None:  # a new models folder: the served model is the base
                self.store.set_base_types(self._served.tagger.entity_types)
            self.submissions = Submissions(self.store.folder / SUBMISSIONS_FILE)
        except BaseException:
            self.store.close()
            raise
        self._swap = threading.Lock()
        self.learner = Learner(self.store, self.submissions, settings.learning, lambda: self.served, self.serve_version,
                               self.labels)
        logger.info("serving %s (%s)", self._served.version, latest)

    @property
    def served(self) -> "Served":
        return self._served

    def serve_version(self, folder: Path) -> None:
        """Load ``folder`` and serve it from the next request on (requests under way finish with the old one)."""
        loaded = load_served(folder, self.settings.calibrated)
        with self._swap:
            self._served = loaded

    def close(self) -> None:
        self.learner.stop()
        self.store.close()

    # the routes' work ----------------------------------------------------------------------------
    def health(self) -> dict:
        last = self.learner.last
        return {"status": "UP", "model_class": MODEL_CLASS, "model_version": self.served.version,
                "training": self.learner.busy, "pending_annotations": self.submissions.pending_count(),
                "last_update": last}

    def setup(self, body: dict) -> dict:
        config = cached_config(body.get("schema") or "")
        project = project_id(body.get("project"))
        served = self.served
        if self.submissions.accepts(project):
            if self.submissions.project is None or body.get("schema") != self.submissions.label_config:
                label_map = map_labels(config, served.tagger.entity_types, self.labels)
                logger.info("learning from project %s: its labels %s show the model's %s; new types: %s", project,
                            ", ".join(v for _, v in label_map.pairs) or "none",
                            ", ".join(k for k, _ in label_map.pairs) or "none", ", ".join(label_map.new) or "none")
            self.submissions.bind(project, body.get("schema"))
        return {"model_version": served.version}

    def predict(self, body: dict) -> dict:
        config = cached_config(body.get("label_config") or self.submissions.label_config or "")
        tasks = body.get("tasks")
        texts = task_texts(tasks, config)
        limits = self.settings.limits
        if len(texts) > limits.max_texts:
            raise RequestTooLarge(f"{len(texts)} tasks in one request; at most {limits.max_texts}")
        from .raw_text import tag_texts_with_doubt
        from .tokenizer import split_sentences

        check_token_counts((len(s) for text in texts for s in split_sentences(text)), limits)
        served = self.served
        label_map = map_labels(config, served.tagger.entity_types, self.labels)
        entities, uncertainties = tag_texts_with_doubt(served.tagger, texts) if texts else ([], [])
        results = [task_prediction(found, config, label_map, served.version,
                                   task.get("id", number) if isinstance(task, dict) else number, task_score(doubt))
                   for number, (task, found, doubt) in enumerate(zip(tasks, entities, uncertainties), start=1)]
        return {"results": results, "model_version": served.version}

    def webhook(self, body: dict) -> Tuple[int, dict]:
        action = body.get("action")
        if action not in TRAIN_EVENTS + ("ANNOTATIONS_DELETED", "START_TRAINING"):
            return 200, {"status": "Unknown event"}
        project = body.get("project")
        if not self.submissions.accepts(project_id(project)):
            return 200, {"status": f"ignored: this backend learns from project {self.submissions.project}"}
        self.submissions.bind(project_id(project), project.get("label_config") if isinstance(project, dict) else None)
        if action in TRAIN_EVENTS:
            annotation, task = body.get("annotation"), body.get("task")
            if not isinstance(annotation, dict) or not isinstance(task, dict) or "id" not in task:
                return 422, {"detail": f"{action} needs \"annotation\" and \"task\" objects (Label Studio's webhook "
                                       f"payload)"}
            self.submissions.add(task, annotation)
            return 201, {"status": "ok", "result": self.learner.request()}
        if action == "ANNOTATIONS_DELETED":
            ids = [a.get("id") for a in body.get("annotations") or [] if isinstance(a, dict)]
            return 201, {"status": "ok", "result": f"{self.submissions.remove_annotations(ids)} annotations forgotten"}
        return 201, {"status": "ok", "result": self.learner.request(force=True)}

    def train(self, body: dict) -> Tuple[int, dict]:
        """The older ``POST /train`` with every annotated task: taken as the submissions, then START_TRAINING."""
        tasks = body.get("annotations")
        if not isinstance(tasks, list) or not tasks:
            return 400, {"detail": "No annotations found."}
        project = project_id(body.get("project"))
        if not self.submissions.accepts(project):
            return 200, {"status": f"ignored: this backend learns from project {self.submissions.project}"}
        self.submissions.bind(project, body.get("label_config"))
        self.submissions.replace_all(tasks)
        return 201, {"status": "ok", "result": self.learner.request(force=True)}

    def versions(self) -> dict:
        return {"versions": [p.name for p in reversed(self.store.versions())] or [self.served.version]}


def create_backend_app(model: PathLike, models_dir: PathLike, settings: Optional[BackendSettings] = None):
    """The FastAPI application of the Label Studio backend (see ``docs/label_studio.md``): ``model``
    is the base model (never written), ``models_dir`` holds its updates; the newest is served. The
    ``Backend`` is the application's ``backend`` attribute (``app.backend.close()`` releases the folder)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    settings = settings or BackendSettings()
    backend = Backend(model, models_dir, settings)
    app = FastAPI(title="neuroner_tl Label Studio ML backend")

    async def json_body(request: Request) -> dict:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as error:
            raise LabelingConfigError(f"the request body is not valid JSON ({error})") from None
        if not isinstance(body, dict):
            raise LabelingConfigError(f"the request body must be a JSON object, not {type(body).__name__}")
        return body

    @app.exception_handler(NeuronerError)
    async def refused(request, error):
        status = 413 if isinstance(error, RequestTooLarge) else 422
        return JSONResponse(status_code=status, content={"detail": str(error)})

    @app.get("/")
    @app.get("/health")
    async def health():
        return backend.health()

    @app.get("/metrics")
    async def metrics():
        return {}

    @app.get("/versions")
    async def versions():
        return backend.versions()

    @app.post("/setup")
    async def setup(request: Request):
        return backend.setup(await json_body(request))

    @app.post("/predict")
    async def predict(request: Request):
        import anyio

        body = await json_body(request)
        return await anyio.to_thread.run_sync(backend.predict, body)  # tagging off the event loop

    @app.post("/webhook")
    async def webhook(request: Request):
        status, answer = backend.webhook(await json_body(request))
        return JSONResponse(status_code=status, content=answer)

    @app.post("/train")
    async def train(request: Request):
        status, answer = backend.train(await json_body(request))
        return JSONResponse(status_code=status, content=answer)

    wrapped = JsonOnly(BodyLimit(app, settings.limits.max_bytes))
    if settings.basic_auth:
        wrapped = BasicAuth(wrapped, *settings.basic_auth)
    wrapped.backend = backend
    return wrapped


def run_backend(model: PathLike, models_dir: PathLike, settings: Optional[BackendSettings] = None,
                host: str = "127.0.0.1", port: int = 9090, log_level: str = "info") -> None:
    """Serve the Label Studio backend until interrupted; the models folder is released at the end (an
    update still running is dropped: the served version stays the newest)."""
    problem = missing_extra_message()
    if problem:
        raise NeuronerError(problem.replace("neuroner-tl serve", "neuroner-tl label-studio"))
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    app = create_backend_app(model, models_dir, settings)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        app.backend.close()

"""The Label Studio backend's learning: submissions kept, updates in the background, versions served when no worse."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .atomic import atomic_write_text
from .errors import NeuronerError
from .labelstudio_config import LabelingConfig, LabelMap, map_labels, parse_labeling_config

PathLike = Union[str, Path]
logger = logging.getLogger("neuroner_tl.labelstudio")

STATE_FILE = "backend.json"  # what marks a models folder as this backend's
SUBMISSIONS_FILE = "annotations.json"
LOCK_FILE = ".backend.lock"
DATA_FOLDER = "annotations"  # the tasks each version was trained and judged on
VERSION_NAME = re.compile(r"v(\d{4,})")
CANDIDATE_PREFIX = "candidate-"
STATE_FORMAT = 1
ANNOTATION_KEYS = ("id", "result", "was_cancelled", "ground_truth", "created_at", "updated_at")
TRAIN_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


@dataclasses.dataclass(frozen=True)
class LearningSettings:
    """How the backend learns from submissions (``neuroner-tl label-studio`` options of the same names).

    ``options``: the update's settings and training hyperparameters (``api.update``'s ``options``,
    as ``--set NAME=VALUE`` gives them), as (name, value) pairs."""

    train_every: int = 10  # new or changed submitted annotations that start an update
    dev_percent: int = 20  # the share of tasks, chosen by their id, held out as dev
    keep_versions: int = 3  # model versions kept in the models folder (the served one included)
    options: Tuple[Tuple[str, object], ...] = ()
    label_studio_url: Optional[str] = None  # with api_key: the export API completes the submissions
    api_key: Optional[str] = None
    verbose: bool = True  # the update's progress lines on stderr

    def __post_init__(self):
        for name, low in (("train_every", 1), ("keep_versions", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise NeuronerError(f"--{name.replace('_', '-')} must be a whole number of at least {low}, "
                                    f"not {value!r}")
        percent = self.dev_percent
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 90:
            raise NeuronerError(f"--dev-percent must be a whole number from 1 to 90, not {self.dev_percent!r}")
        if (self.label_studio_url is None) != (self.api_key is None):
            raise NeuronerError("--label-studio-url and --api-key go together: the export API needs both")


def is_dev_task(task_id, percent: int) -> bool:
    """Whether a task is held out as dev: a hash of its id falls in the first ``percent`` of 100, so a
    task keeps its role for good, whatever else is annotated."""
    digest = hashlib.sha256(f"task {task_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


# the submissions ------------------------------------------------------------------------------------
class Submissions:
    """The bound project's tasks with their annotations, kept in ``annotations.json`` (rewritten
    atomically at every change), and the tasks changed since the last update began (``pending``)."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        self.project = saved.get("project")
        self.label_config: Optional[str] = saved.get("label_config")
        self.tasks: Dict[str, dict] = saved.get("tasks", {})
        self.pending: List[str] = saved.get("pending", [])

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps({"project": self.project, "label_config": self.label_config,
                                                 "tasks": self.tasks, "pending": self.pending}, ensure_ascii=False))

    def accepts(self, project) -> bool:
        """Whether submissions of ``project`` are learnt from: the first project seen binds the backend."""
        return self.project is None or project is None or str(project) == str(self.project)

    def bind(self, project, label_config: Optional[str]) -> None:
        """Learn from ``project`` (when none is bound yet) with ``label_config`` (when given)."""
        with self.lock:
            changed = False
            if self.project is None and project is not None:
                self.project, changed = str(project), True
            if label_config and label_config != self.label_config:
                self.label_config, changed = label_config, True
            if changed:
                self._save()

    def add(self, task: dict, annotation: dict) -> bool:
        """Keep ``annotation`` (replacing an earlier one with its id) of ``task``; whether it counts as a
        new submission (it was not cancelled)."""
        key = str(task["id"])
        kept = {k: annotation[k] for k in ANNOTATION_KEYS if k in annotation}
        with self.lock:
            entry = self.tasks.setdefault(key, {"id": task["id"], "data": task.get("data") or {}, "annotations": []})
            if isinstance(task.get("data"), dict):
                entry["data"] = task["data"]
            entry["annotations"] = [a for a in entry["annotations"] if a.get("id") != kept.get("id")] + [kept]
            counted = not kept.get("was_cancelled")
            if counted and key not in self.pending:
                self.pending.append(key)
            self._save()
        return counted

    def remove_annotations(self, ids: Sequence) -> int:
        """Forget the annotations with these ids (Label Studio deleted them); how many were kept."""
        wanted = {str(i) for i in ids}
        removed = 0
        with self.lock:
            for entry in self.tasks.values():
                before = len(entry["annotations"])
                entry["annotations"] = [a for a in entry["annotations"] if str(a.get("id")) not in wanted]
                removed += before - len(entry["annotations"])
            self.tasks = {k: v for k, v in self.tasks.items() if v["annotations"]}
            self._save()
        return removed

    def replace_all(self, tasks: Sequence[dict]) -> int:
        """Take the project's annotated tasks as Label Studio exports them, in place of those kept (it
        knows best: a task it no longer has annotated is dropped); tasks changed since they were kept
        count as pending. Returns the number of annotated tasks."""
        with self.lock:
            kept = {}
            for task in tasks:
                if not isinstance(task, dict) or "id" not in task or not task.get("annotations"):
                    continue
                key = str(task["id"])
                kept[key] = {"id": task["id"], "data": task.get("data") or {},
                             "annotations": [{k: a[k] for k in ANNOTATION_KEYS if k in a} for a in task["annotations"]
                                             if isinstance(a, dict)]}
                if self.tasks.get(key) != kept[key] and key not in self.pending:
                    self.pending.append(key)
            self.tasks = kept
            self.pending = [key for key in self.pending if key in kept]
            self._save()
            return len(self.tasks)

    def pending_count(self) -> int:
        return len(self.pending)

    def take(self) -> Tuple[List[dict], int]:
        """(every task with a live annotation, the number pending), pending cleared: what an update learns from."""
        with self.lock:
            count = len(self.pending)
            self.pending = []
            self._save()
            tasks = [json.loads(json.dumps(t)) for t in self.tasks.values()
                     if any(not a.get("was_cancelled") for a in t["annotations"])]
        return tasks, count


# the export API -------------------------------------------------------------------------------------
def authorization(url: str, token: str, opener=urllib.request.urlopen) -> str:
    """The Authorization header for Label Studio's API: a legacy token as ``Token KEY``; a personal
    access token (a JWT) exchanged at ``/api/token/refresh`` for an access token, sent as ``Bearer``."""
    if token.count(".") != 2:
        return f"Token {token}"
    request = urllib.request.Request(f"{url.rstrip('/')}/api/token/refresh", method="POST",
                                     data=json.dumps({"refresh": token}).encode(),
                                     headers={"Content-Type": "application/json"})
    with opener(request, timeout=30) as response:
        return f"Bearer {json.loads(response.read())['access']}"


def export_tasks(url: str, token: str, project, opener=urllib.request.urlopen) -> List[dict]:
    """The project's tasks with their annotations from ``GET /api/projects/ID/export?exportType=JSON``."""
    address = f"{url.rstrip('/')}/api/projects/{urllib.parse.quote(str(project))}/export?exportType=JSON"
    request = urllib.request.Request(address, headers={"Authorization": authorization(url, token, opener)})
    try:
        with opener(request, timeout=120) as response:
            tasks = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise NeuronerError(f"Label Studio's export API answered {error.code} at {address}") from None
    except (urllib.error.URLError, OSError) as error:
        raise NeuronerError(f"cannot reach Label Studio's export API at {address}: {error}") from None
    if not isinstance(tasks, list):
        raise NeuronerError(f"Label Studio's export API at {address} answered a {type(tasks).__name__}, not a list")
    return tasks


# the model versions ---------------------------------------------------------------------------------
class ModelStore:
    """The models folder: versions ``v0001``, ``v0002``... (each a model folder, renamed into place
    only once accepted), ``backend.json`` (the base model and every update's outcome), the
    submissions, the tasks each version learnt from, and a lock: one backend a folder."""

    def __init__(self, folder: PathLike, base: PathLike):
        from .outputs import check_not_an_input

        self.folder = Path(folder)
        self.base = Path(base)
        if self.folder.exists() and not self.folder.is_dir():
            raise NeuronerError(f"{self.folder} exists and is not a folder; --models-dir names a folder")
        check_not_an_input(self.folder, [self.base])
        if self.folder.is_dir() and any(self.folder.iterdir()) and not (self.folder / STATE_FILE).exists():
            shown = ", ".join(sorted(p.name for p in self.folder.iterdir())[:3])
            raise NeuronerError(f"{self.folder} holds other files ({shown}...) and no {STATE_FILE}: --models-dir must "
                                f"be a new or empty folder, or one this backend made")
        self._lock = None
        self.state: dict = {}

    def open(self) -> Path:
        """Take the folder (its lock), drop what an interrupted update left, and return the model to
        serve: the newest version, else the base model."""
        from .model_io import model_id
        from .runfolder import RunLock

        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = RunLock(self.folder / LOCK_FILE, self.folder)
        self._lock.acquire()
        base_id = model_id(self.base)
        if (self.folder / STATE_FILE).exists():
            self.state = json.loads((self.folder / STATE_FILE).read_text(encoding="utf-8"))
            if self.state.get("base_model_id") != base_id:
                self._lock.release()
                made_from = f"{self.state.get('base_model')}, model id {self.state.get('base_model_id')}"
                raise NeuronerError(f"{self.folder} holds updates of another base model ({made_from}), not of "
                                    f"{self.base} ({base_id}): choose another --models-dir")
        else:
            self.state = {"format": STATE_FORMAT, "base_model": str(self.base.resolve()), "base_model_id": base_id,
                          "base_types": None, "updates": []}
            self._save()
        self._drop_candidates()
        return self.latest()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _save(self) -> None:
        atomic_write_text(self.folder / STATE_FILE, json.dumps(self.state, indent=1, ensure_ascii=False) + "\n")

    def _drop_candidates(self) -> None:
        for path in self.folder.iterdir():
            if path.name.startswith(CANDIDATE_PREFIX) or path.name.startswith("." + CANDIDATE_PREFIX):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    @property
    def base_types(self) -> Optional[List[str]]:
        """The base model's entity types (None until ``set_base_types``)."""
        return self.state.get("base_types")

    def set_base_types(self, types: Sequence[str]) -> None:
        self.state["base_types"] = list(types)
        self._save()

    def versions(self) -> List[Path]:
        """The accepted versions, oldest first."""
        from .outputs import is_model_folder

        found = [p for p in self.folder.iterdir() if VERSION_NAME.fullmatch(p.name) and is_model_folder(p)]
        return sorted(found, key=lambda p: int(p.name[1:]))

    def latest(self) -> Path:
        versions = self.versions()
        return versions[-1] if versions else self.base

    def next_name(self) -> str:
        versions = self.versions()
        return f"v{(int(versions[-1].name[1:]) + 1) if versions else 1:04d}"

    def candidate(self, name: str) -> Path:
        return self.folder / f"{CANDIDATE_PREFIX}{name}"

    def data_files(self, name: str) -> Tuple[Path, Path]:
        folder = self.folder / DATA_FOLDER
        return folder / f"{name}-train.json", folder / f"{name}-dev.json"

    def publish(self, candidate: Path, name: str, keep: int) -> Path:
        """Rename an accepted candidate into place as version ``name`` (one rename: it is there whole or
        not at all) and remove the versions beyond the newest ``keep``."""
        version = self.folder / name
        candidate.rename(version)
        for old in self.versions()[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
            for data in self.data_files(old.name):
                data.unlink(missing_ok=True)
        return version

    def record(self, outcome: dict) -> None:
        self.state.setdefault("updates", []).append(outcome)
        self._save()


# the update -----------------------------------------------------------------------------------------
def region_for_training(region, config: LabelingConfig, label_map: LabelMap) -> Optional[dict]:
    """A region of ``config``'s control as the update reads it (its label as the model's type, on the
    field ``text``); other results (choices, another control, a label the config no longer has): None."""
    if not isinstance(region, dict) or region.get("from_name", config.from_name) != config.from_name:
        return None
    value = region.get("value")
    if not isinstance(value, dict) or not isinstance(value.get("labels"), list):
        return None
    if not value["labels"] or any(label not in config.labels for label in value["labels"]):
        return None
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {**value, "labels": [label_map.type_of(label) for label in value["labels"]]}}


def task_for_training(task: dict, config: LabelingConfig, label_map: LabelMap) -> Optional[dict]:
    """A submitted task as a Label Studio task file holds it for the update (None: no text)."""
    text = (task.get("data") or {}).get(config.text_key)
    if not isinstance(text, str):
        return None
    annotations = [{**annotation, "result": [r for r in (region_for_training(x, config, label_map)
                                                          for x in annotation.get("result") or []) if r]}
                   for annotation in task["annotations"] if not annotation.get("was_cancelled")]
    return {"id": task["id"], "data": {"text": text}, "annotations": annotations}


def split_tasks(tasks: Sequence[dict], config: LabelingConfig, label_map: LabelMap,
                percent: int) -> Tuple[List[dict], List[dict]]:
    """(training tasks, dev tasks) as the update reads them (``task_for_training``; ``is_dev_task``)."""
    prepared = [t for t in (task_for_training(task, config, label_map) for task in tasks) if t]
    return ([t for t in prepared if not is_dev_task(t["id"], percent)],
            [t for t in prepared if is_dev_task(t["id"], percent)])


def write_task_file(path: Path, tasks: Sequence[dict]) -> None:
    atomic_write_text(path, json.dumps(list(tasks), ensure_ascii=False, indent=0) + "\n")


def dev_f1(tagger, corpus, types: Sequence[str]) -> float:
    """Micro F1 of the config's ``types`` on the dev tasks (what a person annotated there)."""
    from .transfer import group_score

    return group_score(tagger.evaluate(corpus)[0], types).f1


def target_types(label_map: LabelMap, base_types: Sequence[str]) -> List[str]:
    """What an update learns: the config's types the base model lacks; when it lacks none, every type
    the config shows (the annotations refine them)."""
    new = [kind for kind in label_map.types if kind not in base_types]
    return new or list(label_map.types)


class Learner:
    """Runs the updates, one at a time, in a background thread of its own: ``request`` wakes it; it
    updates when ``train_every`` submissions are pending (or when forced), from the served model, into
    a candidate folder, and ``accept`` serves the candidate only when its dev F1 is no worse."""

    def __init__(self, store: ModelStore, submissions: Submissions, settings: LearningSettings,
                 served: Callable[[], "object"], accept: Callable[[Path], None], given_labels: Mapping[str, str]):
        self.store = store
        self.submissions = submissions
        self.settings = settings
        self.served = served  # () -> the Served model now
        self.accept = accept  # version folder -> serve it
        self.given_labels = dict(given_labels)
        self._wake = threading.Event()
        self._forced = False
        self._stopping = False
        self.running = False
        self.last: Optional[dict] = (store.state.get("updates") or [None])[-1]  # the outcome before a restart
        self._thread = threading.Thread(target=self._work, name="neuroner-tl-updates", daemon=True)
        self._thread.start()

    def request(self, force: bool = False) -> str:
        """Ask for an update; what happens, in words."""
        self._forced = self._forced or force
        due = force or self.submissions.pending_count() >= self.settings.train_every
        if due:
            self._wake.set()
        if self.running and due:
            return "an update is running; another follows it with the new annotations"
        if due:
            return "update started"
        return (f"{self.submissions.pending_count()} new annotations of {self.settings.train_every} needed for an "
                f"update")

    @property
    def busy(self) -> bool:
        """Whether an update runs or is about to."""
        return self.running or self._wake.is_set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no update runs or is due (tests, and a caller that wants the outcome)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running and not self._wake.is_set():
                return True
            time.sleep(0.1)
        return False

    def _work(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping:
                return
            self.running = True
            self._wake.clear()
            forced, self._forced = self._forced, False
            try:
                if forced or self.submissions.pending_count() >= self.settings.train_every:
                    self.last = self.update_once()
            except Exception as error:  # the server goes on serving the model it has
                logger.error("update failed: %s\n%s", error, traceback.format_exc())
                self.last = {"outcome": "failed", "reason": str(error)}
                self.store.record(self.last)
            finally:
                self.running = False

    def update_once(self) -> dict:
        """One update from the served model on every submitted task; its outcome (also in backend.json)."""
        started = time.perf_counter()
        if self.settings.label_studio_url and self.submissions.project is not None:
            self.submissions.replace_all(export_tasks(self.settings.label_studio_url, self.settings.api_key,
                                                      self.submissions.project))
        tasks, pending = self.submissions.take()
        served = self.served()
        if not self.submissions.label_config:
            return self._skipped("no labeling config seen yet (it comes with Label Studio's requests)", served)
        config = parse_labeling_config(self.submissions.label_config)
        label_map = map_labels(config, served.tagger.entity_types, self.given_labels)
        train, dev = split_tasks(tasks, config, label_map, self.settings.dev_percent)
        if not dev or not train:
            return self._skipped(f"{len(train)} training and {len(dev)} dev tasks of {len(train) + len(dev)} "
                                 f"submitted: each needs one ({self.settings.dev_percent}% of the tasks, chosen by "
                                 f"id, are dev)", served)
        name = self.store.next_name()
        types = target_types(label_map, self.store.base_types)
        logger.info("update %s from %s: %d training and %d dev tasks (%d new), learning %s", name, served.version,
                    len(train), len(dev), pending, ", ".join(types))
        train_file, dev_file = self.store.data_files(name)
        write_task_file(train_file, train)
        write_task_file(dev_file, dev)
        try:
            candidate = self._candidate(served, name, types, train_file, dev_file)
        except NeuronerError as error:
            return self._skipped(f"the update stopped: {error}", served, name)
        outcome = {"version": name, "from": served.version, "train_tasks": len(train), "dev_tasks": len(dev),
                   "new_annotations": pending, "types": types}
        outcome.update(self._judged(served, candidate, name, dev_file, [label_map.type_of(x) for x in config.labels]))
        outcome["seconds"] = round(time.perf_counter() - started, 1)
        self.store.record(outcome)
        return outcome

    def _candidate(self, served, name: str, types: Sequence[str], train_file: Path, dev_file: Path):
        """The update of the served model into the candidate folder: (its folder, its tagger)."""
        from . import api

        folder = self.store.candidate(name)
        try:
            result = api.update(served.folder, train_file, types, folder, dev=dev_file, annotated=True,
                                options=dict(self.settings.options), restart=True, verbose=self.settings.verbose)
        except NeuronerError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder, result.tagger

    def _judged(self, served, candidate, name: str, dev_file: Path, types: Sequence[str]) -> dict:
        """The candidate served when its dev F1 is no worse than the served model's, else deleted."""
        from .formats import load_corpus

        folder, tagger = candidate
        dev = load_corpus(dev_file)
        before, after = dev_f1(served.tagger, dev, types), dev_f1(tagger, dev, types)
        judged = {"dev_f1_before": round(before, 2), "dev_f1_after": round(after, 2)}
        if after < before:
            shutil.rmtree(folder, ignore_errors=True)
            judged.update(outcome="rejected", reason=f"dev F1 {after:.2f} is below the served model's {before:.2f}")
            logger.info("update %s rejected: %s", name, judged["reason"])
            return judged
        self.accept(self.store.publish(folder, name, self.settings.keep_versions))
        logger.info("update %s accepted: dev F1 %.2f (was %.2f); now serving it", name, after, before)
        return {**judged, "outcome": "accepted"}

    def _skipped(self, reason: str, served, name: Optional[str] = None) -> dict:
        outcome = {"outcome": "skipped", "reason": reason, "from": served.version}
        if name:
            outcome["version"] = name
        logger.info("no update: %s", reason)
        self.store.record(outcome)
        return outcome

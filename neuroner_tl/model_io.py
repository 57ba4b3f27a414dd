"""Model folders: self-contained, written atomically, validated when read.

The SavedModel is the one source of truth. A model folder is::

    saved_model/             a TF SavedModel: every weight (variables/), the serving signatures,
        assets/              and what rebuilds the package's Tagger: config.json (hyperparameters),
                             model.json (format version, labels, sizes), words.txt, chars.txt,
                             labels.txt, history.json, provenance.json, metadata.json
    evaluation.json          scores of the run that wrote it
    training.png, logs/      loss and dev F1 per epoch; TensorBoard
    checksums.json           the SHA-256 of every other file, written last (``checksums``)

``load_tagger`` takes the folder or a bare exported SavedModel directory (what TF Serving deploys)
and reads the weights from the SavedModel's variables, so whatever can be served can be predicted
with, evaluated and updated. It checks every file it reads, then the model files against
``checksums.json``. Folders of format 1 (neuroner_tl 0.1: ``weights.npz`` and the files beside it)
still load, with a message, for one release; ``neuroner-tl upgrade`` rewrites them. Format-2 folders
written before ``checksums.json`` load unverified: the file is an addition, not a new format, so a
release that does not know it still reads the folders that have it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Dict, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from .atomic import staging_folder, temporary_for
from .checksums import MANIFEST, Verification, ignoring_checksums, manifest_problem, verify, write_manifest
from .config import Hyperparameters
from .errors import ModelFolderError, NeuronerError
from .fingerprints import file_fingerprint
from .model import DEFAULTED_WEIGHTS, assign_weights, check_heads
from .model_schema import check_file
from .outputs import check_model_destination
from .serving import ServingModule, WEIGHTS_ATTRIBUTE
from .tagger import Tagger
from .vocabulary import Vocabulary

FORMAT_VERSION = 2
LEGACY_FORMAT = 1
SAVED_MODEL_DIR = "saved_model"
ASSETS = "assets"
ASSET_FILES = ("config.json", "model.json", "words.txt", "chars.txt", "labels.txt", "history.json",
               "provenance.json", "metadata.json")
REQUIRED_ASSETS = ASSET_FILES[:5]
LEGACY_WEIGHTS = "weights.npz"
LEGACY_FILES = ("config.json", "model.json", "words.txt", "chars.txt", "labels.txt", LEGACY_WEIGHTS)
PathLike = Union[str, Path]


def package_version() -> str:
    from . import __version__

    return __version__


# writing ----------------------------------------------------------------------------------------
def save_tagger(tagger: Tagger, folder: PathLike, force: bool = False, extra_files: Optional[dict] = None,
                staging: Optional[PathLike] = None) -> Path:
    """Write ``tagger`` as a model folder. Everything is written into a hidden folder first (``staging``,
    by default a sibling of ``folder``) and moved into place at the end, so a crash never leaves a
    half-written model; an existing folder is replaced only with ``force`` and only once the new one
    is complete.

    ``extra_files`` maps names inside the folder to existing paths to move in (logs, plots). The
    checksum of every file is recorded last (``checksums.write_manifest``).
    """
    folder = check_model_destination(folder, force)
    with staging_folder(folder, staging) as staging:
        export_saved_model(tagger, staging / SAVED_MODEL_DIR)
        for name, source in (extra_files or {}).items():
            if Path(source).exists():
                shutil.copytree(source, staging / name) if Path(source).is_dir() else shutil.copy2(source, staging / name)
        write_manifest(staging)
    return folder


def export_saved_model(tagger: Tagger, path: PathLike) -> Path:
    """A SavedModel that needs nothing else: the serving signatures (``serving.ServingModule``), every
    weight as a variable, and the Tagger's vocabularies, labels and hyperparameters as assets."""
    path = Path(path)
    sources = temporary_for(path, "assets")
    if sources.exists():
        shutil.rmtree(sources)
    sources.mkdir(parents=True)
    try:
        write_asset_files(tagger, sources)
        module = ServingModule(tagger, {name: str(sources / name) for name in ASSET_FILES})
        # serving takes no gradients: tracing them would cost seconds of every model folder's export
        tf.saved_model.save(module, str(path), signatures=module.signatures(),
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    finally:
        shutil.rmtree(sources, ignore_errors=True)
    return path


def write_asset_files(tagger: Tagger, folder: Path) -> None:
    tagger.hp.save(folder / "config.json")
    _write_json(folder / "model.json", {"format_version": FORMAT_VERSION, "labels": tagger.labels,
                                        "num_words": len(tagger.words), "num_chars": len(tagger.chars),
                                        "word_dim": tagger.word_dim,
                                        **({"heads": tagger.heads} if tagger.heads else {})})
    tagger.words.save(folder / "words.txt")
    tagger.chars.save(folder / "chars.txt")
    (folder / "labels.txt").write_text("".join(label + "\n" for label in tagger.labels), encoding="utf-8")
    _write_json(folder / "history.json", tagger.history)
    _write_json(folder / "provenance.json", tagger.provenance)
    _write_json(folder / "metadata.json", {
        "neuroner_tl": package_version(), "format_version": FORMAT_VERSION, "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# reading ----------------------------------------------------------------------------------------
def saved_model_of(folder: PathLike) -> Optional[Path]:
    """The SavedModel directory of a model folder, or the folder itself when it is a bare one; None if
    neither holds a neuroner_tl SavedModel (its ``assets/model.json``)."""
    folder = Path(folder)
    for candidate in (folder / SAVED_MODEL_DIR, folder):
        if (candidate / "saved_model.pb").is_file() and (candidate / ASSETS / "model.json").is_file():
            return candidate
    return None


def is_legacy_folder(folder: Path) -> bool:
    """Format 1: ``weights.npz`` and ``model.json`` beside each other (its SavedModel had no assets)."""
    return (folder / LEGACY_WEIGHTS).is_file() and (folder / "model.json").is_file()


def load_tagger(folder: PathLike, quiet: bool = False, ignore_checksums: bool = False) -> Tagger:
    """Rebuild a ``Tagger`` from a model folder or a bare SavedModel directory, checking that every
    part is there and consistent; the weights are read from the SavedModel's variables. Last, a model
    folder's files are checked against its ``checksums.json``, unless ``ignore_checksums`` (or inside
    ``checksums.checksums_ignored()``): for a folder edited on purpose."""
    folder = _existing_folder(folder)
    if is_legacy_folder(folder):
        return _load_legacy(folder, quiet)
    saved_model = saved_model_of(folder)
    if saved_model is None:
        raise ModelFolderError(folder, _what_is_missing(folder))
    assets = saved_model / ASSETS
    missing = [f"{ASSETS}/{name}" for name in REQUIRED_ASSETS if not (assets / name).is_file()]
    if missing:
        raise ModelFolderError(folder, f"the SavedModel lacks {', '.join(missing)}; not a complete neuroner_tl model")
    _check_saved_model_graph(folder, saved_model)
    tagger = _tagger_from_files(folder, assets, FORMAT_VERSION)
    _assign_from_saved_model(folder, saved_model, tagger)
    if saved_model != folder and not (ignore_checksums or ignoring_checksums()):
        verification = verify_checksums(folder, everything=False)
        if not verification.ok:
            raise ModelFolderError(folder, verification.error())
    return tagger


def verify_checksums(folder: PathLike, everything: bool = True) -> Verification:
    """``folder``'s files checked against its ``checksums.json`` (``checksums.verify``): every listed
    file, or with ``everything`` False the model files only. A folder without one has nothing checked."""
    folder = _existing_folder(folder)
    if not (folder / MANIFEST).is_file():
        return verify(folder, None)
    manifest = _read_json(folder, folder, MANIFEST)
    problem = manifest_problem(manifest)
    if problem:
        raise ModelFolderError(folder, f"{MANIFEST}: {problem}")
    return verify(folder, manifest, everything)


def _existing_folder(folder: PathLike) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(folder, "does not exist" if not folder.exists() else "is not a folder")
    return folder


def _what_is_missing(folder: Path) -> str:
    if (folder / SAVED_MODEL_DIR).is_dir():
        if not (folder / SAVED_MODEL_DIR / "saved_model.pb").is_file():
            return f"missing {SAVED_MODEL_DIR}/saved_model.pb; not a complete neuroner_tl model"
        return f"missing {SAVED_MODEL_DIR}/{ASSETS}/model.json (with the vocabularies, labels and hyperparameters " \
               f"beside it); not a complete neuroner_tl model"
    if (folder / "saved_model.pb").is_file():
        return f"is a SavedModel without {ASSETS}/model.json: not one exported by neuroner_tl"
    if (folder / "model.json").is_file():
        return f"missing {SAVED_MODEL_DIR}/saved_model.pb; not a complete neuroner_tl model"
    return "holds neither a saved_model/ folder nor a SavedModel; not a neuroner_tl model"


def _tagger_from_files(folder: Path, files: Path, version: int) -> Tagger:
    """The Tagger the files of a model folder describe, each file checked against its schema
    (``model_schema``) as it is read: a damaged or hand-edited file is one line naming it and the field."""
    info = _read_json(folder, files, "model.json")
    found = info.get("format_version")
    if found != version:
        raise ModelFolderError(folder, f"written in model format {found!r}; this neuroner_tl "
                                       f"({package_version()}) reads formats {LEGACY_FORMAT} and {FORMAT_VERSION}")
    config = _read_json(folder, files, "config.json")
    try:
        hp = Hyperparameters.from_dict(config)
    except NeuronerError as error:
        raise ModelFolderError(folder, f"{_where(folder, files)}config.json: {error}") from None
    words = Vocabulary(_read_lines(folder, files, "words.txt"))
    chars = Vocabulary(_read_lines(folder, files, "chars.txt"))
    labels = [label for label in _read_lines(folder, files, "labels.txt") if label]
    if labels != info["labels"]:
        raise ModelFolderError(folder, "labels.txt does not match the labels in model.json")
    _check_labels(folder, files, labels, hp)
    try:
        heads = check_heads(info.get("heads"), len(labels))
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFolderError(folder, f"model.json: heads: {error}") from None
    history = _read_json(folder, files, "history.json", default=[])
    provenance = _read_json(folder, files, "provenance.json", default=None)
    try:
        return Tagger(hp, words, chars, labels, word_dim=info["word_dim"], history=history, provenance=provenance,
                      heads=heads)
    except (MemoryError, tf.errors.ResourceExhaustedError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise ModelFolderError(folder, f"the network that config.json and model.json describe cannot be built "
                                       f"({reason})") from None


def _where(folder: Path, files: Path) -> str:
    """How a file of ``files`` is named in messages: its place within the model folder."""
    relative = os.path.relpath(files, folder)
    return "" if relative == "." else f"{Path(relative).as_posix()}/"


def _check_labels(folder: Path, files: Path, labels, hp: Hyperparameters) -> None:
    """The labels are distinct tags, O among them, and exactly the labels of a model of config.json's
    tag scheme (``tags.label_set_problem``): a scheme that does not match them decodes no entity."""
    from . import tags as tagging

    where = _where(folder, files)
    if tagging.OUTSIDE not in labels or len(set(labels)) != len(labels):
        raise ModelFolderError(folder, f"{where}labels.txt must list distinct labels, O among them")
    for label in labels:
        problem = tagging.tag_problem(label, None)
        if problem:
            raise ModelFolderError(folder, f"{where}labels.txt: {problem}")
    problem = tagging.label_set_problem(hp.tag_scheme, labels)
    if problem:
        raise ModelFolderError(folder, f"{where}config.json: tag_scheme {hp.tag_scheme} does not match "
                                       f"{where}labels.txt: {problem}")


def _read_lines(folder: Path, files: Path, name: str):
    """A vocabulary or label file: one entry a line, UTF-8."""
    try:
        text = (files / name).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelFolderError(folder, f"{_where(folder, files)}{name} is not UTF-8 text") from None
    except OSError as error:
        raise ModelFolderError(folder, f"{_where(folder, files)}{name} cannot be read ({error.strerror})") from None
    return text.split("\n")[:-1] if text else []


def _read_json(folder: Path, files: Path, name: str, default=...):
    """A JSON file of the model folder, checked against its schema (``model_schema.SCHEMAS``)."""
    path = files / name
    if not path.exists() and default is not ...:
        return default
    where = f"{_where(folder, files)}{name}"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFolderError(folder, f"{where} is not valid JSON ({str(error)[:120]})") from None
    except OSError as error:
        raise ModelFolderError(folder, f"{where} cannot be read ({error.strerror})") from None
    problems = check_file(name, value)
    if problems:
        raise ModelFolderError(folder, f"{where}: {'; '.join(problems[:5])}"
                                       f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}")
    return value


def read_evaluation(folder: PathLike) -> Optional[dict]:
    """A model folder's ``evaluation.json`` (None when it has none), checked against its schema."""
    folder = Path(folder)
    if not (folder / "evaluation.json").is_file():
        return None
    return _read_json(folder, folder, "evaluation.json")


def _check_saved_model_graph(folder: Path, saved_model: Path) -> None:
    """The SavedModel's graph must parse and name the serving signature (catches truncation)."""
    from tensorflow.core.protobuf import saved_model_pb2

    message = saved_model_pb2.SavedModel()
    try:
        message.ParseFromString((saved_model / "saved_model.pb").read_bytes())
    except Exception:  # protobuf raises its own DecodeError, which has no stable import path
        raise ModelFolderError(folder, f"{_shown(folder, saved_model)}saved_model.pb is truncated or corrupt") from None
    signatures = message.meta_graphs[0].signature_def if message.meta_graphs else {}
    if "serving_default" not in signatures:
        raise ModelFolderError(folder, f"{_shown(folder, saved_model)}saved_model.pb has no serving_default "
                                       f"signature (truncated or not ours)")


def _shown(folder: Path, saved_model: Path) -> str:
    return "" if saved_model == folder else f"{SAVED_MODEL_DIR}/"


def checkpoint_key(path: str) -> str:
    """The SavedModel checkpoint's key of the weight at ``path`` (``ServingModule`` tracks every weight
    in a dict by path; the object graph escapes ``.`` as ``..`` and ``/`` as ``.S``)."""
    escaped = path.replace(".", "..").replace("/", ".S")
    return f"{WEIGHTS_ATTRIBUTE}/{escaped}/.ATTRIBUTES/VARIABLE_VALUE"


def read_saved_model_weights(folder: Path, saved_model: Path, paths) -> Dict[str, np.ndarray]:
    """Every weight ``paths`` names, read from the SavedModel's variables; a deleted or truncated
    ``variables.data-*`` or a missing weight is a one-line ``ModelFolderError``. Every other value the
    variables hold (the object graph) is read too, as ``tf.saved_model.load`` reads it: a file cut
    after the weights fails here as it fails there."""
    prefix = saved_model / "variables" / "variables"
    where = f"{_shown(folder, saved_model)}variables"
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        stored = reader.get_variable_to_shape_map()
        paths = [path for path in paths if path not in DEFAULTED_WEIGHTS or checkpoint_key(path) in stored]
        missing = [path for path in paths if checkpoint_key(path) not in stored]
        if missing:
            raise ModelFolderError(folder, f"{where} lack {', '.join(missing[:3])}"
                                           f"{'...' if len(missing) > 3 else ''}; not a neuroner_tl SavedModel")
        values = {key: reader.get_tensor(key) for key in stored}
        return {path: values[checkpoint_key(path)] for path in paths}
    except (tf.errors.OpError, ValueError, IndexError, OSError) as error:  # IndexError: a truncated data file
        reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:160]
        raise ModelFolderError(folder, f"{where} cannot be read back ({reason}); the SavedModel is damaged: "
                                       f"copy the folder again or retrain") from None


def _assign_from_saved_model(folder: Path, saved_model: Path, tagger: Tagger) -> None:
    paths = [v.path for v in tagger.network.model_weights()]
    arrays = read_saved_model_weights(folder, saved_model, paths)
    _check_sizes(folder, tagger, arrays, "the SavedModel's")
    try:
        assign_weights(tagger.network, arrays)
    except ValueError as error:
        raise ModelFolderError(folder, f"the SavedModel's weights do not fit the network that config.json and "
                                       f"model.json describe ({error})") from None


def _check_sizes(folder: Path, tagger: Tagger, arrays: Dict[str, np.ndarray], whose: str) -> None:
    """The vocabularies must match the stored weights, else the files come from different models."""
    words = arrays.get("word_embedding/embeddings")
    chars = arrays.get("char_encoder/char_embedding/embeddings")
    transitions = arrays.get("crf/transitions")
    if words is None or chars is None or transitions is None:
        raise ModelFolderError(folder, f"{whose} weights lack the embedding or CRF weights of a neuroner_tl network")
    # a column's update adds words only its own embedding has: the widest embedding covers words.txt
    rows = max(value.shape[0] for name, value in arrays.items() if name.endswith("word_embedding/embeddings"))
    if rows != len(tagger.words):
        raise ModelFolderError(folder, f"words.txt has {len(tagger.words)} entries with padding and UNK, but "
                                       f"{whose} word embeddings have {rows} rows")
    if chars.shape[0] != len(tagger.chars):
        raise ModelFolderError(folder, f"chars.txt has {len(tagger.chars)} entries with padding and UNK, but "
                                       f"{whose} character embeddings have {chars.shape[0]} rows")
    if transitions.shape[0] != len(tagger.labels) + 2:
        raise ModelFolderError(folder, f"labels.txt has {len(tagger.labels)} labels, but {whose} CRF transition "
                                       f"matrix is {transitions.shape[0]}x{transitions.shape[1]} (labels + start + end)")


# format 1 ---------------------------------------------------------------------------------------
def _load_legacy(folder: Path, quiet: bool) -> Tagger:
    """A folder written by neuroner_tl 0.1: weights in ``weights.npz``, the other files beside it."""
    missing = [name for name in LEGACY_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(folder, f"missing {', '.join(missing)}; not a complete neuroner_tl model")
    if not quiet:
        print(f"note: model folder {folder} is in format {LEGACY_FORMAT} (weights.npz, neuroner_tl 0.1); it "
              f"loads in this release only: rewrite it with `neuroner-tl upgrade {folder} -o NEW_FOLDER`",
              file=sys.stderr)
    tagger = _tagger_from_files(folder, folder, LEGACY_FORMAT)
    try:
        with np.load(folder / LEGACY_WEIGHTS, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        raise ModelFolderError(folder, f"{LEGACY_WEIGHTS} is not a readable weights file (truncated or corrupt)") from None
    _check_sizes(folder, tagger, arrays, f"{LEGACY_WEIGHTS}'s")
    try:
        assign_weights(tagger.network, arrays)
    except ValueError as error:
        raise ModelFolderError(folder, f"{LEGACY_WEIGHTS}: {error}") from None
    return tagger


def upgrade(folder: PathLike, output: PathLike, force: bool = False) -> Path:
    """Rewrite a model folder (of either format) in the current one, keeping its evaluation and plots."""
    folder = Path(folder)
    check_model_destination(output, force, [folder])
    tagger = load_tagger(folder, quiet=True)
    extras = {name: folder / name for name in ("evaluation.json", "training.png", "update.png", "logs")
              if (folder / name).exists()}
    return save_tagger(tagger, output, force=force, extra_files=extras)


def model_id(folder: PathLike) -> str:
    """A short digest of what makes a model: its weights (the SavedModel's variables) and its assets
    (vocabularies, labels, hyperparameters). Copies of a folder share it; another model has another."""
    folder = Path(folder)
    saved_model = saved_model_of(folder) or folder
    digest = hashlib.sha256()
    for part in ("variables", ASSETS):
        for path in sorted((saved_model / part).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(saved_model).as_posix().encode() + b"\0")
                digest.update(file_fingerprint(path).encode())
    return digest.hexdigest()[:16]

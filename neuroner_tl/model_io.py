"""Model folders: self-contained, written atomically, validated when read.

A folder holds ``config.json`` (hyperparameters), ``model.json`` (format version, labels, sizes),
``words.txt``/``chars.txt``/``labels.txt``, ``weights.npz`` (to rebuild and keep training the
Keras network), ``saved_model/`` (a TF SavedModel whose ``serving_default`` signature maps token
strings to tags and scores, loadable with ``tf.saved_model.load`` alone), ``history.json``,
``provenance.json`` (which data the model saw), ``metadata.json`` (library versions) and, after
training, ``training.png`` and ``logs/`` (TensorBoard).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Optional, Union

import zipfile
import keras
import numpy as np
import tensorflow as tf

from .config import Hyperparameters
from . import tags as tagging
from .errors import ModelFolderError, NeuronerError
from .runfolder import check_model_destination
from .model import CHAR_INDEX_INPUT, CHAR_INPUT, WORD_INPUT, load_weights, save_weights
from .tagger import Tagger
from .vocabulary import PAD_ID, UNK_ID, Vocabulary

FORMAT_VERSION = 1
SAVED_MODEL_DIR = "saved_model"
WEIGHTS_FILE = "weights.npz"
REQUIRED_FILES = ("config.json", "model.json", "words.txt", "chars.txt", "labels.txt", WEIGHTS_FILE,
                  f"{SAVED_MODEL_DIR}/saved_model.pb", f"{SAVED_MODEL_DIR}/variables/variables.index")
PathLike = Union[str, Path]


def package_version() -> str:
    from . import __version__

    return __version__


def save_tagger(tagger: Tagger, folder: PathLike, force: bool = False, extra_files: Optional[dict] = None,
                staging: Optional[PathLike] = None) -> Path:
    """Write ``tagger`` as a model folder. Everything is written into a hidden folder first (``staging``,
    by default a sibling of ``folder``) and moved into place at the end, so a crash never leaves a
    half-written model; an existing folder is replaced only with ``force`` and only once the new one
    is complete.

    ``extra_files`` maps names inside the folder to existing paths to move in (logs, plots).
    """
    folder = check_model_destination(folder, force)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(staging) if staging is not None else folder.parent / f".{folder.name}.writing-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        _write_contents(tagger, staging)
        for name, source in (extra_files or {}).items():
            if Path(source).exists():
                shutil.copytree(source, staging / name) if Path(source).is_dir() else shutil.copy2(source, staging / name)
        _swap_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _swap_into_place(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(staging, folder)
        return
    retired = staging.parent / f".{folder.name}.replaced-{os.getpid()}"
    os.rename(folder, retired)
    try:
        os.rename(staging, folder)
    except BaseException:
        os.rename(retired, folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _write_contents(tagger: Tagger, folder: Path) -> None:
    tagger.hp.save(folder / "config.json")
    model_info = {"format_version": FORMAT_VERSION, "labels": tagger.labels, "num_words": len(tagger.words),
                  "num_chars": len(tagger.chars), "word_dim": tagger.word_dim}
    _write_json(folder / "model.json", model_info)
    tagger.words.save(folder / "words.txt")
    tagger.chars.save(folder / "chars.txt")
    (folder / "labels.txt").write_text("".join(l + "\n" for l in tagger.labels), encoding="utf-8")
    save_weights(tagger.network, folder / WEIGHTS_FILE)
    _write_json(folder / "history.json", tagger.history)
    _write_json(folder / "provenance.json", tagger.provenance)
    _write_json(folder / "metadata.json", {
        "neuroner_tl": package_version(), "format_version": FORMAT_VERSION, "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    export_saved_model(tagger, folder / SAVED_MODEL_DIR)


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_tagger(folder: PathLike) -> Tagger:
    """Rebuild a ``Tagger`` from a model folder, checking that every part is there and consistent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(folder, "does not exist" if not folder.exists() else "is not a folder")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(folder, f"missing {', '.join(missing)}; not a complete neuroner_tl model")
    info = _read_json(folder, "model.json")
    version = info.get("format_version") if isinstance(info, dict) else None
    if version != FORMAT_VERSION:
        raise ModelFolderError(folder, f"written in model format {version!r}; this neuroner_tl "
                                       f"({package_version()}) reads format {FORMAT_VERSION}")
    config = _read_json(folder, "config.json")
    if not isinstance(config, dict):
        raise ModelFolderError(folder, "config.json does not hold a JSON object of hyperparameters")
    try:
        hp = Hyperparameters.from_dict(config)
    except NeuronerError as error:
        raise ModelFolderError(folder, f"config.json: {error}") from None
    words = Vocabulary.load(folder / "words.txt")
    chars = Vocabulary.load(folder / "chars.txt")
    labels = [l for l in (folder / "labels.txt").read_text(encoding="utf-8").split("\n") if l]
    if labels != info.get("labels"):
        raise ModelFolderError(folder, "labels.txt does not match the labels in model.json")
    expected = {"word_embedding": (len(words), info.get("word_dim")), "emissions": len(labels),
                "char_embedding": len(chars)}
    _check_weight_shapes(folder, expected)
    _check_saved_model(folder)
    tagger = Tagger(hp, words, chars, labels, word_dim=info["word_dim"],
                    history=_read_json(folder, "history.json", default=[]),
                    provenance=_read_json(folder, "provenance.json", default=None))
    try:
        load_weights(tagger.network, folder / WEIGHTS_FILE)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        raise ModelFolderError(folder, f"{WEIGHTS_FILE}: {str(error).splitlines()[0]}") from None
    return tagger


def _read_json(folder: Path, name: str, default=...):
    path = folder / name
    if not path.exists() and default is not ...:
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFolderError(folder, f"{name} is not valid JSON ({error})") from None


def _check_weight_shapes(folder: Path, expected: dict) -> None:
    """The vocabularies must match the stored weights, else the files come from different models."""
    try:
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as weights:
            checked = ("word_embedding/embeddings", "char_encoder/char_embedding/embeddings", "crf/transitions")
            shapes = {name: weights[name].shape for name in checked if name in weights.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise ModelFolderError(folder, f"{WEIGHTS_FILE} is not a readable weights file (truncated or corrupt)") from None

    word_shape = shapes.get("word_embedding/embeddings")
    char_shape = shapes.get("char_encoder/char_embedding/embeddings")
    crf_shape = shapes.get("crf/transitions")
    if None in (word_shape, char_shape, crf_shape):
        raise ModelFolderError(folder, f"{WEIGHTS_FILE} lacks the embedding or CRF weights of a neuroner_tl network")
    if word_shape[0] != expected["word_embedding"][0]:
        raise ModelFolderError(folder, f"words.txt has {expected['word_embedding'][0]} entries with padding and "
                                       f"UNK, but the word embeddings have {word_shape[0]} rows")
    if char_shape[0] != expected["char_embedding"]:
        raise ModelFolderError(folder, f"chars.txt has {expected['char_embedding']} entries with padding and "
                                       f"UNK, but the character embeddings have {char_shape[0]} rows")
    if crf_shape[0] != expected["emissions"] + 2:
        raise ModelFolderError(folder, f"labels.txt has {expected['emissions']} labels, but the CRF transition "
                                       f"matrix is {crf_shape[0]}x{crf_shape[1]} (labels + start + end)")


def _check_saved_model(folder: Path) -> None:
    """The SavedModel's graph must parse and name the serving signature (catches truncation)."""
    from tensorflow.core.protobuf import saved_model_pb2

    message = saved_model_pb2.SavedModel()
    try:
        message.ParseFromString((folder / SAVED_MODEL_DIR / "saved_model.pb").read_bytes())
    except Exception:  # protobuf raises its own DecodeError, which has no stable import path
        raise ModelFolderError(folder, f"{SAVED_MODEL_DIR}/saved_model.pb is truncated or corrupt") from None
    signatures = message.meta_graphs[0].signature_def if message.meta_graphs else {}
    if "serving_default" not in signatures:
        raise ModelFolderError(folder, f"{SAVED_MODEL_DIR} has no serving_default signature (truncated or not ours)")
    _check_saved_model_variables(folder)


def _check_saved_model_variables(folder: Path) -> None:
    """Every variable of the SavedModel reads back whole: a deleted or truncated ``variables.data-*``
    would otherwise go unnoticed by the package (which reads ``weights.npz``) and break serving."""
    prefix = folder / SAVED_MODEL_DIR / "variables" / "variables"
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, OSError) as error:  # IndexError: a truncated data file
        reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:160]
        raise ModelFolderError(folder, f"{SAVED_MODEL_DIR}/variables cannot be read back ({reason}); the "
                                       f"SavedModel is damaged: copy the folder again or retrain") from None


def file_fingerprint(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The SavedModel ---------------------------------------------------------------------------------
class ServingModule(tf.Module):
    """Token strings ``[batch, time]`` (``""`` pads) -> tags, tag ids, path scores, log-probabilities,
    token confidences (the marginal of each token's tag) and span confidences (each entity token: its
    entity's probability, ``crf.crf_confidences``), decoded as the tagger decodes (constrained or not)."""

    def __init__(self, tagger: Tagger):
        super().__init__(name="neuroner_tl_serving")
        self.network = tagger.network
        self.crf = tagger.crf
        allowed = tagger.allowed_transitions()
        self.allowed = None if allowed is None else tf.constant(allowed)
        self.continues = tf.constant(tagging.span_continuation(tagger.labels))
        self.is_entity = tf.constant([label != tagging.OUTSIDE for label in tagger.labels])
        hp = tagger.hp
        self.replace_digits = hp.replace_digits
        self.lowercase_lookup = hp.lowercase_lookup
        self.max_word_length = hp.max_word_length
        self.word_table = _table(tagger.words)
        self.char_table = _table(tagger.chars)
        self.labels = tf.Variable(tagger.labels, trainable=False, dtype=tf.string, name="labels")

    def _word_ids(self, forms):
        ids = self.word_table.lookup(forms)
        if self.lowercase_lookup:
            ids = tf.where(ids < 0, self.word_table.lookup(tf.strings.lower(forms, encoding="utf-8")), ids)
        ids = tf.where(ids < 0, tf.constant(UNK_ID, tf.int32), ids)
        return tf.where(forms == "", tf.constant(PAD_ID, tf.int32), ids)

    def _char_inputs(self, forms):
        """(chars of the distinct tokens [U, W], each position's row [B, T], -1 for padding)."""
        distinct, index = tf.unique(tf.reshape(forms, [-1]))
        characters = tf.strings.unicode_split(distinct, "UTF-8").to_tensor(default_value="")
        characters = characters[:, : self.max_word_length]
        ids = self.char_table.lookup(characters)
        ids = tf.where(ids < 0, tf.constant(UNK_ID, tf.int32), ids)
        ids = tf.where(characters == "", tf.constant(PAD_ID, tf.int32), ids)
        char_index = tf.reshape(index, tf.shape(forms))
        return ids, tf.where(forms == "", tf.constant(-1, tf.int32), char_index)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens")])
    def serve(self, tokens):
        """Rows of token strings, each padded at the end with ``""``. An empty string before a row's
        last token is an error (as it is for ``Tagger.predict``): it would shift every later token."""
        forms = tf.strings.regex_replace(tokens, "[0-9]", "0") if self.replace_digits else tokens
        real = forms != ""
        lengths = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
        trailing_padding = tf.reduce_all(tf.equal(real, tf.sequence_mask(lengths, tf.shape(forms)[1])))
        checked = tf.debugging.Assert(trailing_padding, [INTERIOR_EMPTY_MESSAGE])
        with tf.control_dependencies([checked]):
            return tf.cond(tf.reduce_any(real), lambda: self._tag(forms, lengths), lambda: self._nothing(forms))

    def _tag(self, forms, lengths):
        words = self._word_ids(forms)
        chars, char_index = self._char_inputs(forms)
        potentials = self.network({WORD_INPUT: words, CHAR_INPUT: chars, CHAR_INDEX_INPUT: char_index}, training=False)
        tag_ids, best = self.crf.decode(potentials, lengths, self.allowed)
        log_norm = self.crf.log_norm(potentials, lengths, self.allowed)
        token, span = self.crf.confidences(potentials, tag_ids, lengths, self.continues, self.is_entity, self.allowed)
        mask = tf.sequence_mask(lengths, tf.shape(words)[1])
        tags = tf.where(mask, tf.gather(self.labels, tag_ids), "")
        return {"tags": tags, "tag_ids": tf.where(mask, tag_ids, 0), "lengths": lengths, "scores": best,
                "log_probability": best - log_norm, "confidence": token, "span_confidence": span}

    def _nothing(self, forms):
        """The answer for a batch without a single token (no rows, no columns, or all padding)."""
        shape = tf.shape(forms)
        zeros = tf.zeros([shape[0]], tf.float32)
        return {"tags": tf.fill(shape, ""), "tag_ids": tf.zeros(shape, tf.int32),
                "lengths": tf.zeros([shape[0]], tf.int32), "scores": zeros, "log_probability": zeros,
                "confidence": tf.zeros(shape, tf.float32), "span_confidence": tf.zeros(shape, tf.float32)}


INTERIOR_EMPTY_MESSAGE = ("an empty string before a row's last token: \"\" is padding and may only follow the "
                          "tokens; drop empty tokens before tagging")


def _table(vocabulary: Vocabulary) -> tf.lookup.StaticHashTable:
    keys = tf.constant(vocabulary.entries[2:] or ["\x00"], dtype=tf.string)
    values = tf.constant(list(range(2, len(vocabulary))) or [UNK_ID], dtype=tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)


def export_saved_model(tagger: Tagger, path: PathLike) -> None:
    module = ServingModule(tagger)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})

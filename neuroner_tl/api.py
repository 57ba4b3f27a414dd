"""The Python API behind every CLI command, the experiments and the notebook."""

from __future__ import annotations

import collections
import dataclasses
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from . import prediction
from . import tags as tagging
from .brat import read_brat_documents, text_sentences, write_brat
from .calibration import calibrate
from .config import MAX_DIMENSION, Hyperparameters
from .conll import Corpus, Sentence, atomic_write_text, atomic_writer, read_utf8_text, write_conll
from .corpora import (check_has_entities, check_target_has_types, check_types, check_types_have_training_spans,
                      describe_corpus, hold_out_dev)
from .devices import Devices
from .embeddings import load_vectors
from .errors import DataFormatError, NeuronerError
from .evaluation import Report
from .formats import (check_formats, check_output_file, detect_input_format, load_corpus,
                      path_of, require_labels, sentences_with_offsets)
from .lines import LineSource
from .model_io import file_fingerprint, load_tagger, read_evaluation
from .model_io import upgrade as upgrade_folder
from .runfolder import RunFolder, check_model_destination, check_writable_place, fingerprint_of_corpus, fingerprint_of_value
from .tagger import Prediction, Tagger, Threshold, build_tagger
from .training import Progress, Trainer, seed_everything

__all__ = ["TrainResult", "train", "evaluate", "predict", "predict_stream", "tag", "update", "annotate", "info",
           "make_embeddings", "demo", "upgrade", "load_tagger", "load_corpus", "as_tagger", "Progress", "Devices"]

PathLike = Union[str, Path]
CorpusLike = Union[PathLike, Corpus]


@dataclasses.dataclass
class TrainResult:
    tagger: Tagger
    folder: Optional[Path]
    dev_report: Optional[Report]
    test_report: Optional[Report]
    best_epoch: int


def train(train_data: CorpusLike, output: Optional[PathLike], *, dev: Optional[CorpusLike] = None,
          test: Optional[CorpusLike] = None, hp: Optional[Hyperparameters] = None,
          embeddings: Optional[PathLike] = None, embeddings_format: Optional[str] = None,
          scheme: Optional[str] = None, force: bool = False, resume: bool = False, restart: bool = False,
          verbose: bool = True, devices: Optional[Devices] = None) -> TrainResult:
    """Train a model and, when ``output`` is given, save it as a model folder.

    Without ``dev``, 10% of the training sentences (seeded) are held out for early stopping (fewer
    than ``MIN_SENTENCES_TO_SPLIT``: all train, and dev is the same sentences). ``resume`` carries on
    from the checkpoint an interrupted run with the same output left behind; ``restart`` drops it.
    ``devices`` (``devices.Devices``): where to train (default: one device; several through
    ``tf.distribute``; mixed precision).
    """
    hp = hp or Hyperparameters()
    progress = Progress(verbose)
    inputs = [path_of(train_data), path_of(dev), path_of(test), embeddings]
    with RunFolder(output, force=force, resume=resume, restart=restart, inputs=inputs, command="train",
                   say=progress.log, devices=devices) as run:
        train_corpus = require_labels(load_corpus(train_data, scheme), "training")
        check_has_entities(train_corpus, "training")
        dev_corpus = require_labels(load_corpus(dev, scheme), "dev") if dev is not None else None
        test_corpus = require_labels(load_corpus(test, scheme), "test") if test is not None else None
        vectors = load_vectors(embeddings, embeddings_format) if embeddings else None
        if vectors is not None and vectors.vector_size != hp.token_embedding_dim:
            progress.log(f"the vectors in {embeddings} are {vectors.vector_size}-d: token_embedding_dim is "
                         f"{vectors.vector_size}")
            hp = hp.replace(token_embedding_dim=vectors.vector_size)
        seed_everything(hp.seed)
        train_part = train_corpus
        if dev_corpus is None:
            train_part, dev_corpus = hold_out_dev(train_corpus, 0.1, hp.seed, progress.log)
        check_types_have_training_spans(progress.log, train_part, dev_corpus, test_corpus, split=dev is None)
        run.check_fingerprint({"training data": fingerprint_of_corpus(train_corpus),
                               "dev data": fingerprint_of_corpus(dev_corpus),
                               "vectors": file_fingerprint(embeddings) if embeddings else "none",
                               "hyperparameters": fingerprint_of_value(hp.to_dict())})
        others = [c for c in (dev_corpus, test_corpus) if c is not None]
        tagger = build_tagger(hp, train_part, others, vectors)
        tagger.provenance = {"trained_on": [describe_corpus(train_part, "train", path_of(train_data)),
                                            describe_corpus(dev_corpus, "dev", path_of(dev))],
                             "embeddings": str(Path(embeddings).resolve()) if embeddings else None,
                             "updates": []}
        progress.log(f"training on {len(train_part)} sentences, dev {len(dev_corpus)}; labels "
                     f"{', '.join(tagger.labels)}; vocabulary {len(tagger.words)} words, {len(tagger.chars)} characters")
        if vectors is not None:
            progress.log(f"embeddings {embeddings}: {tagger.embedding_coverage}")
        progress.log("hyperparameters: " + json.dumps(hp.to_dict(), sort_keys=True))
        staging = run.checkpoint
        items = tagger.encode_corpus(train_part)
        trainer = Trainer(tagger, progress=progress, checkpoint_dir=staging,
                          log_dir=staging / "logs" if staging else None, singleton_ids=tagger.singletons,
                          frozen=("word_embedding",) if hp.freeze_word_embeddings else (), devices=devices)
        trainer.fit(items, dev_corpus, resume=run.resuming)
        calibrated = calibrate(tagger, dev_corpus, train_part, progress.log)
        dev_report = tagger.evaluate(dev_corpus)[0]
        test_report = tagger.evaluate(test_corpus)[0] if test_corpus is not None else None
        progress.log(f"best epoch {trainer.best_epoch}: dev F1 {dev_report.f1:.2f}"
                     + (f", test F1 {test_report.f1:.2f}" if test_report else ""))
        if output is not None:
            reports = {"dev": dev_report.to_dict(), "test": test_report.to_dict() if test_report else None,
                       "best_epoch": trainer.best_epoch, "calibration": calibrated}
            atomic_write_text(staging / "evaluation.json", json.dumps(reports, indent=2) + "\n")
            run.save_model(tagger, tagger.history, "training.png", extra_names=("evaluation.json",))
            progress.log(f"model saved to {output}" if run.writes_model else "worker done (the chief saves the model)")
    return TrainResult(tagger, run.output if run.writes_model else None, dev_report, test_report, trainer.best_epoch)


def as_tagger(model: Union[PathLike, Tagger]) -> Tagger:
    return model if isinstance(model, Tagger) else load_tagger(model)


def model_path(model: Union[PathLike, Tagger]) -> Optional[PathLike]:
    """A model folder given as a path is an input of the command (everything under it)."""
    return None if isinstance(model, Tagger) else model


def evaluate(model: Union[PathLike, Tagger], data: CorpusLike, scheme: Optional[str] = None,
             predictions_output: Optional[PathLike] = None, force: bool = False) -> Report:
    """conlleval figures of ``model`` on labelled ``data``; optionally writes gold and predicted tags."""
    if predictions_output is not None:
        check_output_file(predictions_output, force, [path_of(data), model_path(model)])
    tagger = as_tagger(model)
    corpus = require_labels(load_corpus(data, scheme), "evaluation")
    report, predicted = tagger.evaluate(corpus)
    if predictions_output is not None:
        write_conll(predictions_output, [s.with_labels(tagging.convert(s.labels, "IOB2")) for s in corpus.sentences],
                    predicted)
    return report


def predict(model: Union[PathLike, Tagger], source: PathLike, output: Optional[PathLike] = None, *,
            input_format: Optional[str] = None, output_format: str = "conll", force: bool = False,
            batch_size: int = 128, min_confidence: Threshold = None, token_confidence: bool = False):
    """Tag a CoNLL file, a raw text file or a BRAT folder; write CoNLL, BRAT or JSON.

    Returns (sentences, predicted tags), all in memory; ``output`` None writes nothing. Entities below
    ``min_confidence`` (a probability, or one per type with ``"*"`` for the rest) are dropped;
    ``token_confidence`` adds each token's confidence to CoNLL (a column) and JSON output. For
    inputs of any size, :func:`predict_stream` keeps memory flat.
    """
    from_stdin = str(source) == prediction.STDIN
    if input_format is None and not from_stdin and Path(source).is_dir():
        input_format = "brat"
    input_format, output_format = check_formats(None, input_format, output_format)
    if output is not None:
        check_output_file(output, force, [source, model_path(model)], folder=output_format == "brat")
    tagger = as_tagger(model)
    texts: Dict[str, str] = {}
    if input_format == "brat" and not from_stdin:
        corpus, texts = read_brat_documents(source)
        sentences, document = corpus.sentences, Path(source).name
    else:
        with LineSource(source) as lines:
            input_format = detect_input_format(lines, input_format)
            read = list(lines)
        document = lines.document
        found = prediction.conll_sentences(read, lines.name) if input_format == "conll" else \
            prediction.text_sentences(read, document)
        sentences = list(prediction.nonempty(iter(found), lines.name))
        if input_format == "text":
            texts[document] = "".join(read)
    want_confidence = output_format == "json" or token_confidence or min_confidence is not None
    predictions = tagger.predict_with_confidence(sentences, batch_size, want_confidence, min_confidence)
    predicted = [p.tags for p in predictions]
    if output is not None and output_format == "brat":
        if not texts:  # CoNLL input: the text is the tokens joined by spaces, a sentence a line
            sentences, texts = sentences_with_offsets(sentences, document)
        write_brat(output, texts, sentences, predicted)
    elif output is not None:
        with atomic_writer(output) as stream:
            prediction.write_stream(zip(sentences, predictions), stream, output_format, token_confidence)
    return sentences, predicted


def predict_stream(model: Union[PathLike, Tagger], source: PathLike, output: Optional[PathLike] = None, *,
                   stream=None, input_format: Optional[str] = None, output_format: str = "conll",
                   force: bool = False, batch_size: int = 128, min_confidence: Threshold = None,
                   token_confidence: bool = False) -> int:
    """Tag a CoNLL or raw text file, or standard input when ``source`` is ``"-"``, a chunk at a time,
    writing CoNLL or JSON to ``output`` (atomically) or to ``stream`` (default: standard output) as it
    goes: memory stays flat whatever the input's size. Returns the number of sentences tagged."""
    from_stdin = str(source) == prediction.STDIN
    if output_format == "brat" or input_format == "brat" or (not from_stdin and Path(source).is_dir()):
        raise NeuronerError("BRAT documents are tagged whole: use predict, not predict_stream")
    if output is not None:
        check_output_file(output, force, [source, model_path(model)])
    check_formats(None, input_format, output_format)
    with LineSource(source) as lines:
        input_format = detect_input_format(lines, input_format)
        return prediction.predict_stream(as_tagger(model), lines, input_format, Path(output) if output else None,
                                         stream, output_format=output_format, batch_size=batch_size,
                                         token_confidence=token_confidence, min_confidence=min_confidence)


def tag(model: Union[PathLike, Tagger], texts, *, batch_size: int = 128, min_confidence: Threshold = None):
    """Entities with character offsets, type and confidence in in-memory text (``Tagger.tag``): a list
    for one string, a list of lists for a list of strings."""
    return as_tagger(model).tag(texts, batch_size=batch_size, min_confidence=min_confidence)


def predictions_as_json(sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]]) -> List[dict]:
    """The JSON records of tagged sentences (without confidences: only the tags are known here)."""
    return [prediction.prediction_record(sentence, Prediction(list(tags), 0.0))
            for sentence, tags in zip(sentences, predicted)]


def info(model: Union[PathLike, Tagger]) -> dict:
    """What a model folder holds: labels, sizes, hyperparameters, training data and metrics."""
    tagger = as_tagger(model)
    result = {"labels": tagger.labels, "entity_types": tagger.entity_types, "words": len(tagger.words),
              "characters": len(tagger.chars), "word_dim": tagger.word_dim,
              "parameters": int(sum(int(np.prod(v.shape)) for v in tagger.network.weights)),
              "hyperparameters": tagger.hp.to_dict(), "provenance": tagger.provenance,
              "epochs": len(tagger.history), "temperature": tagger.temperature}
    if not isinstance(model, Tagger):
        evaluation = read_evaluation(model)
        if evaluation is not None:
            result["evaluation"] = evaluation
    return result


def make_embeddings(text: PathLike, output: PathLike, *, method: str = "word2vec", dim: int = 300,
                    epochs: int = 5, min_count: int = 1, seed: int = 1, force: bool = False) -> Path:
    """Train word vectors on a user's raw text (one or more sentences a line) with gensim."""
    from .embeddings import train_vectors

    text = Path(text)
    for name, value in (("dim", dim), ("epochs", epochs), ("min_count", min_count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NeuronerError(f"--{name.replace('_', '-')} must be a whole number of at least 1, not {value!r}")
    if dim > MAX_DIMENSION:
        raise NeuronerError(f"--dim must be at most {MAX_DIMENSION} (the largest word vectors a model takes), not {dim}")
    check_output_file(output, force, [text])
    raw = read_utf8_text(text)
    sentences = [s.tokens for s in text_sentences(raw)]
    if not sentences:
        raise DataFormatError("has no words to train vectors on", text)
    counts = collections.Counter(token for tokens in sentences for token in tokens)
    word, most = counts.most_common(1)[0]
    if most < min_count:
        raise DataFormatError(f"no word occurs --min-count {min_count} times (the most frequent, {word!r}, occurs "
                              f"{most}); lower --min-count", text)
    return train_vectors(sentences, output, method=method, dim=dim, epochs=epochs, min_count=min_count, seed=seed)


def demo(workdir: PathLike, *, sizes=(1500, 300, 300), domain: str = "A", hp: Optional[Hyperparameters] = None,
         force: bool = False, verbose: bool = True) -> TrainResult:
    """The main job on the embedded data: generate customer-service chats, train, evaluate, report.

    Every destination is checked before anything is written: data files that differ from the
    generated ones (a user's edits) are never overwritten, and an earlier model is replaced only with
    ``force``."""
    from .datasets import dataset_texts

    workdir = Path(workdir)
    for name, size in zip(("train", "dev", "test"), sizes):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise NeuronerError(f"the {name} size must be a whole number of at least 1 sentence, not {size!r}"
                                f"{' (--train-size)' if name == 'train' else ''}")
    hp = hp or Hyperparameters(max_epochs=30, patience=5)
    model_folder = workdir / "model"
    check_model_destination(model_folder, force)
    texts = dataset_texts(domain=domain, sizes=sizes, seed=0)
    paths = {split: workdir / "data" / f"{split}.txt" for split in texts}
    for split, path in paths.items():
        if path.is_dir() or (path.exists() and read_utf8_text(path) != texts[split]):
            raise NeuronerError(f"{path} exists and is not the data this demo generates (edited?); demo never "
                                f"overwrites it: move it away or choose another --workdir")
    for split, path in paths.items():
        check_writable_place(path)
        if not path.exists():
            atomic_write_text(path, texts[split])
    if verbose:
        print(f"generated customer-service chats (domain {domain}) in {workdir / 'data'}: "
              f"{sizes[0]} train, {sizes[1]} dev, {sizes[2]} test sentences", file=sys.stderr)
    return train(paths["train"], model_folder, dev=paths["dev"], test=paths["test"], hp=hp, force=force,
                 verbose=verbose)


# Transfer learning ------------------------------------------------------------------------------
def update(model: Union[PathLike, Tagger], target: CorpusLike, entity_types: Sequence[str],
           output: Optional[PathLike], *, method: Optional[str] = None, forget: bool = False,
           dev: Optional[CorpusLike] = None, test: Optional[CorpusLike] = None, annotated: bool = False,
           init: Optional[str] = None, learning_rate: Optional[float] = None, max_epochs: Optional[int] = None,
           patience: Optional[int] = None, embeddings: Optional[PathLike] = None, scheme: Optional[str] = None,
           force: bool = False, resume: bool = False, restart: bool = False, verbose: bool = True,
           seed: Optional[int] = None, devices: Optional[Devices] = None,
           options: Optional[Dict[str, object]] = None, **settings):
    """Update a trained model with target data annotated only with ``entity_types``.

    The source model labels the other types (``transfer``), labels are added for the types it
    lacks (or, with ``forget``, re-drawn for seen ones), the vocabularies grow, and the network is
    fine-tuned with ``method`` (``transfer.METHODS``; default ``transfer.DEFAULT_METHOD``), with
    early stopping on the target types' gold F1 and the retention of the others. ``options`` (as
    ``--config``/``--set`` give them) and keyword ``settings`` name fields of
    ``transfer.UpdateSettings`` or training fields of the source's hyperparameters. The source is
    never written; ``output`` None keeps the result in memory. ``resume``/``restart``: as for ``train``.
    Returns a ``transfer.UpdateResult``.
    """
    from .transfer import make_settings, split_update_options
    from .transfer import update as run_update

    explicit = {"method": method, "init": init, "learning_rate": learning_rate, "max_epochs": max_epochs,
                "patience": patience}
    values = {**(options or {}), **settings, **{k: v for k, v in explicit.items() if v is not None}}
    setting_values, hyperparameters = split_update_options(values)
    return run_update(model, target, entity_types, output, settings=make_settings(setting_values), forget=forget,
                      dev=dev, test=test, annotated=annotated, hyperparameters=hyperparameters,
                      embeddings=embeddings, scheme=scheme, force=force, resume=resume, restart=restart,
                      verbose=verbose, seed=seed, devices=devices)


def annotate(model: Union[PathLike, Tagger], target: CorpusLike, entity_types: Sequence[str],
             output: Optional[PathLike] = None, *, scheme: Optional[str] = None, force: bool = False):
    """The update's first step on its own: the model labels every type of ``target`` except
    ``entity_types``, whose annotated spans are kept (and win over overlapping predictions).

    Writes CoNLL (IOB2) to ``output`` when given, for a person to check and correct before
    ``update(..., annotated=True)``. Returns a ``pseudo.Annotation``.
    """
    from .pseudo import annotate as annotate_with_model

    if output is not None:
        check_output_file(output, force, [path_of(target), model_path(model)])
    tagger = as_tagger(model)
    types = check_types(entity_types)
    corpus = require_labels(load_corpus(target, scheme), "target")
    check_target_has_types(corpus, types, tagger, path_of(target))
    result = annotate_with_model(tagger, corpus, types)
    if output is not None:
        write_conll(output, result.corpus.sentences)
    return result


def upgrade(model: PathLike, output: PathLike, *, force: bool = False) -> Path:
    """Rewrite a model folder of an earlier format (or a bare SavedModel) as a current model folder."""
    return upgrade_folder(model, output, force=force)

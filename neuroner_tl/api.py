"""The Python API behind every CLI command, the experiments and the notebook."""

from __future__ import annotations

import collections
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from . import prediction
from . import tags as tagging
from .atomic import atomic_write_bytes, atomic_write_text, atomic_writer
from .brat import read_brat_documents, text_sentences, write_brat
from .calibration import calibrate_on_dev, fit_temperature
from .checksums import Verification, checksums_ignored  # noqa: F401 (checksums_ignored: part of the API)
from .config import MAX_DIMENSION, Hyperparameters
from .conll import write_conll
from .corpora import (check_has_entities, check_target_has_types, check_types, check_types_have_training_spans,
                      describe_corpus, hold_out_dev)
from .corpus import Corpus, Sentence
from .devices import Devices
from .embeddings import load_vectors
from .errors import CalibrationError, DataFormatError, NeuronerError
from .evaluation import Report, gold_tags
from .fingerprints import file_fingerprint, fingerprint_of_corpus, fingerprint_of_value
from .formats import (SPAN_FORMATS, annotation_format, check_formats, check_output_file, detect_input_format,
                      load_corpus, load_documents, path_of, require_labels, sentences_with_offsets)
from .jsonl import write_documents as write_jsonl
from .labelstudio import write_tasks
from .lines import LineSource, read_utf8_text
from .model_io import load_tagger, read_evaluation, save_tagger, verify_checksums
from .model_io import upgrade as upgrade_folder
from .outputs import check_model_destination, check_writable_place
from .pool import Chosen, output_format_for, ranked, read_pool, source_format, write_chosen
from .predicted import Prediction  # noqa: F401 (what the API's predictions are)
from .progress import Progress
from .runfolder import RunFolder
from .selection import SelectionSettings, candidates, checked_types, choose, item_scores, newest_types
from .spans import SpanDocument, tagged_documents
from .tagger import Tagger, build_tagger
from .thresholds import (DEFAULT_LADDER, Threshold, ThresholdReport, check_ladder, check_target_precision, check_threshold,
                         plot_thresholds)
from .thresholds import threshold_report as sweep_thresholds
from .training import Trainer, seed_everything

__all__ = ["TrainResult", "train", "evaluate", "threshold_report", "predict", "predict_stream", "tag", "update",
           "annotate", "select", "info", "verify", "make_embeddings", "demo", "upgrade", "load_tagger", "load_corpus",
           "as_tagger", "checksums_ignored", "Progress", "Devices"]

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
        calibrated = calibrate_on_dev(tagger, dev_corpus, train_part, progress.log)
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


def as_tagger(model: Union[PathLike, Tagger], calibrated: bool = True) -> Tagger:
    """The model (a folder is loaded); ``calibrated`` False: its confidences are the raw CRF's, not
    divided by the fitted temperature (a ``Tagger`` given is set so)."""
    tagger = model if isinstance(model, Tagger) else load_tagger(model)
    if tagger.calibrated != calibrated:
        tagger.calibrated = calibrated
    return tagger


def model_path(model: Union[PathLike, Tagger]) -> Optional[PathLike]:
    """A model folder given as a path is an input of the command (everything under it)."""
    return None if isinstance(model, Tagger) else model


def evaluate(model: Union[PathLike, Tagger], data: CorpusLike, scheme: Optional[str] = None,
             predictions_output: Optional[PathLike] = None, force: bool = False,
             min_confidence: Threshold = None, calibrated: bool = True) -> Report:
    """conlleval figures of ``model`` on labelled ``data``; optionally writes gold and predicted tags.
    Entities below ``min_confidence`` (as ``predict`` takes it) are dropped before scoring."""
    if predictions_output is not None:
        check_output_file(predictions_output, force, [path_of(data), model_path(model)])
    tagger = as_tagger(model, calibrated)
    corpus = require_labels(load_corpus(data, scheme), "evaluation")
    report, predicted = tagger.evaluate(corpus, min_confidence=min_confidence)
    if predictions_output is not None:
        write_evaluated(predictions_output, corpus, predicted)
    return report


def write_evaluated(path: PathLike, corpus: Corpus, predicted: Sequence[Sequence[str]]) -> None:
    """Tokens, gold and predicted tags (all IOB2) as CoNLL."""
    write_conll(path, [s.with_labels(tags) for s, tags in zip(corpus.sentences, gold_tags(corpus))], predicted)


def threshold_report(model: Union[PathLike, Tagger], data: CorpusLike, *, scheme: Optional[str] = None,
                     ladder: Sequence[float] = DEFAULT_LADDER, target_precision: Optional[float] = None,
                     json_output: Optional[PathLike] = None, plot_output: Optional[PathLike] = None,
                     predictions_output: Optional[PathLike] = None, force: bool = False,
                     batch_size: int = 128, calibrated: bool = True) -> ThresholdReport:
    """Precision, recall and F1 of ``model`` on labelled ``data`` per type and overall at each
    threshold of ``ladder`` (0, no threshold, always among them), the best F1's threshold and, with
    ``target_precision`` (e.g. 0.95), the lowest threshold that reaches it: what ``min_confidence``
    set to each threshold would give, from one prediction pass. Optionally writes the report as JSON
    (``json_output``), its curves as a PNG (``plot_output``) and the unthresholded predictions as
    CoNLL (``predictions_output``)."""
    ladder = check_ladder(ladder)
    target_precision = check_target_precision(target_precision)
    outputs = {"the JSON report": json_output, "the plot": plot_output, "the predictions": predictions_output}
    check_output_files(outputs, force, [path_of(data), model_path(model)])
    tagger = as_tagger(model, calibrated)
    corpus = require_labels(load_corpus(data, scheme), "evaluation")
    predictions = tagger.predict_with_confidence(corpus.sentences, batch_size, confidence=True)
    report = sweep_thresholds([tagging.spans(tags) for tags in gold_tags(corpus)],
                              [p.entities() for p in predictions], ladder, target_precision, tagger.entity_types)
    if predictions_output is not None:
        write_evaluated(predictions_output, corpus, [tagging.convert(p.tags, "IOB2") for p in predictions])
    if json_output is not None:
        atomic_write_text(json_output, report.to_json() + "\n")
    if plot_output is not None:
        atomic_write_bytes(plot_output, plot_thresholds(report))
    return report


def check_output_files(outputs: Dict[str, Optional[PathLike]], force: bool, inputs: Sequence) -> None:
    """Every output a command writes (``outputs``: what it is -> path) passes ``check_output_file``,
    and no two are the same file."""
    seen: Dict[Path, str] = {}
    for name, output in outputs.items():
        if output is None:
            continue
        check_output_file(output, force, inputs)
        where = Path(output).resolve()
        if where in seen:
            raise NeuronerError(f"{output} is given for two outputs ({seen[where]} and {name}); name two files")
        seen[where] = name


def predict(model: Union[PathLike, Tagger], source: PathLike, output: Optional[PathLike] = None, *,
            input_format: Optional[str] = None, output_format: str = "conll", force: bool = False,
            batch_size: int = 128, min_confidence: Threshold = None, token_confidence: bool = False, stream=None,
            calibrated: bool = True):
    """Tag a CoNLL file, a raw text file, a BRAT folder, span JSONL or a Label Studio export; write
    CoNLL, BRAT, JSON, span JSONL or Label Studio pre-annotations.

    Returns (sentences, predicted tags), all in memory; ``output`` None writes to ``stream`` when
    given, else nothing. Entities below ``min_confidence`` (a probability, or one per type with
    ``"*"`` for the rest) are dropped; ``token_confidence`` adds each token's confidence to CoNLL (a
    column) and JSON output; JSONL and Label Studio output carry every entity's confidence and the
    document's as scores. For inputs of any size, :func:`predict_stream` keeps memory flat.
    ``calibrated`` False: the raw CRF's confidences (``calibration``).
    """
    from_stdin = str(source) == prediction.STDIN
    if input_format is None and not from_stdin and Path(source).is_dir():
        input_format = "brat"
    input_format, output_format = check_formats(None, input_format, output_format)
    if output is not None:
        check_output_file(output, force, [source, model_path(model)], folder=output_format == "brat")
    tagger = as_tagger(model, calibrated)
    name = Path(source).name
    if input_format == "brat" and not from_stdin:
        corpus, texts = read_brat_documents(source)
        sentences = corpus.sentences
        documents = [SpanDocument(key, text, fields={"document": key}) for key, text in texts.items()]
    else:
        with LineSource(source) as lines:
            input_format = detect_input_format(lines, input_format)
            sentences, documents = prediction.read_for_prediction(lines, input_format, output_format)
            name = lines.document
    return _tag_and_write(tagger, sentences, documents, output, stream, output_format=output_format,
                          batch_size=batch_size, min_confidence=min_confidence, token_confidence=token_confidence,
                          model_version=model_version(model), brat_name=name)


def _tag_and_write(tagger: Tagger, sentences: List[Sentence], documents: List[SpanDocument],
                   output: Optional[PathLike], stream, *, output_format: str, batch_size: int,
                   min_confidence: Threshold, token_confidence: bool, model_version: str, brat_name: str):
    """``predict``'s work once the input is read: tag every sentence, write the output."""
    want_confidence = output_format in ("json", *SPAN_FORMATS) or token_confidence or min_confidence is not None
    predictions = tagger.predict_with_confidence(sentences, batch_size, want_confidence, min_confidence)
    predicted = [p.tags for p in predictions]
    if output is not None and output_format == "brat":
        texts = {d.name: d.text for d in documents}
        if not texts:  # CoNLL input: the text is the tokens joined by spaces, a sentence a line
            sentences, texts = sentences_with_offsets(sentences, brat_name)
        write_brat(output, texts, sentences, predicted)
    elif output is not None or stream is not None:
        with prediction.output_stream(Path(output) if output is not None else None, stream) as writer:
            if output_format in SPAN_FORMATS:
                prediction.write_documents(writer, output_format, documents, sentences, predictions, model_version)
            else:
                prediction.write_stream(zip(sentences, predictions), writer, output_format, token_confidence)
    return sentences, predicted


def model_version(model: Union[PathLike, Tagger]) -> str:
    """How Label Studio names the model that proposed an annotation: the model folder's name and its
    ``model_io.model_id`` (the package's name for a model in memory)."""
    if isinstance(model, Tagger):
        return "neuroner_tl"
    from .model_io import model_id

    return f"{Path(model).resolve().name}@{model_id(model)}"


def predict_stream(model: Union[PathLike, Tagger], source: PathLike, output: Optional[PathLike] = None, *,
                   stream=None, input_format: Optional[str] = None, output_format: str = "conll",
                   force: bool = False, batch_size: int = 128, min_confidence: Threshold = None,
                   token_confidence: bool = False, calibrated: bool = True) -> int:
    """Tag a CoNLL or raw text file, or standard input when ``source`` is ``"-"``, a chunk at a time,
    writing CoNLL or JSON to ``output`` (atomically) or to ``stream`` (default: standard output) as it
    goes: memory stays flat whatever the input's size. Span JSONL and Label Studio (in or out) are
    documents, read and written whole, as ``predict`` does. Returns the number of sentences tagged."""
    from_stdin = str(source) == prediction.STDIN
    if output_format == "brat" or input_format == "brat" or (not from_stdin and Path(source).is_dir()):
        raise NeuronerError("BRAT documents are tagged whole: use predict, not predict_stream")
    if output is not None:
        check_output_file(output, force, [source, model_path(model)])
    check_formats(None, input_format, output_format)
    with LineSource(source) as lines:
        input_format = detect_input_format(lines, input_format)
        if input_format in SPAN_FORMATS or output_format in SPAN_FORMATS:
            tagger = as_tagger(model, calibrated)
            check_threshold(min_confidence, tagger.entity_types)
            sentences, documents = prediction.read_for_prediction(lines, input_format, output_format)
            return len(_tag_and_write(tagger, sentences, documents, output, stream or sys.stdout,
                                      output_format=output_format, batch_size=batch_size,
                                      min_confidence=min_confidence, token_confidence=token_confidence,
                                      model_version=model_version(model), brat_name=lines.document)[0])
        return prediction.predict_stream(as_tagger(model, calibrated), lines, input_format, Path(output) if output else None,
                                         stream, output_format=output_format, batch_size=batch_size,
                                         token_confidence=token_confidence, min_confidence=min_confidence)


def tag(model: Union[PathLike, Tagger], texts, *, batch_size: int = 128, min_confidence: Threshold = None,
        calibrated: bool = True):
    """Entities with character offsets, type and confidence in in-memory text (``Tagger.tag``): a list
    for one string, a list of lists for a list of strings."""
    return as_tagger(model, calibrated).tag(texts, batch_size=batch_size, min_confidence=min_confidence)


def info(model: Union[PathLike, Tagger]) -> dict:
    """What a model folder holds: labels, sizes, hyperparameters, training data and metrics."""
    evaluation = None if isinstance(model, Tagger) else read_evaluation(model)  # its own errors before the checksums'
    tagger = as_tagger(model)
    result = {"labels": tagger.labels, "entity_types": tagger.entity_types, "words": len(tagger.words),
              "characters": len(tagger.chars), "word_dim": tagger.word_dim,
              "parameters": int(sum(int(np.prod(v.shape)) for v in tagger.network.weights)),
              "hyperparameters": tagger.hp.to_dict(), "provenance": tagger.provenance,
              "epochs": len(tagger.history), "temperature": tagger.temperature}
    if evaluation is not None:
        result["evaluation"] = evaluation
    return result


def verify(model: PathLike) -> Verification:
    """Every file of a model folder checked against its ``checksums.json``, the SavedModel's included
    (``checksums.Verification``: ``ok``, the files changed, missing or not listed, ``summary()``). A
    folder without one (written before checksums were recorded, or a bare SavedModel) has nothing
    checked. Loading checks the model files itself; ``checksums_ignored()`` or
    ``load_tagger(..., ignore_checksums=True)`` loads a folder edited on purpose."""
    return verify_checksums(model)


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
           output: Optional[PathLike], *, options: Optional[Dict[str, object]] = None, forget: bool = False,
           dev: Optional[CorpusLike] = None, test: Optional[CorpusLike] = None, annotated: bool = False,
           embeddings: Optional[PathLike] = None, scheme: Optional[str] = None, force: bool = False,
           resume: bool = False, restart: bool = False, verbose: bool = True, devices: Optional[Devices] = None,
           **settings):
    """Update a trained model with target data annotated only with ``entity_types``.

    The source model labels the other types (``transfer``), labels are added for the types it
    lacks (or, with ``forget``, re-drawn for seen ones), and the network is fine-tuned by the
    update's method, with early stopping on the target types' gold F1 and the retention of the
    others. How: ``options`` (NAME: VALUE, as ``--config``/``--set`` and the command line's flags
    give them) and keyword ``settings`` (the same names, e.g. ``method="distill", max_epochs=12,
    seed=3``) are one mapping of ``config.UpdateSettings`` fields and training fields of the source's
    hyperparameters (``config.UPDATE_HYPERPARAMETERS``); a name given both ways with two values is an
    error. The source is never written; ``output`` None keeps the result in memory.
    ``resume``/``restart``: as for ``train``. Returns a ``transfer.UpdateResult``.
    """
    from .config import joined_options
    from .transfer import update as run_update

    values = joined_options(options or {}, settings, "options", "a keyword")
    return run_update(model, target, entity_types, output, options=values, forget=forget, dev=dev, test=test,
                      annotated=annotated, embeddings=embeddings, scheme=scheme, force=force, resume=resume,
                      restart=restart, verbose=verbose, devices=devices)


def annotate(model: Union[PathLike, Tagger], target: CorpusLike, entity_types: Sequence[str],
             output: Optional[PathLike] = None, *, scheme: Optional[str] = None, force: bool = False,
             output_format: Optional[str] = None, calibrated: bool = True):
    """The update's first step on its own: the model labels every type of ``target`` except
    ``entity_types``, whose annotated spans are kept (and win over overlapping predictions).

    Writes ``output`` when given, for a person to check and correct before ``update(...,
    annotated=True)``: CoNLL (IOB2), span JSONL or Label Studio pre-annotations, as
    ``output_format`` says or else the output's extension (``.jsonl``; ``.json``: Label Studio).
    JSONL and Label Studio carry the model's confidence in each span it proposed (the annotated
    spans have none) and the document's (``spans.tagged_documents``). Returns a ``pseudo.Annotation``.
    """
    from .pseudo import annotate as annotate_with_model

    output_format = annotation_format(output, output_format)
    if output is not None:
        check_output_file(output, force, [path_of(target), model_path(model)])
    tagger = as_tagger(model, calibrated)
    types = check_types(entity_types)
    spans_out = output_format in SPAN_FORMATS
    corpus, documents = load_documents(target, scheme) if spans_out else (load_corpus(target, scheme), [])
    require_labels(corpus, "target")
    check_target_has_types(corpus, types, tagger, path_of(target))
    result = annotate_with_model(tagger, corpus, types, confidence=spans_out)
    if output is not None and not spans_out:
        write_conll(output, result.corpus.sentences)
    elif output is not None:
        tagged = tagged_documents(documents, result.corpus.sentences, result.entities, result.token_confidences)
        with atomic_writer(output) as stream:
            if output_format == "jsonl":
                write_jsonl(tagged, stream)
            else:
                write_tasks(tagged, stream, model_version(model))
    return result


@dataclasses.dataclass
class SelectionResult:
    """What ``select`` chose: the items best first (``pool.Chosen``: item, rank, score), how many
    items the input held, how many of them were candidates (distinct and with words), how many Label
    Studio tasks were left out as annotated already, and the settings the scores come from."""

    chosen: List[Chosen]
    items: int
    candidates: int
    left_out: int
    settings: SelectionSettings


def select(model: Union[PathLike, Tagger], source: CorpusLike, output: Optional[PathLike] = None, *, count: int,
           measure: str = "least-confidence", per: str = "token", types: Sequence[str] = (), newest: bool = False,
           diversity: float = 1.0, input_format: Optional[str] = None, output_format: Optional[str] = None,
           force: bool = False, batch_size: int = 128, calibrated: bool = True) -> SelectionResult:
    """Choose the ``count`` items of ``source`` most worth annotating and write them to ``output``
    (when given), best first, in ``output_format`` (default: the input's).

    An item is what the input's format holds one of: a CoNLL sentence (a ``Corpus``'s sentence), a
    line of raw text, a span JSONL record, a Label Studio task (those already annotated are left
    out), a BRAT document. Scores: the CRF's uncertainty by ``measure``, normalised ``per`` token or
    per item, over the labels of ``types`` (or, with ``newest``, the types the model's last update
    learnt; default every label), and the choice penalises similarity to the items already chosen
    (``diversity``; ``selection.SelectionSettings`` says how, and why the default). Each item is written
    as it came, with ``meta.selection = {"rank", "score", "measure"}`` in JSONL and Label Studio
    output, in the order chosen. The output is checked before any work (``outputs.check_output``:
    never an input, an existing file only with ``force``)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise NeuronerError(f"-n must be a whole number of at least 1 item to choose, not {count!r}")
    if newest and types:
        raise NeuronerError("--newest names the types of the model's last update: give it or --types, not both")
    settings = SelectionSettings(measure, per, tuple(types), diversity)
    in_memory = isinstance(source, Corpus)
    input_format = "conll" if in_memory else source_format(source, input_format)
    output_format = output_format_for(input_format, output_format)
    if output is not None:
        check_output_file(output, force, [path_of(source), model_path(model)], folder=output_format == "brat")
    tagger = as_tagger(model, calibrated)
    chosen_types = newest_types(tagger.provenance) if newest else settings.types
    settings = dataclasses.replace(settings, types=checked_types(chosen_types, tagger.entity_types))
    pool = read_pool(source, input_format)
    items = [item.token_lists for item in pool.items]
    scores = item_scores(tagger, items, settings, batch_size)
    order = choose(scores, items, count, settings.diversity)
    chosen = ranked(pool, order, scores, settings.describe())
    if output is not None:
        write_chosen(output, pool, chosen, output_format)
    return SelectionResult(chosen, len(pool.items), len(candidates(items)), pool.left_out, settings)


def upgrade(model: PathLike, output: PathLike, *, force: bool = False) -> Path:
    """Rewrite a model folder of an earlier format (or a bare SavedModel) as a current model folder."""
    return upgrade_folder(model, output, force=force)


def calibrate(model: Union[PathLike, Tagger], data: CorpusLike, output: PathLike, *, objective: str = "spans",
              scheme: Optional[str] = None, force: bool = False):
    """Refit the model's confidence temperature on labelled ``data`` from the text it will tag, and
    write the model to ``output`` (tags never change; ``model`` is never modified). ``train`` and
    ``update`` calibrate on their dev data, but a model is overconfident on text unlike that: a
    customer's own labelled sample calibrates it for theirs. A ``Tagger`` given is calibrated in place.
    Returns the ``calibration.TemperatureFit``; data too thin to fit on, or a fit on a bound of the
    search, is a ``CalibrationError`` naming ``data``, and nothing is written."""
    source = model_path(model)
    check_model_destination(output, force, [source, path_of(data)])
    tagger = as_tagger(model)
    corpus = require_labels(load_corpus(data, scheme), "calibration")
    try:
        fit = fit_temperature(tagger, corpus, objective)
    except CalibrationError as error:
        raise CalibrationError(f"{path_of(data) or 'the calibration data'}: {error}; nothing was written") from None
    evaluation = (read_evaluation(source) if source is not None else None) or {}
    evaluation["calibration"] = {**fit.to_dict(), "fitted_on": path_of(data) or "(in memory)"}
    with tempfile.TemporaryDirectory() as scratch:
        extras = {name: Path(source) / name for name in ("training.png", "update.png", "logs")
                  if source is not None and (Path(source) / name).exists()}
        extras["evaluation.json"] = Path(scratch) / "evaluation.json"
        atomic_write_text(extras["evaluation.json"], json.dumps(evaluation, indent=2) + "\n")
        save_tagger(tagger, output, force=force, extra_files=extras)
    return fit

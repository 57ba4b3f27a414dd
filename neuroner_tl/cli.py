"""``neuroner-tl``: a thin command line over ``neuroner_tl.api``.

Every command parses its options and calls one API function. Mistakes in the input end with one
line on stderr naming the file (and line) and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from .config import (HYPERPARAMETER_RANGES, SETTING_RANGES, Hyperparameters, UpdateSettings,
                     command_line_options, describe_setting, field_types)
from .errors import NeuronerError
from .interrupts import EXIT_INTERRUPTED, NOTHING_WRITTEN, at_work, handle_stops

EXIT_USER_ERROR = 2


VERBOSE_KEY = "neuroner_tl.verbose"  # in click's context meta: ``--verbose`` was given


def _verbose() -> bool:
    """``--verbose`` (or ``NEURONER_TL_VERBOSE_TF`` set): TensorFlow's own log lines reach the terminal."""
    context = click.get_current_context(silent=True)
    asked = bool(context is not None and context.meta.get(VERBOSE_KEY))
    return asked or bool(os.environ.get("NEURONER_TL_VERBOSE_TF"))


def _quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up chatter (CUDA probing and a failed ``cuInit`` on
    machines without a GPU, oneDNN notes) kept off the terminal, so that an error is the one line the
    user sees. Python errors still surface. Called only by a command that runs, so that ``--help``
    and ``--version`` never import TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # loads the CUDA driver, whose failure is logged, here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def friendly_errors(command):
    """Turn the package's errors, Ctrl-C (and SIGTERM) and file-system errors into one line and an
    exit code. The command's own work runs ``interrupts.at_work``: a stop before it exits at once."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .errors import Interrupted

        try:
            if not _verbose():
                _quiet_tensorflow()
            with at_work():
                return command(*args, **kwargs)
        except NeuronerError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except Interrupted as error:
            click.echo(str(error), err=True)
            sys.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            click.echo(NOTHING_WRITTEN, err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OSError as error:  # a full disk, a folder that went away: the file and the reason
            where = f"{error.filename}: " if error.filename else ""
            click.echo(f"error: {where}{error.strerror or error}", err=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper


SHORTCUT_PREFIX = "shortcut__"


def setting_option(flag: str, settings_class, name: str, ranges, **described):
    """A shortcut flag for ``--set NAME=VALUE``: same name, same validation, and a help text made from
    the dataclass field (``config.describe_setting``: description, the default that applies, the
    range), so that the help cannot say one thing while the code does another. ``described``: the
    default when it is not the field's own, and why."""
    kind = field_types(settings_class)[name]
    spec = ranges.get(name)
    choices = click.Choice(list(spec)) if spec and isinstance(spec[0], str) else None
    return click.option(flag, SHORTCUT_PREFIX + name, type=choices or kind, default=None,
                        help=describe_setting(settings_class, name, ranges, **described))


def shortcuts_of(arguments: dict) -> dict:
    """The shortcut flags' values by setting name (``setting_option``), removed from ``arguments``."""
    return {key[len(SHORTCUT_PREFIX):]: arguments.pop(key) for key in list(arguments) if key.startswith(SHORTCUT_PREFIX)}


def _json_object(path) -> dict:
    """A JSON object from ``path``; anything else is a one-line error naming the file."""
    from .errors import DataFormatError

    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(f"is not valid JSON ({error})", path) from None
    if not isinstance(value, dict):
        raise DataFormatError(f"must hold a JSON object of NAME: VALUE, not a {type(value).__name__}", path)
    return value


def _options(config_file, overrides, shortcuts) -> dict:
    """The command's one mapping of settings (``config.command_line_options``)."""
    return command_line_options(_json_object(config_file) if config_file else None, overrides, shortcuts)


def _print_report(report, as_json: bool) -> None:
    click.echo(report.to_json() if as_json else report.format_table())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neuroner_tl")
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's own log lines (C++ start-up notes, CUDA probing), hidden by default.")
@click.option("--ignore-checksums", is_flag=True,
              help="Load model folders whose files differ from their checksums.json (edited on purpose); every "
                   "other check of a model still applies.")
@click.pass_context
def cli(context, verbose, ignore_checksums):
    """Train, evaluate, apply and update BiLSTM-CRF named-entity recognizers."""
    context.meta[VERBOSE_KEY] = verbose
    if ignore_checksums:
        from .checksums import checksums_ignored

        context.with_resource(checksums_ignored())


_no_calibration_option = click.option(
    "--no-calibration", "raw_confidence", is_flag=True,
    help="Report the raw CRF's confidences, not the ones calibrated by the model's fitted temperature.")
_scheme_option = click.option("--scheme", default=None,
                              help="Tag scheme of the input labels (IO, IOB1, IOB2/BIO, BIOES); detected when omitted.")


def _device_options(command):
    """``--devices`` and ``--mixed-precision`` (``devices.Devices``) for the commands that train."""
    command = click.option("--mixed-precision", is_flag=True,
                           help="Compute in float16 on GPUs, bfloat16 on CPUs (weights and the CRF stay float32).")(command)
    return click.option("--devices", default="auto", show_default=True, metavar="SPEC",
                        help="auto, cpu, gpu, a number of GPUs, gpu:0,1 (MirroredStrategy) or multi-worker "
                             "(MultiWorkerMirroredStrategy over TF_CONFIG).")(command)


def _devices(spec, mixed_precision):
    from .devices import Devices

    devices = Devices(spec, mixed_precision)
    if devices.spec == "multi-worker":
        devices.strategy()  # TensorFlow wants it before its runtime starts
    return devices


@cli.command()
@click.argument("train_file", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="The model folder to write.")
@click.option("--dev", type=click.Path(), help="Dev data for early stopping (default: 10% of the training data).")
@click.option("--test", type=click.Path(), help="Test data, evaluated at the end.")
@click.option("--embeddings", type=click.Path(), help="Pretrained vectors: word2vec (.txt/.bin), GloVe, fastText (.vec/.bin).")
@click.option("--embeddings-format", default=None, help="Override the guessed vectors format.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="Hyperparameters as JSON.")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE", help="Override one hyperparameter (repeatable).")
@setting_option("--epochs", Hyperparameters, "max_epochs", HYPERPARAMETER_RANGES)
@setting_option("--batch-size", Hyperparameters, "batch_size", HYPERPARAMETER_RANGES)
@setting_option("--tag-scheme", Hyperparameters, "tag_scheme", HYPERPARAMETER_RANGES)
@_scheme_option
@click.option("--force", is_flag=True, help="Replace an existing model folder.")
@click.option("--resume", is_flag=True, help="Carry on from the checkpoint of an interrupted run.")
@click.option("--restart", is_flag=True, help="Drop the checkpoint of an interrupted run and start over.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
@_device_options
@friendly_errors
def train(train_file, output, dev, test, embeddings, embeddings_format, config_file, overrides, scheme, force,
          resume, restart, quiet, devices, mixed_precision, **shortcuts):
    """Train a model on TRAIN_FILE (CoNLL, a BRAT folder, span JSONL or a Label Studio JSON export)."""
    from . import api

    if quiet:
        _quiet_python_logs()
    hp = Hyperparameters.from_dict(_options(config_file, overrides, shortcuts_of(shortcuts)))
    result = api.train(train_file, output, dev=dev, test=test, hp=hp, embeddings=embeddings,
                       embeddings_format=embeddings_format, scheme=scheme, force=force, resume=resume, restart=restart,
                       verbose=not quiet, devices=_devices(devices, mixed_precision))
    if not quiet:
        click.echo((result.test_report or result.dev_report).format_table())


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("data", type=click.Path())
@_scheme_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--predictions", type=click.Path(), help="Also write token, gold and predicted tags as CoNLL here.")
@click.option("--min-confidence", "min_confidence", multiple=True, metavar="P|TYPE=P",
              help="Score as predict --min-confidence would tag: entities less probable than P are dropped.")
@click.option("--thresholds", "sweep", is_flag=True,
              help="Instead, the threshold report: P, R, F1 per type and overall at a ladder of confidence "
                   "thresholds, the best F1's and the ready-to-paste --min-confidence flags.")
@click.option("--target-precision", metavar="P",
              help="With --thresholds: also mark the lowest threshold whose precision reaches P (0-1, e.g. 0.95) "
                   "and suggest it.")
@click.option("--ladder", metavar="P,P,...",
              help="With --thresholds: the thresholds to score (default 0,0.1,...,0.9,0.95,0.97,0.99,0.995,0.999; "
                   "0 is always added).")
@click.option("--thresholds-json", type=click.Path(), metavar="PATH",
              help="With --thresholds: also write the report as JSON here.")
@click.option("--thresholds-plot", type=click.Path(), metavar="PATH",
              help="With --thresholds: also draw precision, recall and F1 against the threshold (PNG) here.")
@click.option("--force", is_flag=True, help="Replace existing output files.")
@_no_calibration_option
@friendly_errors
def evaluate(model, data, scheme, as_json, predictions, min_confidence, sweep, target_precision, ladder,
             thresholds_json, thresholds_plot, force, raw_confidence):
    """Score MODEL on labelled DATA (CoNLL, BRAT, span JSONL, Label Studio export) with conlleval's rules:
    per-type and overall P, R, F1; with --thresholds, at each confidence threshold of a ladder, to
    choose predict's --min-confidence."""
    from . import api

    sweep_options = {"--target-precision": target_precision, "--ladder": ladder,
                     "--thresholds-json": thresholds_json, "--thresholds-plot": thresholds_plot}
    if not sweep:
        _refuse_without_thresholds(sweep_options)
        report = api.evaluate(model, data, scheme=scheme, predictions_output=predictions, force=force,
                              min_confidence=_thresholds(min_confidence), calibrated=not raw_confidence)
    elif min_confidence:
        raise NeuronerError("--thresholds scores every threshold of its ladder itself: drop --min-confidence")
    else:
        report = api.threshold_report(model, data, scheme=scheme, ladder=_ladder(ladder),
                                      target_precision=_probability(target_precision, "--target-precision"),
                                      json_output=thresholds_json, plot_output=thresholds_plot,
                                      predictions_output=predictions, force=force, calibrated=not raw_confidence)
    _print_report(report, as_json)


def _refuse_without_thresholds(options) -> None:
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise NeuronerError(f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to the threshold report: "
                            f"add --thresholds")


def _probability(text, option):
    """A number typed for ``option`` (range checks are the API's); not a number is a one-line error."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise NeuronerError(f"{option} takes a number between 0 and 1, not {text!r}") from None


def _ladder(text):
    """``--ladder 0.5,0.8,0.9``: the thresholds (default: ``thresholds.DEFAULT_LADDER``), checked
    (``thresholds.check_ladder``) with errors that name the option; an empty one between commas and
    one typed twice (a typo for another) are errors too."""
    from .errors import ThresholdError
    from .thresholds import DEFAULT_LADDER, check_ladder

    if text is None:
        return DEFAULT_LADDER
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise NeuronerError(f"--ladder {text!r} has an empty threshold: give probabilities separated by commas, "
                            f"e.g. 0.5,0.9")
    values = [_probability(part, "--ladder") for part in parts]
    repeated = next((part for number, part in enumerate(parts) if values[number] in values[:number]), None)
    if repeated is not None:
        raise NeuronerError(f"--ladder {text!r} gives the threshold {repeated} twice")
    try:
        check_ladder(values)
    except ThresholdError as error:
        raise NeuronerError(f"--ladder: {error}") from None
    return values


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("source", type=click.Path())
@click.option("--output", "-o", type=click.Path(), help="Where to write (default: print CoNLL or JSON to stdout).")
@click.option("--input-format", type=click.Choice(["conll", "text", "brat", "jsonl", "labelstudio"]), default=None,
              help="conll, text (raw, tokenized here), brat (a folder), jsonl (span JSONL: spaCy, Prodigy, doccano) "
                   "or labelstudio (a Label Studio JSON export); guessed when omitted.")
@click.option("--format", "output_format", type=click.Choice(["conll", "brat", "json", "jsonl", "labelstudio"]),
              default="conll", show_default=True,
              help="jsonl: a document a line with character-offset spans; labelstudio: pre-annotations to import into "
                   "Label Studio (the model's confidence as each region's score).")
@click.option("--confidence", "token_confidence", is_flag=True,
              help="Add each token's confidence: a last CoNLL column, a token_confidences list in JSON.")
@click.option("--min-confidence", "min_confidence", multiple=True, metavar="P|TYPE=P",
              help="Drop entities less probable than P (0-1); TYPE=P sets one type's threshold (repeatable).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing output.")
@_no_calibration_option
@friendly_errors
def predict(model, source, output, input_format, output_format, token_confidence, min_confidence, batch_size,
            force, raw_confidence):
    """Tag SOURCE with MODEL; SOURCE - reads standard input. CoNLL and raw text are read, tagged and
    written a chunk at a time (memory stays flat on inputs of any size); JSON entities carry a
    confidence. Span JSONL and Label Studio documents are read and written whole; written from raw
    text, a line is a document, and from CoNLL a sentence is."""
    from . import api

    if output is None and output_format == "brat":
        raise click.UsageError("--format brat needs --output FOLDER")
    thresholds = _thresholds(min_confidence)
    options = dict(input_format=input_format, output_format=output_format, force=force, batch_size=batch_size,
                   min_confidence=thresholds, token_confidence=token_confidence, calibrated=not raw_confidence)
    if output_format == "brat" or input_format == "brat" or (source != "-" and Path(source).is_dir()):
        api.predict(model, source, output, **options)
    else:
        api.predict_stream(model, source, output, stream=sys.stdout, **options)


def _thresholds(values):
    """``--min-confidence`` values: None, one probability, or a mapping by type (``"*"``: the rest)."""
    thresholds = {}
    for value in values:
        kind, _, number = value.rpartition("=")
        try:
            probability = float(number)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not P or TYPE=P", param_hint="--min-confidence") from None
        if not 0.0 <= probability <= 1.0:
            raise click.BadParameter(f"{value!r}: a confidence is between 0 and 1", param_hint="--min-confidence")
        thresholds[kind or "*"] = probability
    if not thresholds:
        return None
    return thresholds["*"] if list(thresholds) == ["*"] else thresholds


def _request_limit_options(max_texts: int, max_bytes: int, max_tokens: int, texts: str, tokens: str):
    """The --max-texts, --max-bytes and --max-tokens options of a server, with its defaults."""
    def decorate(command):
        for option in reversed([
                click.option("--max-texts", type=click.IntRange(min=1), default=max_texts, show_default=True,
                             help=f"Most {texts} in one request."),
                click.option("--max-bytes", type=click.IntRange(min=1), default=max_bytes, show_default=True,
                             help="Largest request body, in bytes."),
                click.option("--max-tokens", type=click.IntRange(min=1), default=max_tokens, show_default=True,
                             help=f"Most tokens in one {tokens}.")]):
            command = option(command)
        return command
    return decorate


@cli.command()
@click.argument("model", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@_request_limit_options(1000, 1 << 20, 50_000, "texts (or sentences)", "request, every sentence together")
@click.option("--max-sentence-tokens", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Most tokens in one sentence.")
@_no_calibration_option
@friendly_errors
def serve(model, host, port, max_texts, max_bytes, max_tokens, max_sentence_tokens, raw_confidence):
    """Serve MODEL over HTTP: POST /tag {"text": ...} or {"texts": [...]}, POST /tag/tokens,
    GET /health, GET /model (needs the extra: pip install "neuroner-tl[serve]"). A request beyond a
    limit is refused with 413."""
    from .serve import Limits, missing_extra_message, run_server

    problem = missing_extra_message()
    if problem:
        raise click.ClickException(problem)
    limits = Limits(max_texts=max_texts, max_bytes=max_bytes, max_tokens=max_tokens,
                    max_sentence_tokens=max_sentence_tokens)
    run_server(model, host=host, port=port, max_texts=max_texts, limits=limits, calibrated=not raw_confidence)


@cli.command("label-studio")
@click.argument("model", type=click.Path())
@click.option("--models-dir", required=True, type=click.Path(),
              help="Where the updated versions go (v0001, v0002, ...); a restart serves the newest. MODEL is never "
                   "written.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=9090, show_default=True)
@click.option("--train-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="New or changed submitted annotations that start an update (START_TRAINING starts one at once).")
@click.option("--dev-percent", type=click.IntRange(1, 90), default=20, show_default=True,
              help="Share of the tasks, chosen by their id, held out as dev: an update is served only when its "
                   "dev F1 is no worse.")
@click.option("--keep-versions", type=click.IntRange(min=1), default=3, show_default=True,
              help="Model versions kept in --models-dir, the served one included.")
@click.option("--label", "labels", multiple=True, metavar="TYPE=LABEL",
              help="Show the model's TYPE as the labeling config's LABEL (repeatable; default: the same name, "
                   "in any case).")
@click.option("--label-studio-url", default=None, envvar="LABEL_STUDIO_URL",
              help="With --api-key: each update first reads every annotated task from Label Studio's export API.")
@click.option("--api-key", default=None, envvar="LABEL_STUDIO_API_KEY",
              help="A Label Studio access token (legacy or personal); default: $LABEL_STUDIO_API_KEY.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="The updates' options and training hyperparameters as JSON.")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="One update option or training hyperparameter for the updates (repeatable), as for update.")
@_request_limit_options(5000, 16 << 20, 200_000, "tasks", "/predict request, every task together")
@_no_calibration_option
@click.option("--quiet", "-q", is_flag=True, help="No progress lines from the updates.")
@friendly_errors
def label_studio(model, models_dir, host, port, train_every, dev_percent, keep_versions, labels, label_studio_url,
                 api_key, config_file, overrides, max_texts, max_bytes, max_tokens, raw_confidence, quiet):
    """A Label Studio ML backend over MODEL: pre-annotates tasks (POST /predict) and learns from the
    submitted annotations (POST /webhook), each update a new version in --models-dir. Basic auth:
    $BASIC_AUTH_USER and $BASIC_AUTH_PASS. Needs the extra: pip install "neuroner-tl[serve]"."""
    from .labelstudio_backend import BackendSettings, basic_auth_from_environment, run_backend
    from .labelstudio_config import parse_label_pairs
    from .labelstudio_learning import LearningSettings
    from .serve import Limits, missing_extra_message

    problem = missing_extra_message()
    if problem:
        raise click.ClickException(problem.replace("neuroner-tl serve", "neuroner-tl label-studio"))
    options = _options(config_file, overrides, {})
    learning = LearningSettings(train_every=train_every, dev_percent=dev_percent, keep_versions=keep_versions,
                                options=tuple(options.items()), label_studio_url=label_studio_url, api_key=api_key,
                                verbose=not quiet)
    settings = BackendSettings(limits=Limits(max_texts=max_texts, max_bytes=max_bytes, max_tokens=max_tokens),
                               learning=learning, labels=tuple(parse_label_pairs(labels).items()),
                               calibrated=not raw_confidence, basic_auth=basic_auth_from_environment())
    run_backend(model, models_dir, settings, host=host, port=port)


@cli.command()
@click.argument("model", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="The model folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing model folder.")
@friendly_errors
def upgrade(model, output, force):
    """Rewrite MODEL (a folder of an earlier format, or a bare SavedModel) as a current model folder."""
    from . import api

    click.echo(f"model written to {api.upgrade(model, output, force=force)}")


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="The calibrated model folder to write.")
@click.option("--objective", type=click.Choice(["spans", "likelihood"]), default="spans", show_default=True,
              help="spans: the predicted entities' confidences against whether they are right; likelihood: "
                   "the gold tag sequences' probability.")
@_scheme_option
@click.option("--force", is_flag=True, help="Replace an existing output folder (never MODEL).")
@friendly_errors
def calibrate(model, data, output, objective, scheme, force):
    """Refit MODEL's confidence temperature on labelled DATA from the text it will tag, and write the
    model to OUTPUT. Tags and F1 do not change; the confidences of every output do."""
    from . import api

    fit = api.calibrate(model, data, output, objective=objective, scheme=scheme, force=force)
    examples = (f"{fit.entities} predicted entities of {fit.sentences} sentences" if objective == "spans"
                else f"the gold tags of {fit.sentences} sentences")
    click.echo(f"{output}: temperature {fit.temperature:.3f}, fitted on {examples} (log-loss {fit.loss_before:.3f} "
               f"at 1 -> {fit.loss_after:.3f})")


@cli.command()
@click.argument("model", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
@click.option("--verify", "check_files", is_flag=True,
              help="First check every file, the SavedModel's included, against the folder's checksums.json: "
                   "OK, or the files that are not as written (exit 2).")
@friendly_errors
def info(model, as_json, check_files):
    """Describe a model folder: labels, sizes, training data, metrics."""
    from . import api
    from .errors import ModelFolderError

    verification = api.verify(model) if check_files else None
    if verification is not None and not verification.ok:
        raise ModelFolderError(model, verification.error())
    details = api.info(model)
    if verification is not None:
        details["checksums"] = verification.to_dict()
    if as_json:
        click.echo(json.dumps(details, indent=2, ensure_ascii=False))
        return
    if verification is not None:
        click.echo(verification.summary())
    click.echo(f"entity types: {', '.join(details['entity_types'])}")
    click.echo(f"labels ({len(details['labels'])}): {' '.join(details['labels'])}")
    click.echo(f"vocabulary: {details['words']} words, {details['characters']} characters; "
               f"word vectors {details['word_dim']}-d; {details['parameters']:,} parameters")
    updates = details["provenance"].get("updates", [])
    update_epochs = sum(u.get("epochs", 0) for u in updates)
    click.echo(f"trained for {details['epochs']} epochs" + (
        f", then updated {len(updates)} time{'s' if len(updates) > 1 else ''} for {update_epochs} epochs" if updates else ""))
    for record in details["provenance"].get("trained_on", []):
        click.echo(f"  {record['role']}: {record.get('path', '(in memory)')}: {record['sentences']} sentences, "
                   f"entities {record['entities']}")
    for update in updates:
        click.echo("  " + _describe_update(update))
    evaluation = details.get("evaluation") or {}
    scores = evaluation.get("dev_scores")
    if scores:  # an updated model: gold target spans and agreement with the source are scored apart
        click.echo(f"dev target F1: {scores['target_f1']:.2f}; dev retention F1: {scores['retention_f1']:.2f}")
    for split in ("dev", "test"):
        if evaluation.get(split):
            click.echo(f"{split} F1: {evaluation[split]['overall']['f1']:.2f}")
    click.echo(f"confidence temperature: {details['temperature']:.3f}"
               + ("" if evaluation.get("calibration") else " (not fitted: the raw CRF's confidences)"
                  if details["temperature"] == 1.0 else ""))


def _describe_update(update: dict) -> str:
    """One line per update: what was learnt, how, and the honest dev figures."""
    settings = update.get("settings", {})
    line = (f"update: {', '.join(update.get('entity_types', []))} from {update['target'].get('sentences')} "
            f"sentences ({update['target'].get('path', 'in memory')}), method {settings.get('method', 'self-training')}")
    dev = update.get("dev")
    if isinstance(dev, dict):
        line += (f"; best epoch {update.get('best_epoch')} of {update.get('epochs')}: dev target F1 "
                 f"{dev['target_f1']:.2f}, retention F1 {dev['retention_f1']:.2f}")
    return line


@cli.command()
@click.argument("text_file", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="Vectors file to write (word2vec text format).")
@click.option("--method", type=click.Choice(["word2vec", "fasttext"]), default="word2vec")
@click.option("--dim", type=int, default=300, show_default=True)
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--min-count", type=int, default=1, show_default=True)
@click.option("--force", is_flag=True)
@friendly_errors
def embeddings(text_file, output, method, dim, epochs, min_count, force):
    """Train word vectors on raw TEXT_FILE, for users without pretrained ones."""
    from . import api

    path = api.make_embeddings(text_file, output, method=method, dim=dim, epochs=epochs, min_count=min_count, force=force)
    click.echo(f"vectors written to {path}")


@cli.command()
@click.option("--workdir", type=click.Path(), default="demo", show_default=True,
              help="Folder for the generated data and the model.")
@click.option("--train-size", type=int, default=1500, show_default=True)
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--domain", type=click.Choice(["A", "B"]), default="A", show_default=True)
@click.option("--force", is_flag=True, help="Replace the model of an earlier demo.")
@friendly_errors
def demo(workdir, train_size, epochs, domain, force):
    """The main job on the embedded data: generate Italian customer-service chats, train, evaluate."""
    from . import api
    from .config import Hyperparameters

    held_out = max(50, train_size // 5)
    result = api.demo(workdir, sizes=(train_size, held_out, held_out), domain=domain,
                      hp=Hyperparameters(max_epochs=epochs, patience=5), force=force)
    click.echo("test set, per entity type:")
    click.echo(result.test_report.format_table())


@cli.command()
@click.option("--model", "-m", "model", required=True, type=click.Path(), help="The source model folder (never modified).")
@click.option("--target", "-t", required=True, type=click.Path(),
              help="Target data (CoNLL, BRAT, span JSONL, Label Studio export) annotated only with the target type(s).")
@click.option("--entity", "-e", "entities", required=True, multiple=True,
              help="A target entity type (repeat for several; comma-separated also works).")
@click.option("--output", "-o", required=True, type=click.Path(), help="The updated model folder to write.")
@setting_option("--method", UpdateSettings, "method", SETTING_RANGES)
@click.option("--forget", is_flag=True, help="Re-learn the given seen types from scratch (task ii).")
@click.option("--annotated", is_flag=True,
              help="The target's other types are annotated too (annotate's output, corrected): use them as given.")
@click.option("--dev", type=click.Path(), help="Dev data for early stopping (default: 10% of the target data).")
@click.option("--test", type=click.Path(), help="Test data, evaluated at the end.")
@setting_option("--init", UpdateSettings, "init", SETTING_RANGES)
@setting_option("--learning-rate", UpdateSettings, "learning_rate", SETTING_RANGES)
@setting_option("--epochs", Hyperparameters, "max_epochs", HYPERPARAMETER_RANGES,
                default_note=" (the package's, not the source's: an update sets its own budget)")
@setting_option("--patience", Hyperparameters, "patience", HYPERPARAMETER_RANGES,
                default_note=" (the package's, not the source's)")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Update options and training hyperparameters as JSON.")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="One update option (e.g. distill_weight=2) or training hyperparameter (repeatable).")
@click.option("--embeddings", type=click.Path(), help="Pretrained vectors for the target data's new words.")
@_scheme_option
@click.option("--force", is_flag=True, help="Replace an existing output folder (never the source).")
@click.option("--resume", is_flag=True, help="Carry on from the checkpoint of an interrupted update.")
@click.option("--restart", is_flag=True, help="Drop the checkpoint of an interrupted update and start over.")
@click.option("--quiet", "-q", is_flag=True)
@_device_options
@friendly_errors
def update(model, target, entities, output, forget, annotated, dev, test, config_file, overrides, embeddings, scheme,
           force, resume, restart, quiet, devices, mixed_precision, **shortcuts):
    """Update a trained model for a new domain or entity type, without the source data."""
    from . import api

    if quiet:
        _quiet_python_logs()
    types = [t for group in entities for t in group.split(",")]
    result = api.update(model, target, types, output, options=_options(config_file, overrides, shortcuts_of(shortcuts)),
                        forget=forget, annotated=annotated, dev=dev, test=test, embeddings=embeddings, scheme=scheme,
                        force=force, resume=resume, restart=restart, verbose=not quiet,
                        devices=_devices(devices, mixed_precision))
    if not quiet:
        scores = result.dev_scores
        click.echo(f"dev split: target F1 {scores['target_f1']:.2f} (gold {', '.join(types)} spans), "
                   f"retention F1 {scores['retention_f1']:.2f} (agreement with the source model on the other types)")
        if result.test_report is not None:
            click.echo("test set, per entity type:")
            click.echo(result.test_report.format_table())


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("target", type=click.Path())
@click.option("--entity", "-e", "entities", required=True, multiple=True,
              help="The type(s) TARGET annotates; the model labels every other type.")
@click.option("--output", "-o", required=True, type=click.Path(), help="The file to write.")
@click.option("--format", "output_format", type=click.Choice(["conll", "jsonl", "labelstudio"]), default=None,
              help="conll (IOB2), jsonl (spans) or labelstudio (pre-annotations with the model's confidence); "
                   "default: by the output's extension (.jsonl, .json), else conll.")
@_scheme_option
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@_no_calibration_option
@friendly_errors
def annotate(model, target, entities, output, output_format, scheme, force, raw_confidence):
    """Label TARGET's other entity types with MODEL (the update's first step), to check before updating.

    Correct the file (or import the .json into Label Studio, correct there and export), then:
    neuroner-tl update -m MODEL -t CORRECTED -e TYPE --annotated -o NEW_MODEL
    """
    from . import api

    types = [t for group in entities for t in group.split(",")]
    result = api.annotate(model, target, types, output, scheme=scheme, force=force, output_format=output_format,
                          calibrated=not raw_confidence)
    added = ", ".join(f"{k} {v}" for k, v in result.added.items()) or "none"
    click.echo(f"{output}: {len(result.corpus)} sentences; spans added by the model: {added} "
               f"(dropped {result.dropped_target} of {', '.join(types)} and {result.dropped_overlap} overlapping "
               f"the annotated spans)")


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("unlabelled", type=click.Path())
@click.option("-n", "count", required=True, type=int, help="How many sentences or documents to choose.")
@click.option("--output", "-o", required=True, type=click.Path(),
              help="The file (a folder for --format brat) to write the chosen items to, best first.")
@click.option("--input-format", type=click.Choice(["conll", "text", "brat", "jsonl", "labelstudio"]), default=None,
              help="conll (a sentence an item), text (a line an item), brat (a folder, a document an item), jsonl (a "
                   "record an item) or labelstudio (a task an item; annotated tasks are left out); guessed when omitted.")
@click.option("--format", "output_format", type=click.Choice(["conll", "text", "jsonl", "labelstudio", "brat"]),
              default=None, help="What to write (default: the input's format); JSONL and Label Studio record each "
                                 "item's rank and score in meta.selection.")
@click.option("--measure", type=click.Choice(["least-confidence", "entropy", "changes"]), default="least-confidence",
              show_default=True, help="The CRF's uncertainty: -log P(Viterbi path), the tokens' marginal entropy, or "
                                      "the expected number of tokens whose label differs from the prediction.")
@click.option("--per", type=click.Choice(["token", "item"]), default="token", show_default=True,
              help="token: the item's uncertainty divided by its tokens (a document: over all its sentences); item: "
                   "the total.")
@click.option("--types", "types", multiple=True, metavar="TYPE",
              help="Score only the uncertainty about these of the model's types (repeatable; comma-separated works).")
@click.option("--newest", is_flag=True, help="Score only the types the model's last update learnt.")
@click.option("--diversity", type=float, default=1.0, show_default=True,
              help="How strongly an item like one already chosen is passed over (score x (1 - similarity)^D; 0: "
                   "uncertainty alone). Exact duplicates are never chosen twice.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing output (never the input).")
@click.option("--quiet", "-q", is_flag=True, help="Print the summary line only, not the list of chosen items.")
@_no_calibration_option
@friendly_errors
def select(model, unlabelled, count, output, input_format, output_format, measure, per, types, newest, diversity,
           batch_size, force, quiet, raw_confidence):
    """Choose the COUNT items of UNLABELLED most worth annotating for MODEL (active learning): those the
    CRF is least sure of, each unlike the ones chosen before it; written to OUTPUT best first, in the
    input's format, for the annotation tool to import."""
    from . import api

    chosen_types = [t for group in types for t in group.split(",") if t]
    result = api.select(model, unlabelled, output, count=count, measure=measure, per=per, types=chosen_types,
                        newest=newest, diversity=diversity, input_format=input_format, output_format=output_format,
                        force=force, batch_size=batch_size, calibrated=not raw_confidence)
    short = f" (only {result.candidates} distinct items with words)" if len(result.chosen) < count else ""
    click.echo(f"{output}: {len(result.chosen)} of {result.items} items chosen{short}, by "
               f"{result.settings.describe()}, diversity {result.settings.diversity:g}")
    if not quiet:
        click.echo("rank\tscore\titem\ttext")
        for chosen in result.chosen:
            click.echo(f"{chosen.rank}\t{chosen.score:.4f}\t{chosen.item.where}\t{chosen.item.preview()}")


def _quiet_python_logs() -> None:
    """``--quiet``: TensorFlow's Python warnings (retracing notes) are not errors, so they are not shown."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def main():
    """The command line. SIGTERM (``kill``, a process manager) stops every command the way Ctrl-C
    does, from this first line to the process's exit (``interrupts.CommandLineStops``): temporaries
    are removed, training keeps its last epoch, the command says so in one line and exits 130."""
    stops = handle_stops()
    try:
        cli(prog_name="neuroner-tl")
    except SystemExit as finished:
        stops.leave(finished.code)


if __name__ == "__main__":
    main()

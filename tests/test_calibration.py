"""Calibrated confidences: the temperature divides the CRF's scores for the probabilities only, is
fitted by the gold paths' likelihood, and is saved with the model and in the SavedModel."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from neuroner_tl import calibration, crf
from neuroner_tl.calibration import Bin, reliability

from conftest import enumerated_probabilities, invoke, random_case


def crf_layer(transitions, start, end, temperature=1.0, **rules):
    layer = crf.CRF(transitions.shape[0], **rules)
    layer.build((None, None, transitions.shape[0]))
    matrix = np.zeros((transitions.shape[0] + 2,) * 2, np.float32)
    count = transitions.shape[0]
    matrix[:count, :count], matrix[count, :count], matrix[:count, count + 1] = transitions, start, end
    layer.transitions.assign(matrix)
    layer.temperature.assign(temperature)
    return layer


@pytest.mark.parametrize("seed", range(3))
def test_calibrated_confidences_are_the_enumerated_probabilities_of_the_scores_over_t(seed):
    inputs, transitions, lengths, start, end = random_case(seed, batch=3, time=3, tags=3)
    temperature = 2.5
    layer = crf_layer(transitions, start, end, temperature, continues=np.zeros((3, 3), bool),
                      is_entity=[False, True, True])
    tags = np.zeros(lengths.shape + (3,), np.int32)
    token, _ = layer.confidences(inputs, tags, lengths, calibrated=True)
    raw, _ = layer.confidences(inputs, tags, lengths)
    for b, length in enumerate(lengths):
        if length == 0:
            continue
        sequences, probabilities = enumerated_probabilities(inputs[b] / temperature, length,
                                                            transitions / temperature, start / temperature,
                                                            end / temperature)
        expected = sum(p for s, p in zip(sequences, probabilities) if s[0] == 0)
        assert token.numpy()[b, 0] == pytest.approx(expected, abs=1e-5)
    assert not np.allclose(token.numpy(), raw.numpy())


def sampled_gold(inputs, lengths, transitions, start, end, temperature, rng, copies):
    """Gold paths drawn from the CRF's distribution at ``temperature``, ``copies`` per sentence."""
    gold = np.zeros((len(lengths) * copies, inputs.shape[1]), np.int32)
    for b, length in enumerate(lengths):
        sequences, probabilities = enumerated_probabilities(inputs[b] / temperature, length,
                                                            transitions / temperature, start / temperature,
                                                            end / temperature)
        for copy in range(copies):
            gold[b * copies + copy, :length] = sequences[rng.choice(len(sequences), p=probabilities)]
    return gold


def drawn_case(seed, iob2=False, true_temperature=2.0, copies=400, **rules):
    """An overconfident CRF (scores x 3) and ``copies`` gold paths per sentence drawn from it at
    ``true_temperature``: (CRF layer, ``DevScores``). ``iob2``: I-A (tag 2) only inside an entity."""
    inputs, transitions, lengths, start, end = random_case(seed, batch=6, time=4, tags=3)
    inputs, transitions = 3 * inputs, 3 * transitions
    if iob2:
        transitions[0, 2], start[2] = -1e4, -1e4
    lengths[:] = 4
    gold = sampled_gold(inputs, lengths, transitions, start, end, true_temperature, np.random.default_rng(seed),
                        copies)
    scores = calibration.DevScores([tf.constant(np.repeat(inputs, copies, axis=0))],
                                   [tf.constant(np.repeat(lengths, copies))], [tf.constant(gold)])
    return crf_layer(transitions, start, end, **rules), scores


LABELS = ["O", "B-A", "I-A"]


def test_the_likelihood_fit_recovers_the_temperature_the_gold_paths_were_drawn_at():
    layer, scores = drawn_case(7)
    fit = calibration.fit_crf_temperature(layer, scores, LABELS)
    assert fit.temperature == pytest.approx(2.0, rel=0.1)
    assert float(layer.temperature.numpy()) == pytest.approx(fit.temperature)
    assert fit.loss_after < fit.loss_before and fit.sentences == 6 * 400 and fit.objective == "likelihood"


def test_a_gold_path_the_constraint_forbids_is_left_out_of_the_fit():
    """Four gold paths for one sentence, each four times; the first takes a move the constraint forbids."""
    inputs, transitions, lengths, start, end = random_case(3, batch=1, time=3, tags=3)
    allowed = np.ones((5, 5), bool)
    allowed[0, 1] = False  # tag 0 -> tag 1 is forbidden
    gold = np.tile(np.array([[0, 1, 2], [2, 2, 2], [2, 2, 0], [0, 0, 2]], np.int32), (4, 1))
    scores = calibration.DevScores([tf.constant(np.repeat(inputs, 16, axis=0))], [tf.constant([3] * 16)],
                                   [tf.constant(gold)])
    fit = calibration.fit_crf_temperature(crf_layer(transitions, start, end, allowed_transitions=allowed), scores,
                                          LABELS, constrained=True)
    assert fit.sentences == 12 and np.isfinite(fit.loss_after)


def test_the_span_fit_recovers_the_temperature_entity_correctness_was_drawn_at():
    """Gold paths drawn at T = 2 from an overconfident CRF: an entity of the Viterbi path is right as
    often as its confidence at T = 2 says, so the span-level log-loss is least near 2."""
    from neuroner_tl import tags as tagging

    labels = ["O", "B-A", "I-A"]
    layer, scores = drawn_case(11, iob2=True, continues=tagging.span_continuation(labels),
                               is_entity=[False, True, True])
    fit = calibration.fit_span_temperature(layer, scores, labels)
    assert fit.objective == "spans" and fit.entities >= 6 * 400
    assert fit.temperature == pytest.approx(2.0, rel=0.15)
    assert fit.loss_after < fit.loss_before


@pytest.mark.parametrize("drawn_at, bound", [(500.0, "upper bound"), (0.002, "lower bound")])
def test_a_fit_on_a_bound_of_the_search_is_an_error_and_keeps_the_temperature(drawn_at, bound):
    """Gold paths drawn far hotter (nearly uniform) or far colder (the best path) than the search
    reaches: the best temperature in range is a bound, which says nothing; the fit refuses it."""
    from neuroner_tl.errors import CalibrationError

    layer, scores = drawn_case(7, true_temperature=drawn_at, copies=50)
    layer.temperature.assign(1.7)
    with pytest.raises(CalibrationError, match=bound):
        calibration.fit_crf_temperature(layer, scores, LABELS)
    assert float(layer.temperature.numpy()) == pytest.approx(1.7)


@pytest.mark.parametrize("fit", [lambda layer, scores: calibration.fit_crf_temperature(layer, scores, LABELS),
                                 lambda layer, scores: calibration.fit_span_temperature(layer, scores, LABELS)])
def test_a_fit_without_gold_entities_is_an_error_and_keeps_the_temperature(fit):
    """All-O gold paths: no entity to learn from, whichever objective (the spans one sees only wrong
    entities, the likelihood only O tags)."""
    from neuroner_tl import tags as tagging
    from neuroner_tl.errors import CalibrationError

    layer, scores = drawn_case(11, iob2=True, continues=tagging.span_continuation(LABELS),
                               is_entity=[False, True, True], copies=20)
    scores = calibration.DevScores(scores.potentials, scores.lengths, [tf.zeros_like(scores.gold[0])])
    layer.temperature.assign(1.7)
    with pytest.raises(CalibrationError, match="too little evidence"):
        fit(layer, scores)
    assert float(layer.temperature.numpy()) == pytest.approx(1.7)


def test_golden_section_finds_the_minimum_of_a_unimodal_function():
    assert calibration.golden_section_minimum(lambda x: (x - 0.37) ** 2 + 1, -3, 3) == pytest.approx(0.37, abs=1e-6)
    assert calibration.golden_section_minimum(lambda x: abs(x + 2.5), -3, 3) == pytest.approx(-2.5, abs=1e-6)


def test_reliability_bins_and_ece():
    pairs = [("A", 0.95, True)] * 9 + [("A", 0.95, False)] + [("B", 0.55, True), ("B", 0.55, False), ("B", 1.0, True)]
    bins, ece = reliability(pairs)
    by_low = {b.low: b for b in bins}
    assert by_low[0.95].count == 10 and by_low[0.95].precision == pytest.approx(0.9)  # [0.95, 0.99)
    assert by_low[0.5].count == 2 and by_low[0.5].precision == pytest.approx(0.5)
    assert by_low[0.99].count == 1  # a confidence of exactly 1 is in the last bin
    assert by_low[0.0].count == 0 and by_low[0.0].precision is None
    assert ece == pytest.approx((10 * 0.05 + 2 * 0.05 + 0) / 13)
    assert isinstance(bins[0], Bin)


@pytest.fixture(scope="module")
def hot_model(micro_model, tmp_path_factory):
    """The micro model with a temperature of 3 (so calibrated and raw numbers differ plainly); the
    tests read it, never change it."""
    from neuroner_tl import api
    from neuroner_tl.model_io import save_tagger

    tagger = api.load_tagger(micro_model)
    tagger.network.crf.temperature.assign(3.0)
    folder = tmp_path_factory.mktemp("hot") / "hot"
    save_tagger(tagger, folder)
    return folder


def test_the_temperature_changes_confidences_never_tags_and_survives_saving(hot_model, micro_data):
    from neuroner_tl import api

    tagger = api.load_tagger(hot_model)
    assert tagger.temperature == pytest.approx(3.0)
    corpus = api.load_corpus(micro_data["test"])
    calibrated = tagger.predict_with_confidence(corpus.sentences)
    tagger.calibrated = False
    raw = tagger.predict_with_confidence(corpus.sentences)
    assert [p.tags for p in calibrated] == [p.tags for p in raw]
    assert not np.allclose(np.concatenate([p.token_confidences for p in calibrated]),
                           np.concatenate([p.token_confidences for p in raw]))
    tagger.calibrated = True
    tagger.network.crf.temperature.assign(1.0)
    one = tagger.predict_with_confidence(corpus.sentences)
    np.testing.assert_allclose(np.concatenate([p.token_confidences for p in one]),
                               np.concatenate([p.token_confidences for p in raw]), atol=1e-6)
    assert [p.probability for p in one] == pytest.approx([p.probability for p in raw], abs=1e-6)


def test_the_saved_model_reports_the_calibrated_confidences(hot_model):
    from neuroner_tl import api

    tagger = api.load_tagger(hot_model)
    text = "please send the invoice to Maria Rossi in Berlin"
    expected = tagger.tag(text, min_confidence=None)
    loaded = tf.saved_model.load(str(hot_model / "saved_model"))
    served = loaded.signatures["serve_text"](texts=tf.constant([text]))
    confidences = served["confidence"].numpy()[0][: int(served["token_count"].numpy()[0])]
    tokens = tagger.predict_with_confidence([text.split()])[0]
    np.testing.assert_allclose(confidences, tokens.token_confidences, atol=1e-5)
    assert len(expected) == int(served["entity_count"].numpy()[0])


def test_an_old_model_without_a_temperature_loads_with_the_raw_confidences(micro_model, tmp_path):
    """Folders written before calibration lack the weight: they load with a temperature of 1 (here a
    format-1 folder, whose weights.npz is read by the same ``assign_weights``), and a SavedModel read
    for weights it lacks is read without it."""
    from neuroner_tl import model_io
    from neuroner_tl.model import weight_arrays

    tagger = model_io.load_tagger(micro_model)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in model_io.ASSET_FILES:
        shutil.copy(micro_model / model_io.SAVED_MODEL_DIR / model_io.ASSETS / name, legacy / name)
    info = json.loads((legacy / "model.json").read_text())
    (legacy / "model.json").write_text(json.dumps({**info, "format_version": 1}))
    arrays = {k: v for k, v in weight_arrays(tagger.network).items() if k != "crf/temperature"}
    np.savez(legacy / "weights.npz", **arrays)
    old = model_io.load_tagger(legacy, quiet=True)
    assert old.temperature == 1.0

    checkpoint = tmp_path / "checkpoint"
    tf.train.Checkpoint(**{model_io.WEIGHTS_ATTRIBUTE: {"crf/transitions": tf.Variable(arrays["crf/transitions"])}}
                        ).write(str(checkpoint / "variables" / "variables"))
    read = model_io.read_saved_model_weights(tmp_path, checkpoint, ["crf/transitions", "crf/temperature"])
    assert list(read) == ["crf/transitions"]


def test_training_fits_a_temperature_and_info_shows_it(tiny_model):
    folder, _ = tiny_model
    evaluation = json.loads((folder / "evaluation.json").read_text())
    fit = evaluation["calibration"]
    assert fit["sentences"] == 60 and fit["objective"] == "likelihood" and fit["loss_after"] <= fit["loss_before"]
    code, output = invoke("info", folder)
    assert code == 0 and f"confidence temperature: {fit['temperature']:.3f}" in output


def test_a_training_whose_dev_fit_ends_on_a_bound_keeps_the_raw_confidences(micro_model):
    """One epoch on 40 sentences: the gold tags of dev are likeliest at the search's upper bound (a
    model that knows nearly nothing); no temperature is kept, and info says so."""
    from neuroner_tl import api

    assert json.loads((micro_model / "evaluation.json").read_text())["calibration"] is None
    assert api.load_tagger(micro_model).temperature == 1.0
    code, output = invoke("info", micro_model)
    assert code == 0 and "confidence temperature: 1.000 (not fitted" in output


def _all_outside(data, path):
    from neuroner_tl import api
    from neuroner_tl.conll import write_conll

    write_conll(path, [s.with_labels(["O"] * len(s)) for s in api.load_corpus(data).sentences])
    return path


def test_calibration_at_the_end_of_training_warns_and_keeps_the_temperature_without_evidence(tiny_model, tiny_data,
                                                                                             tmp_path):
    from neuroner_tl import api

    tagger = api.load_tagger(tiny_model[0])
    before = tagger.temperature
    said = []
    dev = api.load_corpus(_all_outside(tiny_data["dev"], tmp_path / "dev.conll"))
    assert calibration.calibrate_on_dev(tagger, dev, api.load_corpus(tiny_data["train"]), said.append) is None
    assert tagger.temperature == before
    assert len(said) == 1 and said[0].startswith("warning: confidences not calibrated")
    assert "too little evidence" in said[0] and "0 gold entities" in said[0] and f"stays {before:.2f}" in said[0]


@pytest.mark.parametrize("objective", ["spans", "likelihood"])
@pytest.mark.parametrize("data", ["no gold entity", "one sentence"])
def test_calibrate_on_too_little_evidence_is_one_line_and_writes_nothing(tiny_model, tiny_data, tmp_path, objective,
                                                                         data):
    """The data have no gold entity (every predicted entity wrong: the spans fit ran to T = 20), or
    one sentence with one or two entities: either is refused, and no model is written."""
    from conftest import one_line_error

    source = (_all_outside(tiny_data["test"], tmp_path / "data.conll") if data == "no gold entity" else
              tmp_path / "data.conll")
    if data == "one sentence":
        source.write_text(tiny_data["test"].read_text().split("\n\n")[0] + "\n")
    output = tmp_path / "calibrated"
    one_line_error(*invoke("calibrate", tiny_model[0], source, "-o", output, "--objective", objective),
                   str(source), "too little evidence", "nothing was written")
    assert not output.exists()


def test_calibrate_refits_on_the_users_data_into_a_new_folder_and_never_touches_the_model(tiny_model, tiny_data,
                                                                                         tmp_path):
    from neuroner_tl import api

    model = tiny_model[0]
    before = api.load_tagger(model).temperature
    output = tmp_path / "calibrated"
    code, text = invoke("calibrate", model, tiny_data["test"], "-o", output, "--objective", "likelihood")
    assert code == 0 and "temperature" in text, text
    fitted = json.loads((output / "evaluation.json").read_text())["calibration"]
    assert fitted["objective"] == "likelihood" and fitted["fitted_on"] == str(tiny_data["test"])
    assert api.load_tagger(output).temperature == pytest.approx(fitted["temperature"])
    assert api.load_tagger(model).temperature == before
    corpus = api.load_corpus(tiny_data["test"])
    assert api.load_tagger(output).predict(corpus.sentences) == api.load_tagger(model).predict(corpus.sentences)
    code, text = invoke("calibrate", model, tiny_data["test"], "-o", model, "--force")
    assert code != 0 and api.load_tagger(model).temperature == before


def test_no_calibration_shows_the_raw_numbers_in_the_cli_the_api_and_http(hot_model, micro_data, tmp_path):
    pytest.importorskip("fastapi")
    from neuroner_tl import api
    from neuroner_tl.serve import create_app

    from conftest import asgi_request

    text = "please send the invoice to Maria Rossi in Berlin, she is at 12 Baker Street"
    calibrated = api.tag(hot_model, text)
    raw = api.tag(hot_model, text, calibrated=False)
    assert [(e["type"], e["start"]) for e in calibrated] == [(e["type"], e["start"]) for e in raw] and raw
    assert not np.allclose([e["confidence"] for e in calibrated], [e["confidence"] for e in raw], atol=1e-3)

    source = tmp_path / "input.txt"
    source.write_text(text + "\n")
    outputs = {}
    for flags in ((), ("--no-calibration",)):
        output = tmp_path / f"out{len(flags)}.jsonl"
        code, message = invoke("predict", hot_model, source, "-o", output, "--format", "jsonl", *flags)
        assert code == 0, message
        outputs[flags] = [span["score"] for line in output.read_text().splitlines()
                          for span in json.loads(line)["spans"]]
    assert outputs[()] == pytest.approx([e["confidence"] for e in calibrated], abs=1e-5)
    assert outputs[("--no-calibration",)] == pytest.approx([e["confidence"] for e in raw], abs=1e-5)

    for flag, expected in ((True, calibrated), (False, raw)):
        app = create_app(hot_model, calibrated=flag)
        status, answer = asgi_request(app, "POST", "/tag", {"text": text})
        assert status == 200
        assert [e["confidence"] for e in answer["entities"]] == pytest.approx([e["confidence"] for e in expected],
                                                                               abs=1e-5)
        status, described = asgi_request(app, "GET", "/model")
        assert described["temperature"] == pytest.approx(3.0) and described["calibrated"] is flag

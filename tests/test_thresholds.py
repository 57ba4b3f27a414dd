"""The threshold report: what each confidence threshold keeps, scored per type and overall, on
hand-made entities; the same figures as evaluating with ``min_confidence`` on a micro model; and
``neuroner-tl evaluate --thresholds`` end to end."""

import json

import pytest

from conftest import invoke, one_line_error, snapshot
from neuroner_tl import api
from neuroner_tl import tags as tagging
from neuroner_tl.conll import write_conll
from neuroner_tl.errors import ThresholdError
from neuroner_tl.predicted import ScoredSpan
from neuroner_tl.tags import Span
from neuroner_tl.thresholds import DEFAULT_LADDER, threshold_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# two sentences: gold PER, LOC | PER, ORG
GOLD = [[Span("PER", 0, 2), Span("LOC", 3, 4)], [Span("PER", 0, 1), Span("ORG", 2, 3)]]
FOUND = [[ScoredSpan("PER", 0, 2, 0.9),  # right
          ScoredSpan("LOC", 3, 4, 0.4)],  # right
         [ScoredSpan("PER", 0, 2, 0.6),  # wrong end
          ScoredSpan("LOC", 2, 3, 0.99)]]  # wrong type (gold ORG)
LADDER = (0.0, 0.5, 0.9, 0.95, 1.0)


def counts(curve):
    """(found, correct, gold) at each threshold of the curve."""
    return [(s.score.predicted, s.score.correct, s.score.gold) for s in curve.steps]


def test_each_threshold_keeps_the_entities_at_or_above_it():
    report = threshold_report(GOLD, FOUND, LADDER)
    assert report.ladder == LADDER
    assert list(report.curves) == ["LOC", "ORG", "PER"]
    # PER's right entity has confidence 0.9 exactly: kept at 0.9, as --min-confidence 0.9 keeps it
    assert counts(report.curves["PER"]) == [(2, 1, 2), (2, 1, 2), (1, 1, 2), (0, 0, 2), (0, 0, 2)]
    assert counts(report.curves["LOC"]) == [(2, 1, 1), (1, 0, 1), (1, 0, 1), (1, 0, 1), (0, 0, 1)]
    assert counts(report.curves["ORG"]) == [(0, 0, 1)] * 5
    assert counts(report.overall) == [(4, 2, 4), (3, 1, 4), (2, 1, 4), (1, 0, 4), (0, 0, 4)]
    at_09 = report.curves["PER"].steps[2].score
    assert (at_09.precision, at_09.recall, at_09.f1) == (100.0, 50.0, pytest.approx(200 / 3))


def test_best_f1_is_the_highest_and_the_lowest_threshold_on_a_tie():
    report = threshold_report(GOLD, FOUND, LADDER)
    assert report.curves["PER"].best_f1.threshold == 0.9  # 2/3 beats 1/2 at 0 and 0.5
    assert report.curves["LOC"].best_f1.threshold == 0.0
    assert report.curves["ORG"].best_f1.threshold == 0.0  # F1 0 everywhere: the lowest
    assert report.overall.best_f1.threshold == 0.0
    # F1 = 2c/(gold+found): 2 of 6 found (4/8) and 1 of 2 found (2/4) tie exactly, whatever floats say
    gold = [[Span("X", 0, 1), Span("X", 2, 3)]]
    found = [[ScoredSpan("X", 0, 1, 0.3), ScoredSpan("X", 2, 3, 0.8), ScoredSpan("X", 4, 5, 0.1),
              ScoredSpan("X", 5, 6, 0.2), ScoredSpan("X", 6, 7, 0.4), ScoredSpan("X", 7, 8, 0.6)]]
    tie = threshold_report(gold, found, (0.0, 0.5)).curves["X"]
    assert counts(tie) == [(6, 2, 2), (2, 1, 2)]
    assert tie.best_f1.threshold == 0.0


def test_target_precision_marks_the_lowest_threshold_that_reaches_it():
    report = threshold_report(GOLD, FOUND, LADDER, target_precision=0.95)
    assert report.curves["PER"].target.threshold == 0.9
    assert report.curves["LOC"].target is None  # 1 right of 2 at most
    assert report.curves["LOC"].best_precision.threshold == 0.0
    assert report.curves["ORG"].target is None  # nothing found: no precision to reach
    assert report.overall.target is None
    # exactly the target counts: 2 of 4 right at 0 is precision 0.5
    assert threshold_report(GOLD, FOUND, LADDER, target_precision=0.5).overall.target.threshold == 0.0
    table = report.format_table()
    assert "not reached: best 50.00 at 0" in table
    per_row = next(line for line in table.splitlines() if line.split()[:1] == ["0.9"] and "100.00" in line)
    assert "best F1" in per_row and "precision >= 95.00%" in per_row


def test_suggested_flags_and_types_without_gold():
    with_target = threshold_report(GOLD, FOUND, LADDER, target_precision=0.95, entity_types=["MISC"])
    assert counts(with_target.curves["MISC"]) == [(0, 0, 0)] * 5
    assert with_target.min_confidence == {"PER": 0.9}
    assert with_target.flags() == "--min-confidence PER=0.9"
    assert with_target.one_for_all is None
    table = with_target.format_table()
    assert "MISC" in table and "no gold entity in the data" in table and "target precision not reached" in table
    best_f1 = threshold_report(GOLD, FOUND, LADDER, entity_types=["MISC"])
    assert best_f1.min_confidence == {"LOC": 0.0, "ORG": 0.0, "PER": 0.9}  # MISC: nothing to judge by
    assert best_f1.flags() == "--min-confidence LOC=0 --min-confidence ORG=0 --min-confidence PER=0.9"
    assert best_f1.one_for_all == 0.0


def test_the_report_as_json():
    report = threshold_report(GOLD, FOUND, LADDER, target_precision=0.95)
    data = json.loads(report.to_json())
    assert data["ladder"] == list(LADDER) and data["target_precision"] == 0.95
    per = data["types"]["PER"]
    assert per["best_f1"] == 0.9 and per["target"] == 0.9 and per["suggested"] == 0.9
    assert per["steps"][2] == {"threshold": 0.9, "gold": 2, "predicted": 1, "correct": 1, "precision": 100.0,
                               "recall": 50.0, "f1": pytest.approx(200 / 3)}
    assert data["types"]["LOC"]["target"] is None
    assert data["overall"]["steps"][0]["predicted"] == 4
    assert data["min_confidence"] == {"PER": 0.9} and data["flags"] == "--min-confidence PER=0.9"


def test_the_ladder_always_starts_at_no_threshold_and_is_sorted():
    assert threshold_report(GOLD, FOUND, [0.9, 0.5, 0.9]).ladder == (0.0, 0.5, 0.9)
    assert threshold_report(GOLD, FOUND).ladder == DEFAULT_LADDER


def test_an_empty_ladder_is_refused_rather_than_scoring_no_threshold_alone():
    with pytest.raises(ThresholdError, match="the ladder has no thresholds"):
        threshold_report(GOLD, FOUND, [])


@pytest.mark.parametrize("ladder,target", [([0.5, 1.5], None), ([True], None), ([float("nan")], None),
                                           (LADDER, 0), (LADDER, 1.2), (LADDER, -0.5), (LADDER, float("nan"))])
def test_thresholds_that_are_not_probabilities_are_refused(ladder, target):
    with pytest.raises(ThresholdError):
        threshold_report(GOLD, FOUND, ladder, target_precision=target)


def test_entities_need_confidences_and_sentences_must_pair():
    with pytest.raises(ValueError, match="without a confidence"):
        threshold_report(GOLD, [[ScoredSpan("PER", 0, 2, None)], []])
    with pytest.raises(ValueError):
        threshold_report(GOLD, FOUND[:1])


# On a model: the same figures as evaluating with min_confidence ---------------------------------
@pytest.fixture(scope="module")
def half_right(micro_model, micro_data, tmp_path_factory):
    """The micro model's dev data relabelled so that every other entity it finds is right (gold
    entities that overlap none of those stay): a micro model finds nothing right on its own."""
    tagger = api.load_tagger(micro_model)
    corpus = api.load_corpus(micro_data["dev"])
    predictions = tagger.predict_with_confidence(corpus.sentences)
    sentences, number = [], 0
    for sentence, prediction in zip(corpus.sentences, predictions):
        kept = []
        for entity in prediction.entities():
            if number % 2 == 0:
                kept.append(Span(entity.type, entity.start, entity.end))
            number += 1
        taken = {i for span in kept for i in range(span.start, span.end)}
        kept += [span for span in tagging.spans(sentence.labels) if taken.isdisjoint(range(span.start, span.end))]
        sentences.append(sentence.with_labels(tagging.tags_from_spans(kept, len(sentence), "IOB2")))
    path = tmp_path_factory.mktemp("thresholds") / "half_right.conll"
    write_conll(path, sentences)
    confidences = sorted({e.confidence for p in predictions for e in p.entities()})
    return path, confidences


def test_figures_at_each_threshold_are_those_of_evaluating_with_it(micro_model, half_right):
    data, confidences = half_right
    assert len(confidences) >= 8, "the micro model finds entities"
    middle = len(confidences) // 2
    # between two confidences, and one confidence exactly (kept, as --min-confidence keeps it)
    ladder = [(confidences[middle // 2] + confidences[middle // 2 + 1]) / 2, confidences[middle],
              (confidences[-3] + confidences[-2]) / 2]
    tagger = api.load_tagger(micro_model)
    report = api.threshold_report(tagger, data, ladder=ladder)
    assert report.overall.steps[0].score.correct > 0
    assert [s.score.predicted for s in report.overall.steps] == sorted(
        [s.score.predicted for s in report.overall.steps], reverse=True)
    for index, threshold in enumerate(report.ladder):
        evaluated = api.evaluate(tagger, data, min_confidence=threshold)
        assert report.overall.steps[index].score == evaluated.overall, threshold
        for kind, curve in report.curves.items():
            expected = evaluated.by_type.get(kind)
            assert curve.steps[index].score == (expected or curve.steps[index].score), (kind, threshold)
            if expected is None:
                assert curve.steps[index].score.predicted == curve.steps[index].score.gold == 0
    # one threshold per type: each type's figures are those of its own threshold
    by_type = {kind: report.ladder[i % len(report.ladder)] for i, kind in enumerate(report.curves)}
    evaluated = api.evaluate(tagger, data, min_confidence=by_type)
    for kind, score in evaluated.by_type.items():
        assert report.curves[kind].steps[report.ladder.index(by_type[kind])].score == score, kind


# The command line -------------------------------------------------------------------------------
def test_evaluate_thresholds_prints_writes_and_refuses_to_overwrite(micro_model, micro_data, tmp_path):
    report_json, plot = tmp_path / "thresholds.json", tmp_path / "thresholds.png"
    args = ["evaluate", micro_model, micro_data["dev"], "--thresholds", "--target-precision", "0.95",
            "--thresholds-json", report_json, "--thresholds-plot", plot]
    code, output = invoke(*args)
    assert code == 0, output
    assert "best F1" in output and "precision >= 95.00%" in output and "one threshold for every type" in output
    written = json.loads(report_json.read_text())
    tagger = api.load_tagger(micro_model)
    assert list(written["types"]) == tagger.entity_types and written["ladder"] == list(DEFAULT_LADDER)
    assert written["target_precision"] == 0.95
    image = plot.read_bytes()
    assert image.startswith(PNG_MAGIC) and len(image) > 10_000
    before = snapshot(tmp_path)
    one_line_error(*invoke(*args), "already exists", "--force")
    assert snapshot(tmp_path) == before
    code, output = invoke(*args, "--force", "--json")
    assert code == 0, output
    assert json.loads(output) == json.loads(report_json.read_text()) == written


def test_evaluate_thresholds_mistakes_are_one_line(micro_model, micro_data, tmp_path):
    data = micro_data["dev"]
    for value in ("1.5", "0", "abc", "-0.1"):
        one_line_error(*invoke("evaluate", micro_model, data, "--thresholds", "--target-precision", value),
                       "precision")
    for value in ("0.5,2", "0.5,x"):
        one_line_error(*invoke("evaluate", micro_model, data, "--thresholds", "--ladder", value), "ladder")
    for value, problem in ((",,", "has an empty threshold"), ("", "has an empty threshold"),
                           ("0.5,,0.9", "has an empty threshold"), ("0.9,", "has an empty threshold"),
                           ("0.5,0.9,.5", "gives the threshold .5 twice"), ("nan", "not nan")):
        one_line_error(*invoke("evaluate", micro_model, data, "--thresholds", "--ladder", value), "--ladder", problem)
    one_line_error(*invoke("evaluate", micro_model, data, "--target-precision", "0.9"), "--target-precision",
                   "--thresholds")
    one_line_error(*invoke("evaluate", micro_model, data, "--thresholds", "--min-confidence", "0.5"),
                   "--min-confidence")
    one_line_error(*invoke("evaluate", micro_model, data, "--thresholds", "--thresholds-json", data, "--force"),
                   "is an input")
    same = tmp_path / "same"
    one_line_error(*invoke("evaluate", micro_model, data, "--thresholds", "--thresholds-json", same,
                           "--thresholds-plot", same), "two outputs")
    assert list(tmp_path.iterdir()) == []


def test_evaluate_with_min_confidence_drops_entities_as_predict_does(micro_model, micro_data):
    code, output = invoke("evaluate", micro_model, micro_data["dev"], "--json")
    code_strict, strict = invoke("evaluate", micro_model, micro_data["dev"], "--json", "--min-confidence", "1")
    assert code == code_strict == 0, output + strict
    assert json.loads(output)["overall"]["predicted"] > 0
    assert json.loads(strict)["overall"]["predicted"] == 0

import pytest
from seqeval.metrics import f1_score

from neuroner_tl.conll import read_conll
from neuroner_tl.evaluation import evaluate

from conftest import FIXTURES


def fixture_tags():
    corpus = read_conll(FIXTURES / "conlleval_input.txt")  # token, gold, predicted
    gold = [[c[0] for c in s.columns] for s in corpus.sentences]
    predicted = [s.labels for s in corpus.sentences]
    return gold, predicted


def test_matches_the_output_of_the_real_conlleval_on_tricky_cases():
    """conlleval_output.txt is what conlleval.pl printed for conlleval_input.txt (I- without B-,
    type changes inside a span, a token that is itself a tag, touching entities)."""
    gold, predicted = fixture_tags()
    report = evaluate(gold, predicted)
    expected = (FIXTURES / "conlleval_output.txt").read_text(encoding="utf-8").rstrip("\n")
    assert report.format_conlleval() == expected


def test_agrees_with_seqeval_default_mode():
    gold, predicted = fixture_tags()
    assert evaluate(gold, predicted).f1 == pytest.approx(100 * f1_score(gold, predicted), abs=1e-6)


def test_report_table_and_json():
    report = evaluate([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "B-LOC"]])
    assert report.by_type["PER"].f1 == 100.0
    assert report.by_type["LOC"].precision == 0.0
    assert report.overall.precision == 50.0 and report.overall.recall == 100.0
    assert "PER" in report.format_table() and '"f1"' in report.to_json()


def test_lengths_must_match():
    with pytest.raises(ValueError):
        evaluate([["O", "O"]], [["O"]])

import pytest

from neuroner_tl import tags as t
from neuroner_tl.tags import Span


@pytest.mark.parametrize("tags,expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], [Span("PER", 0, 2), Span("LOC", 3, 4)]),
    (["I-PER", "I-PER", "B-PER", "O"], [Span("PER", 0, 2), Span("PER", 2, 3)]),  # IOB1
    (["O", "I-LOC", "I-ORG"], [Span("LOC", 1, 2), Span("ORG", 2, 3)]),  # type change mid-span
    (["B-PER", "I-LOC"], [Span("PER", 0, 1), Span("LOC", 1, 2)]),
    (["PER", "PER", "O", "LOC"], [Span("PER", 0, 2), Span("LOC", 3, 4)]),  # IO
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"], [Span("PER", 0, 1), Span("LOC", 1, 4), Span("LOC", 4, 5)]),
    (["E-PER", "E-PER"], [Span("PER", 0, 1), Span("PER", 1, 2)]),
    ([], []),
])
def test_spans_follow_conlleval_chunking(tags, expected):
    assert t.spans(tags) == expected


SENTENCE_SPANS = [Span("PER", 0, 2), Span("PER", 2, 3), Span("LOC", 4, 5)]
RENDERINGS = {
    "IOB2": ["B-PER", "I-PER", "B-PER", "O", "B-LOC"],
    "IOB1": ["I-PER", "I-PER", "B-PER", "O", "I-LOC"],
    "BIOES": ["B-PER", "E-PER", "S-PER", "O", "S-LOC"],
}


@pytest.mark.parametrize("scheme", sorted(RENDERINGS))
def test_rendering_and_conversion_between_schemes(scheme):
    assert t.tags_from_spans(SENTENCE_SPANS, 5, scheme) == RENDERINGS[scheme]
    for other, tags in RENDERINGS.items():
        assert t.convert(tags, scheme) == RENDERINGS[scheme], (other, scheme)


def test_io_merges_touching_entities_of_one_type():
    assert t.tags_from_spans(SENTENCE_SPANS, 5, "IO") == ["PER", "PER", "PER", "O", "LOC"]


@pytest.mark.parametrize("tags,scheme", [
    ([["B-PER", "I-PER", "O"]], "IOB2"),
    ([["I-PER", "I-PER", "O"]], "IOB1"),
    ([["I-PER", "B-PER", "O"]], "IOB1"),
    ([["S-PER", "O"]], "BIOES"),
    ([["PER", "O"]], "IO"),
    ([["O", "O"]], "IOB2"),
])
def test_detect_scheme(tags, scheme):
    assert t.detect_scheme(tags) == scheme


def test_scheme_names_and_aliases():
    assert t.canonical_scheme("bio") == "IOB2"
    assert t.canonical_scheme("iobes") == "BIOES"
    with pytest.raises(ValueError, match="unknown tag scheme"):
        t.canonical_scheme("BILUO2")


@pytest.mark.parametrize("tag,scheme,ok", [
    ("B-PER", "IOB2", True), ("S-PER", "IOB2", False), ("S-PER", "BIOES", True), ("PER", "IOB2", False),
    ("PER", "IO", True), ("B-PER", "IO", False), ("B-", None, False), ("X-PER", "IOB2", False), ("O", "IO", True),
])
def test_tag_problem(tag, scheme, ok):
    assert (t.tag_problem(tag, scheme) is None) == ok


def test_labels_for_types():
    assert t.labels_for_types(["LOC"], "BIO") == ["O", "B-LOC", "I-LOC"]
    assert t.labels_for_types(["LOC"], "BIOES") == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]

import pytest

import numpy as np

from neuroner_tl import tags as t
from neuroner_tl import tags as tagging
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


# allowed_transitions: the whole table of each scheme, written out (rows: from; columns: to;
# the last two are START and END), as AllenNLP tests its allowed_transitions
def _table(rows):
    return np.array([[cell == "1" for cell in row.split()] for row in rows])


ALLOWED_TABLES = {
    ("IOB2", ("O", "B-A", "I-A", "B-B", "I-B")): [
        # O B-A I-A B-B I-B START END
        "1 1 0 1 0 0 1",   # O
        "1 1 1 1 0 0 1",   # B-A
        "1 1 1 1 0 0 1",   # I-A
        "1 1 0 1 1 0 1",   # B-B
        "1 1 0 1 1 0 1",   # I-B
        "1 1 0 1 0 0 0",   # START
        "0 0 0 0 0 0 0",   # END
    ],
    ("IOB1", ("O", "B-A", "I-A", "I-B")): [
        "1 0 1 1 0 1",
        "1 1 1 1 0 1",
        "1 1 1 1 0 1",
        "1 0 1 1 0 1",
        "1 0 1 1 0 0",
        "0 0 0 0 0 0",
    ],
    ("BIOES", ("O", "B-A", "I-A", "E-A", "S-A", "S-B")): [
        "1 1 0 0 1 1 0 1",  # O
        "0 0 1 1 0 0 0 0",  # B-A: only I-A, E-A
        "0 0 1 1 0 0 0 0",  # I-A
        "1 1 0 0 1 1 0 1",  # E-A
        "1 1 0 0 1 1 0 1",  # S-A
        "1 1 0 0 1 1 0 1",  # S-B
        "1 1 0 0 1 1 0 0",  # START
        "0 0 0 0 0 0 0 0",  # END
    ],
    ("IO", ("O", "A", "B")): [
        "1 1 1 0 1",
        "1 1 1 0 1",
        "1 1 1 0 1",
        "1 1 1 0 0",
        "0 0 0 0 0",
    ],
}


@pytest.mark.parametrize("scheme,labels", list(ALLOWED_TABLES))
def test_allowed_transitions_tables(scheme, labels):
    np.testing.assert_array_equal(tagging.allowed_transitions(scheme, list(labels)), _table(ALLOWED_TABLES[scheme, labels]))


def test_allowed_transitions_accepts_aliases_and_refuses_labels_of_another_scheme():
    labels = ["O", "B-A", "I-A"]
    np.testing.assert_array_equal(tagging.allowed_transitions("BIO", labels), tagging.allowed_transitions("IOB2", labels))
    with pytest.raises(ValueError):
        tagging.allowed_transitions("IOB2", ["O", "A"])


@pytest.mark.parametrize("scheme", ["IO", "IOB1", "IOB2", "BIOES"])
def test_every_sequence_written_in_a_scheme_is_allowed(scheme):
    """What ``tags_from_spans`` writes (random entities) never uses a move the mask forbids."""
    rng = np.random.default_rng(0)
    labels = tagging.labels_for_types(["A", "B"], scheme)
    index = {label: i for i, label in enumerate(labels)}
    allowed = tagging.allowed_transitions(scheme, labels)
    for _ in range(200):
        length = int(rng.integers(1, 8))
        spans, position = [], 0
        while position < length:
            size = int(rng.integers(1, 4))
            if rng.random() < 0.5 and position + size <= length:
                spans.append(tagging.Span(str(rng.choice(["A", "B"])), position, position + size))
            position += size
        steps = [len(labels)] + [index[t] for t in tagging.tags_from_spans(spans, length, scheme)] + [len(labels) + 1]
        assert all(allowed[a, b] for a, b in zip(steps, steps[1:])), (scheme, spans)

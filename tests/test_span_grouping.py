"""Entities are grouped one way: ``crf.entity_marks``/``entity_ids`` (in the graph, used by the CRF's
span confidences and the SavedModel's ``serve_text``) find exactly the spans of ``tags.spans``, for
every scheme and for tag sequences no scheme allows."""

import numpy as np
import pytest

from neuroner_tl import tags as tagging
from neuroner_tl.crf import entity_ids, entity_marks


def graph_spans(labels, tag_ids, lengths):
    """Per row, the spans found by the graph's grouping: (type, start, end) from the tokens of each id."""
    continues = tagging.span_continuation(labels)
    is_entity = [label != tagging.OUTSIDE for label in labels]
    valid = np.arange(tag_ids.shape[1])[None, :] < np.asarray(lengths)[:, None]
    inside, _, starts = entity_marks(tag_ids, valid, continues, is_entity)
    ids = entity_ids(starts).numpy()
    inside = inside.numpy()
    found = {}
    for row, position in zip(*np.nonzero(inside)):
        found.setdefault(ids[row, position], []).append((row, position))
    rows = [[] for _ in lengths]
    for entity in sorted(found):
        (row, first), last = found[entity][0], found[entity][-1][1]
        assert all(r == row for r, _ in found[entity]), "an entity crosses rows"
        assert [p for _, p in found[entity]] == list(range(first, last + 1)), "an entity has a gap"
        rows[row].append(tagging.Span(tagging.split_tag(labels[tag_ids[row, first]])[1], int(first), int(last) + 1))
    return rows


@pytest.mark.parametrize("scheme", ["IO", "IOB2", "BIOES"])
@pytest.mark.parametrize("seed", range(4))
def test_graph_grouping_equals_tags_spans_on_random_sequences(scheme, seed):
    """Random sequences (mostly not valid in the scheme: I- after O, E- of another type, ...) of random
    lengths, padded with random ids that must not count."""
    rng = np.random.default_rng(seed)
    labels = tagging.labels_for_types(["PER", "LOC", "ORG"], scheme)
    lengths = rng.integers(0, 13, size=32)
    lengths[0] = 12
    tag_ids = rng.integers(0, len(labels), size=(32, 12)).astype(np.int32)
    expected = [tagging.spans([labels[i] for i in tag_ids[row, :length]]) for row, length in enumerate(lengths)]
    assert graph_spans(labels, tag_ids, lengths) == expected


def test_graph_grouping_on_valid_sequences_of_each_scheme():
    for scheme in ("IO", "IOB2", "BIOES"):
        labels = tagging.labels_for_types(["PER", "LOC"], scheme)
        spans = [tagging.Span("PER", 0, 2), tagging.Span("LOC", 2, 3), tagging.Span("PER", 4, 7)]
        tags = tagging.tags_from_spans(spans, 8, scheme)
        tag_ids = np.array([[labels.index(t) for t in tags]], dtype=np.int32)
        assert graph_spans(labels, tag_ids, [8]) == [spans] == [tagging.spans(tags)]


def test_no_entity_and_empty_rows():
    labels = tagging.labels_for_types(["PER"], "IOB2")
    tag_ids = np.zeros((3, 4), dtype=np.int32)
    tag_ids[2] = labels.index("B-PER")  # all padding: length 0
    assert graph_spans(labels, tag_ids, [4, 0, 0]) == [[], [], []]

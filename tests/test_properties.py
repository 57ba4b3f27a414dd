"""Property-based tests: any text either parses and round-trips through the writer, or raises the
package's own error naming the file and line; tag-scheme conversions keep the entities."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroner_tl import tags
from neuroner_tl.brat import read_brat, write_brat
from neuroner_tl.conll import format_conll, parse_conll
from neuroner_tl.errors import DataFormatError

TYPES = st.sampled_from(["PER", "LOC", "ORG", "B", "Misc-Thing"])
TAG = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from("BIES"), TYPES))
WORD = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)


@st.composite
def conll_like(draw):
    """Mostly well-formed CoNLL with random damage: odd columns, odd labels, blank lines, junk."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append("")
        elif kind == 1:
            lines.append(draw(WORD))
        elif kind == 2:
            lines.append("-DOCSTART- -X- O")
        else:
            columns = [draw(WORD)] + [draw(WORD) for _ in range(draw(st.integers(0, 2)))]
            lines.append(" ".join(columns + [draw(st.one_of(TAG, WORD))]))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n"]))


def parses_or_names_the_line(text):
    try:
        corpus = parse_conll(text, path="f.conll")
    except DataFormatError as error:
        assert error.path == "f.conll"
        assert str(error).startswith("f.conll")
        return None
    return corpus


def assert_round_trip(corpus):
    again = parse_conll(format_conll(corpus.sentences), path="again.conll", labelled=corpus.labelled)
    assert [(s.tokens, s.labels, s.columns) for s in again] == [(s.tokens, s.labels, s.columns) for s in corpus]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conll_like())
def test_conll_reader_round_trips_or_raises_its_own_error(text):
    corpus = parses_or_names_the_line(text)
    if corpus is not None:
        assert_round_trip(corpus)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_reader(text):
    corpus = parses_or_names_the_line(text)
    if corpus is not None:
        assert_round_trip(corpus)


@settings(max_examples=300, deadline=None)
@given(st.lists(TAG, max_size=15), st.sampled_from(["IOB1", "IOB2", "BIOES"]))
def test_conversions_keep_the_entities(sequence, scheme):
    converted = tags.convert(sequence, scheme)
    assert tags.spans(converted) == tags.spans(sequence)
    # with an entity, each scheme leaves its own evidence (E-/S-; B- opening; I- opening); without
    # one, nothing distinguishes the schemes and detection falls back to IOB2
    assert tags.detect_scheme([converted]) == (scheme if tags.spans(sequence) else "IOB2")
    assert all(tags.tag_problem(t, scheme) is None for t in converted)


@settings(max_examples=200, deadline=None)
@given(st.lists(TAG, max_size=15))
def test_io_merges_only_touching_entities_of_one_type(sequence):
    io = tags.convert(sequence, "IO")
    merged = []
    for span in tags.spans(sequence):
        if merged and merged[-1].end == span.start and merged[-1].type == span.type:
            merged[-1] = tags.Span(span.type, merged[-1].start, span.end)
        else:
            merged.append(span)
    assert tags.spans(io) == merged


PLAIN = st.text(alphabet=string.ascii_letters + string.digits + " .,'\n-àé", max_size=80)


@st.composite
def brat_document(draw):
    text = draw(PLAIN)
    lines = []
    for i in range(draw(st.integers(0, 4))):
        start = draw(st.integers(-2, len(text) + 2))
        end = draw(st.integers(-2, len(text) + 3))
        kind = draw(st.sampled_from(["PER", "LOC", "B-LOC", "Org"]))
        separator = draw(st.sampled_from([" ", ";", "x"]))
        lines.append(f"T{i + 1}\t{kind} {start}{separator}{end}\t{text[max(start, 0):max(end, 0)]}")
    if draw(st.booleans()):
        lines.append("#1\tAnnotatorNotes T1\tnote")
    return text, "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(brat_document())
def test_brat_reader_round_trips_or_raises_its_own_error(tmp_path_factory, document):
    text, ann = document
    folder = tmp_path_factory.mktemp("brat")
    (folder / "doc.txt").write_text(text, encoding="utf-8")
    (folder / "doc.ann").write_text(ann, encoding="utf-8")
    try:
        corpus = read_brat(folder)
    except DataFormatError as error:
        assert str(folder) in str(error)
        return
    out = tmp_path_factory.mktemp("brat_out")
    write_brat(out, {"doc": text}, corpus.sentences, [s.labels for s in corpus.sentences])
    again = read_brat(out)
    assert [(s.tokens, s.labels, s.offsets) for s in again] == [(s.tokens, s.labels, s.offsets) for s in corpus]

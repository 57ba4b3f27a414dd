import pytest

from neuroner_tl.conll import format_conll, parse_conll, read_conll, write_conll
from neuroner_tl.errors import DataFormatError

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_reads_tokens_middle_columns_labels_and_skips_docstart(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(CONLL, encoding="utf-8")
    corpus = read_conll(path)
    assert [s.tokens for s in corpus] == [["EU", "rejects", "German"], ["Peter", "Blackburn"]]
    assert corpus.sentences[0].labels == ["B-ORG", "O", "B-MISC"]
    assert corpus.sentences[0].columns[0] == ["NNP", "B-NP"]
    assert corpus.sentences[1].line == 7
    assert corpus.scheme == "IOB2"


def test_round_trip_through_the_writer(tmp_path):
    corpus = parse_conll(CONLL)
    path = tmp_path / "out.txt"
    write_conll(path, corpus.sentences)
    again = read_conll(path)
    assert [(s.tokens, s.labels, s.columns) for s in again] == [(s.tokens, s.labels, s.columns) for s in corpus]


def test_tab_separated_io_file_is_detected_and_converted():
    corpus = parse_conll("Il\tO\nMonastero\tLOC\nLama\tLOC\n\nRoma\tLOC\n")
    assert corpus.scheme == "IO"
    assert corpus.converted("BIO").sentences[0].labels == ["O", "B-LOC", "I-LOC"]
    assert corpus.converted("BIOES").sentences[1].labels == ["S-LOC"]


def test_unlabelled_text_has_one_column():
    corpus = parse_conll("Mario\nRossi\n\nciao\n")
    assert not corpus.labelled and corpus.sentences[0].tokens == ["Mario", "Rossi"]


@pytest.mark.parametrize("text,line,message", [
    ("a O\nb O extra\n", 2, "expected 2 columns"),
    ("a O\nb B-\n", 2, "not a tag"),
    ("a O\n\nb S-PER\n", 3, "not a IOB2 tag"),
    ("a PER\nb B-PER\n", 1, "has no B-/I- prefix"),
])
def test_errors_name_the_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    scheme = "IOB2" if "S-PER" in text else None
    with pytest.raises(DataFormatError, match=message) as caught:
        read_conll(path, scheme=scheme)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")


CONTRADICTED_SCHEMES = [  # (scheme given, file, line of the first label it does not allow, that label)
    ("BIOES", "Angela B-PER\nMerkel I-PER\nvisited O\nParis B-LOC\n. O\n", 3, "'O' after 'I-PER' is not BIOES"),
    ("BIOES", "Paris B-LOC\n", 1, "'B-LOC' last in a sentence is not BIOES"),
    ("IOB2", "x O\n\nAngela I-PER\nMerkel I-PER\n", 3, "'I-PER' first in a sentence is not IOB2"),
    ("IOB1", "a O\nParis B-LOC\nb O\n", 2, "'B-LOC' after 'O' is not IOB1"),
]


def test_a_scheme_the_whole_file_contradicts_is_an_error_naming_the_file_line_and_label(tmp_path):
    path = tmp_path / "data.conll"
    for given, text, line, shown in CONTRADICTED_SCHEMES:
        path.write_text(text, encoding="utf-8")
        detected = read_conll(path).scheme
        with pytest.raises(DataFormatError) as caught:
            read_conll(path, scheme=given)
        assert str(caught.value) == (f"{path}:{line}: labels are written in {detected}, not {given}: {shown} "
                                     f"(without a scheme given they are read as {detected})")
    # not a stray label in a file of that scheme (one I- after O in BIOES), nor a file without entities
    assert parse_conll("Angela B-PER\nMerkel E-PER\nParis S-LOC\nsays O\nhi I-PER\n", scheme="BIOES").scheme == "BIOES"
    assert parse_conll("a O\nb O\n", scheme="BIOES").scheme == "BIOES"


def test_empty_file_and_unknown_scheme_and_bad_encoding(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n-DOCSTART- -X- O\n\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no sentences"):
        read_conll(empty)
    good = tmp_path / "good.txt"
    good.write_text("a O\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="unknown tag scheme"):
        read_conll(good, scheme="IOXB")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("a O\nperché O\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="not UTF-8") as caught:
        read_conll(latin)
    assert caught.value.line == 2
    with pytest.raises(DataFormatError, match="no such file"):
        read_conll(tmp_path / "missing.txt")


def test_format_with_predictions_appends_a_column():
    corpus = parse_conll("a O\nb B-X\n")
    assert format_conll(corpus.sentences, [["O", "O"]]) == "a O O\nb B-X O\n\n"

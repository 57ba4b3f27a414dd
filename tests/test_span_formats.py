"""Issue #21, item 1: span JSONL (spaCy, Prodigy, doccano, flair) and Label Studio JSON, in and out,
wherever CoNLL works. Spans become token labels strictly (a span off the token boundaries is a
one-line error naming the file, the document and the offsets), and a round trip returns the same
text and spans: on real text, on random text (hypothesis), and against spaCy's own reader."""

import json
import string

import pytest
from conftest import MICRO_HP, invoke, keep_types, one_line_error, shared_file, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroner_tl import tags
from neuroner_tl.conll import read_conll
from neuroner_tl.corpus import Corpus
from neuroner_tl.errors import DataFormatError
from neuroner_tl.formats import detect_input_format, guess_input_format, load_corpus, load_documents
from neuroner_tl.jsonl import write_documents
from neuroner_tl.lines import LineSource
from neuroner_tl.spans import CharSpan, SpanDocument, TaggedDocument, tagged_documents
from neuroner_tl.tokenizer import split_sentences

TEXT = "Mario Rossi lives in Roma."
GOLD = [("Mario", "B-PER"), ("Rossi", "I-PER"), ("lives", "O"), ("in", "O"), ("Roma", "B-LOC"), (".", "O")]


def write_lines(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def labelled(corpus):
    return [list(zip(s.tokens, s.labels)) for s in corpus.sentences]


def spans_read(source):
    """(text, [(start, end, type)]) of each document of a span file, as the package reads it."""
    corpus, documents = load_documents(source)
    entity_lists = [tags.spans(s.labels) for s in corpus.sentences]
    return [(t.document.text, [(s.start, s.end, s.type) for s in t.spans])
            for t in tagged_documents(documents, corpus.sentences, entity_lists)]


# Reading each layout --------------------------------------------------------------------------------
@pytest.mark.parametrize("record", [
    {"text": TEXT, "spans": [{"start": 0, "end": 11, "label": "PER", "token_start": 0, "token_end": 1},
                             {"start": 21, "end": 25, "label": "LOC", "token_start": 4, "token_end": 4}]},  # Prodigy
    {"text": TEXT, "ents": [{"start": 0, "end": 11, "label": "PER"}, {"start": 21, "end": 25, "label": "LOC"}],
     "spans": {}, "tokens": []},  # spaCy's Doc.to_json(): "spans" holds span groups
    {"text": TEXT, "ents": [{"start": 0, "end": 11, "label": "PER", "text": "Mario Rossi"},
                            {"start": 21, "start_char": 21, "end": 25, "label": "LOC"}],
     "spans": {"sc": [{"start": 0, "end": 5, "label": "X"}]}, "label": None},  # keys that agree; span groups; null
    {"id": 3, "text": TEXT, "label": [[0, 11, "PER"], [21, 25, "LOC"]]},  # doccano
    {"text": TEXT, "labels": [[21, 25, "LOC"], [0, 11, "PER"]]},  # doccano, another version; any order
    {"data": TEXT, "label": [[0, 11, "PER"], [21, 25, "LOC"]], "metadata": {}},  # flair's JsonlDataset
    {"text": TEXT, "entities": [[0, 11, "PER"], [21, 25, "LOC"]]},  # spaCy training tuples
    {"text": TEXT, "entities": [{"id": 1, "label": "PER", "start_offset": 0, "end_offset": 11},
                                {"id": 2, "label": "LOC", "start_offset": 21, "end_offset": 25}],
     "relations": []},  # doccano with relations
])
def test_every_jsonl_layout_reads_the_same_labels(tmp_path, record):
    path = write_lines(tmp_path / "d.jsonl", [record])
    assert guess_input_format(path) == "jsonl"
    assert labelled(load_corpus(path)) == [GOLD]


def task(identifier, text, *annotations, data_key="text", **extra):
    return {"id": identifier, "data": {data_key: text, **extra}, "annotations": list(annotations), "predictions": []}


def annotation(*regions, to_name="text", **fields):
    result = [{"id": f"r{i}", "from_name": "label", "to_name": to_name, "type": "labels",
               "value": {"start": a, "end": b, "text": text, "labels": [kind]}} for i, (a, b, text, kind) in
              enumerate(regions)]
    return {"result": result, "was_cancelled": False, **fields}


def test_label_studio_export_takes_the_ground_truth_else_the_latest_annotation(tmp_path, capsys):
    per, loc = (0, 11, "Mario Rossi", "PER"), (21, 25, "Roma", "LOC")
    tasks = [
        task(1, TEXT, annotation(per, updated_at="2024-05-01T10:00:00Z"),
             annotation(per, loc, updated_at="2024-06-01T10:00:00Z"),
             {**annotation(loc, updated_at="2025-01-01T00:00:00Z"), "was_cancelled": True}),
        task(2, TEXT, annotation(per, loc, updated_at="2024-01-01T00:00:00Z", ground_truth=True),
             annotation(updated_at="2024-09-01T00:00:00Z")),
        task(3, "No entity here.", annotation()),
        task(4, "Nobody annotated this."),
        task(5, TEXT, annotation(per, loc, to_name="content"), data_key="content", source="mail"),
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks, indent=2), encoding="utf-8")
    assert guess_input_format(path) == "labelstudio"
    corpus = load_corpus(path)
    assert labelled(corpus) == [GOLD, GOLD, [("No", "O"), ("entity", "O"), ("here", "O"), (".", "O")], GOLD]
    err = capsys.readouterr().err
    assert "task 1 (id 1) has 2 annotations" in err and "1 of 5 documents are not annotated" in err
    assert "task 4 (id 4)" in err


def test_label_studio_json_min_export(tmp_path):
    path = tmp_path / "min.json"
    path.write_text(json.dumps([{"id": 1, "text": TEXT, "label": [
        {"start": 0, "end": 11, "text": "Mario Rossi", "labels": ["PER"]},
        {"start": 21, "end": 25, "text": "Roma", "labels": ["LOC"]}], "annotator": 1, "annotation_id": 3,
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "lead_time": 2.5}]))
    assert labelled(load_corpus(path)) == [GOLD]


def test_a_trailing_space_is_trimmed_with_a_warning_naming_the_document_and_offsets(tmp_path, capsys):
    path = write_lines(tmp_path / "t.jsonl", [{"id": "a", "text": TEXT, "label": [[0, 12, "PER"], [20, 25, "LOC"]]}])
    assert labelled(load_corpus(path)) == [GOLD]
    err = capsys.readouterr().err
    assert f"{path}:1: id a: span 0-12 (PER) 'Mario Rossi ' has whitespace at its ends: read as 0-11" in err
    assert "span 20-25 (LOC) ' Roma'" in err and "read as 21-25" in err


def test_label_studio_offsets_in_utf16_units_are_read_as_characters_with_a_warning(tmp_path, capsys):
    text = "🙂 Mario Rossi 🙂 lives in Roma."
    browser = lambda s: len(s.encode("utf-16-le")) // 2  # noqa: E731 (what JavaScript's length counts)
    start = browser(text[:text.index("Roma")])
    path = tmp_path / "emoji.json"
    path.write_text(json.dumps([task(1, text, annotation((2, 13, "Mario Rossi", "PER"), (start, start + 4, "Roma", "LOC")))]))
    assert spans_read(path) == [(text, [(2, 13, "PER"), (text.index("Roma"), text.index("Roma") + 4, "LOC")])]
    assert f"region {start}-{start + 4} (LOC) 'Roma' counts UTF-16 units" in capsys.readouterr().err


def test_unannotated_documents_and_prodigy_rejects_are_left_out_of_training_data(tmp_path, capsys):
    path = write_lines(tmp_path / "p.jsonl", [
        {"text": TEXT, "spans": [{"start": 0, "end": 11, "label": "PER"}, {"start": 21, "end": 25, "label": "LOC"}],
         "answer": "accept"},
        {"text": "Luigi Verdi", "spans": [{"start": 0, "end": 11, "label": "PER"}], "answer": "reject"},
        {"text": "Not annotated yet."}])
    assert labelled(load_corpus(path)) == [GOLD]
    err = capsys.readouterr().err
    assert "1 documents answered 'reject' or 'ignore' (Prodigy) are left out" in err
    assert "1 of 2 documents are not annotated and are left out (line 3)" in err


# Detection --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content,expected", [
    ('{"text": "Ciao Mario"}\n{"text": "Buongiorno"}\n', "jsonl"),
    ('\n{"data": "Ciao", "label": []}\n', "jsonl"),
    ('[\n  {\n    "id": 1,\n    "data": {"text": "Ciao"}\n  }\n]\n', "labelstudio"),
    ('[{"data": {"text": "Ciao"}}]', "labelstudio"),
    ("[Music] Ciao Mario, come stai?\n", "text"),
    ("{Mario} saluta.\n", "text"),
    ("Mario B-PER\nRossi I-PER\nè O\n", "conll"),
])
def test_formats_are_recognised_by_content_on_standard_input_and_any_suffix(tmp_path, content, expected):
    import io

    with LineSource("-", stream=io.BytesIO(content.encode())) as lines:
        assert detect_input_format(lines) == expected
    path = tmp_path / "data.txt"
    path.write_text(content)
    assert guess_input_format(path) == expected


# Mistakes: one line naming the file, the document and the offsets --------------------------------------
def test_a_span_off_the_token_boundaries_is_an_error_naming_file_line_and_offsets(micro_model, tmp_path):
    good = {"text": TEXT, "label": [[0, 11, "PER"]]}
    path = write_lines(tmp_path / "bad.jsonl", [good, {"id": 9, "text": TEXT, "label": [[0, 11, "PER"], [21, 24, "LOC"]]}])
    one_line_error(*invoke("evaluate", micro_model, path),
                   f"{path}:2: id 9: span 21-24 (LOC) 'Rom' ends inside the token 'Roma' (21-25)")
    path = write_lines(tmp_path / "bad2.jsonl", [{"text": TEXT, "label": [[1, 11, "PER"]]}])
    one_line_error(*invoke("evaluate", micro_model, path), f"{path}:1: span 1-11 (PER) 'ario Rossi' starts inside "
                                                           f"the token 'Mario' (0-5)")


def test_a_label_studio_error_names_the_task_and_its_id(micro_model, tmp_path):
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([task(1, TEXT, annotation()), task(77, TEXT, annotation((21, 24, "Rom", "LOC")))]))
    one_line_error(*invoke("evaluate", micro_model, path), f"{path}: task 2 (id 77): span 21-24 (LOC) 'Rom' ends inside")
    path.write_text(json.dumps([task(5, TEXT, annotation((21, 25, "Rome", "LOC")))]))
    one_line_error(*invoke("evaluate", micro_model, path), "task 1 (id 5): region 21-25 (LOC) says its text is 'Rome', "
                                                           "but the task's text there is 'Roma'")


@pytest.mark.parametrize("records,expected", [
    ([{"text": TEXT, "spans": [{"start": 0, "end": 11, "label": "PER"}, {"start": 6, "end": 25, "label": "ORG"}]}],
     ":1: span 6-25 (ORG) 'Rossi lives in Roma' overlaps span 0-11 (PER) 'Mario Rossi'"),
    ([{"text": TEXT, "label": [[0, 40, "PER"]]}], ":1: span 0-40 (PER) falls outside the text (26 characters)"),
    ([{"text": TEXT, "label": [[5, 6, "PER"]]}], ":1: span 5-6 (PER) covers only whitespace"),
    ([{"text": TEXT, "label": [[0, 5, "B-PER"]]}], ":1: span 0-5: entity type 'B-PER' cannot be used as a label"),
    ([{"text": TEXT, "label": [[0, "5", "PER"]]}], ":1: span offsets must be whole numbers"),
    ([{"text": TEXT, "label": [[0, 5]]}], ":1: an entity is [start, end, \"TYPE\"]"),
    ([{"text": TEXT, "label": []}, {"text": TEXT, "spans": []}], ":2: entities under 'spans', but the file's first "
                                                                 "annotated document has them under 'label'"),
    ([{"text": TEXT, "label": []}, {"txt": TEXT}], ":2: a document needs its text as \"text\""),
])
def test_span_mistakes_are_one_line_naming_the_line(tmp_path, records, expected):
    path = write_lines(tmp_path / "bad.jsonl", records)
    with pytest.raises(DataFormatError) as raised:
        load_corpus(path)
    assert f"{path}{expected}" in str(raised.value) and "\n" not in str(raised.value)


def test_a_line_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "Ciao", "label": []}\n{"text": "Mario", "label": [[0, 5, "PER"]]\n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2: not a JSON object \(Expecting ',' delimiter"):
        load_corpus(path)


def test_an_exact_duplicate_span_counts_once(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [{"text": TEXT, "label": [[0, 11, "PER"], [21, 25, "LOC"], [0, 11, "PER"]]}])
    assert labelled(load_corpus(path)) == [GOLD]


def test_an_entity_across_the_splitters_sentence_boundary_keeps_its_sentence_whole(tmp_path):
    text = "I met Mr. Smith. Then I left."
    path = write_lines(tmp_path / "mr.jsonl", [{"text": text, "label": [[6, 15, "PER"]]}])
    assert [s.tokens for s in load_corpus(path).sentences] == [["I", "met", "Mr", ".", "Smith", "."],
                                                              ["Then", "I", "left", "."]]
    assert spans_read(path) == [(text, [(6, 15, "PER")])]


# Round trips ------------------------------------------------------------------------------------------
def documents_from_conll(corpus: Corpus, per_document: int = 5):
    """CoNLL sentences as documents of a few sentences each: tokens joined by a space, sentences by a
    line break, entities as character spans. ([(text, [(start, end, type)])])"""
    documents = []
    for first in range(0, len(corpus.sentences), per_document):
        text, spans = "", []
        for sentence in corpus.sentences[first:first + per_document]:
            starts = []
            for token in sentence.tokens:
                starts.append(len(text))
                text += token + " "
            for span in tags.spans(sentence.labels):
                spans.append((starts[span.start], starts[span.end - 1] + len(sentence.tokens[span.end - 1]),
                              span.type))
            text = text[:-1] + "\n"
        documents.append((text, spans))
    return documents


def round_trip(tmp_path, documents):
    """Write ``documents`` as span JSONL with the package's writer, read them back, write again: the
    (text, spans) read, and whether the second file is the first byte for byte."""
    first = tmp_path / "first.jsonl"
    tagged = [TaggedDocument(SpanDocument(str(i), text, fields={"id": i}), [CharSpan(k, a, b) for a, b, k in spans])
              for i, (text, spans) in enumerate(documents)]
    with open(first, "w", encoding="utf-8") as stream:
        write_documents(tagged, stream)
    corpus, read = load_documents(first)
    again = tmp_path / "again.jsonl"
    with open(again, "w", encoding="utf-8") as stream:
        write_documents(tagged_documents(read, corpus.sentences, [tags.spans(s.labels) for s in corpus.sentences]),
                        stream)
    return spans_read(first), first.read_bytes() == again.read_bytes()


@pytest.mark.parametrize("relative", ["conll2003/valid.txt", "wnut17/test.conll"])
def test_round_trip_on_real_text_returns_the_same_text_and_spans(tmp_path, relative):
    corpus = read_conll(shared_file(relative)).converted("IOB2")
    documents = documents_from_conll(Corpus(corpus.sentences[:200], "IOB2"))
    assert sum(len(spans) for _, spans in documents) > 150
    read, identical = round_trip(tmp_path, documents)
    assert read == [(text, sorted(spans)) for text, spans in documents]
    assert identical


WORDS = ["Roma", "città", "naïve", "Straße", "Ελλάδα", "東京", "Москва", "l'Italia", "e-mail", "3,5", "U.S.", "Mr.",
         "New", "York", "क्षत्रिय", "🙂", "!", ",", ".", "?", "(", ")", "«", "»", "mario@posta.it", "O'Neil", "ok"]
SEPARATORS = [" ", " ", " ", "  ", "\n", " \t", "\u00a0", "\n\n"]


@st.composite
def documents_with_token_spans(draw):
    """A text of random words and separators, and random non-overlapping spans on its tokens (which
    may run across a line break, where the splitter ends a sentence)."""
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=25))
    text = draw(st.sampled_from(["", " ", "\n"]))
    for word in words:
        text += word + draw(st.sampled_from(SEPARATORS))
    tokens = [token for sentence in split_sentences(text) for token in sentence]
    cuts = sorted(set(draw(st.lists(st.integers(0, len(tokens)), max_size=10))))
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        if draw(st.booleans()):
            spans.append((tokens[start][1], tokens[end - 1][2], draw(st.sampled_from(["PER", "LOC", "Org-Unit"]))))
    return text, spans


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents_with_token_spans())
def test_property_token_aligned_spans_survive_the_round_trip(tmp_path, document):
    read, identical = round_trip(tmp_path, [document])
    assert read == [document] and identical
    assert label_studio_round_trip(tmp_path, document) == [document]


def written_tasks(tmp_path, *tagged):
    """The pre-annotations the package writes for ``tagged`` documents, as JSON."""
    from neuroner_tl.labelstudio import write_tasks

    out = tmp_path / "tasks.json"
    with open(out, "w", encoding="utf-8") as stream:
        write_tasks(tagged, stream, "m@1")
    return json.loads(out.read_text(encoding="utf-8"))


def label_studio_round_trip(tmp_path, document):
    """Pre-annotations of ``document`` written, every proposal accepted (the prediction's result
    becomes the annotation's, as Label Studio does on submit), the export read back."""
    text, spans = document
    tasks = written_tasks(tmp_path, TaggedDocument(SpanDocument("1", text), [CharSpan(k, a, b, 0.5) for a, b, k in spans]))
    for one in tasks:
        one["annotations"] = [{"result": one.pop("predictions")[0]["result"], "was_cancelled": False}]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks), encoding="utf-8")
    return spans_read(export)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=string.ascii_letters[:6] + " .,\n'-é🙂", max_size=30),
       spans=st.lists(st.tuples(st.integers(-1, 32), st.integers(-1, 32), st.sampled_from(["PER", "LOC"])), max_size=4))
def test_property_any_spans_are_read_exactly_or_refused_naming_file_and_line(tmp_path, text, spans):
    path = write_lines(tmp_path / "r.jsonl", [{"text": "x", "label": []}, {"text": text, "label": spans}])
    try:
        read = spans_read(path)
    except DataFormatError as error:
        assert str(error).startswith(f"{path}:2: ") and "\n" not in str(error)
        return
    wanted = sorted({(a + len(text[a:b]) - len(text[a:b].lstrip()), b - len(text[a:b]) + len(text[a:b].rstrip()), k)
                     for a, b, k in spans})
    assert read[1] == (text, wanted)


def test_label_studio_pre_annotations_keep_the_data_and_scores_and_read_back(tmp_path):
    text = "Il sig. Mario Rossi abita a Roma.\nChiamare 🙂 Luigi Verdi."
    spans = [CharSpan("PER", 8, 19, 0.93), CharSpan("LOC", 28, 32, 0.5), CharSpan("PER", 45, 56)]
    tasks = written_tasks(tmp_path, TaggedDocument(SpanDocument("1", text, fields={"source": "chat"}), spans, 0.41))
    check_pre_annotations(tasks)
    regions = tasks[0]["predictions"][0]["result"]
    assert [(r["value"]["text"], r.get("score")) for r in regions] == [("Mario Rossi", 0.93), ("Roma", 0.5),
                                                                       ("Luigi Verdi", None)]
    assert tasks[0]["data"] == {"text": text, "source": "chat"} and tasks[0]["predictions"][0]["score"] == 0.41
    document = (text, [(s.start, s.end, s.type) for s in spans])
    assert label_studio_round_trip(tmp_path, document) == [document]


# Label Studio's pre-annotation format, as its SDK describes it (label_studio_sdk 2.1: PredictionRequest
# and LabelsTag.to_json_schema). The SDK itself is not a test extra: it pins numpy 2.2 and pulls in
# opencv, pandas and nltk, far too heavy for one reference check.
REGION_VALUE = {"type": "object", "required": ["start", "end", "labels"],
                "properties": {"start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0},
                               "labels": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                               "text": {"type": "string"}}}
PRE_ANNOTATIONS = {
    "type": "array", "items": {
        "type": "object", "required": ["data", "predictions"],
        "properties": {
            "data": {"type": "object"},
            "predictions": {"type": "array", "items": {
                "type": "object", "required": ["result"],
                "properties": {
                    "model_version": {"type": "string"},
                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                    "result": {"type": "array", "items": {
                        "type": "object", "required": ["id", "from_name", "to_name", "type", "value"],
                        "properties": {"id": {"type": "string"}, "from_name": {"type": "string"},
                                       "to_name": {"type": "string"}, "type": {"const": "labels"},
                                       "value": REGION_VALUE,
                                       "score": {"type": "number", "minimum": 0, "maximum": 1}}}}}}}}}}


def check_pre_annotations(tasks):
    """Valid pre-annotations: the schema, and each region's text is the task's text at its offsets."""
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(tasks, PRE_ANNOTATIONS)
    for one in tasks:
        for prediction in one["predictions"]:
            for region in prediction["result"]:
                value = region["value"]
                assert one["data"][region["to_name"]][value["start"]:value["end"]] == value["text"]


# spaCy as the reference reader and writer -------------------------------------------------------------
def test_spacy_docs_read_as_jsonl_give_spacys_entities_and_ours_align_with_its_tokens(tmp_path):
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    documents = documents_from_conll(Corpus(read_conll(shared_file("conll2003/valid.txt")).converted("IOB2")
                                            .sentences[:100], "IOB2"))
    docs = []
    for text, spans in documents:
        doc = nlp(text)
        doc.ents = [doc.char_span(a, b, label=k, alignment_mode="strict") for a, b, k in spans]
        docs.append(doc)
    stored = DocBin(docs=docs).to_bytes()
    again = list(DocBin().from_bytes(stored).get_docs(nlp.vocab))
    path = write_lines(tmp_path / "spacy.jsonl", [doc.to_json() for doc in again])
    expected = [(doc.text, [(e.start_char, e.end_char, e.label_) for e in doc.ents]) for doc in again]
    assert spans_read(path) == expected

    read, _ = round_trip(tmp_path, documents)  # our JSONL, loaded into spaCy: every span on its tokens
    for text, spans in read:
        doc = nlp(text)
        assert all(doc.char_span(a, b, label=k, alignment_mode="strict") is not None for a, b, k in spans)


# The commands ---------------------------------------------------------------------------------------------
def conll_as_jsonl(corpus, path, layout="label"):
    """Each sentence a document (tokens joined by spaces), written by hand as doccano would."""
    records = []
    for number, (text, spans) in enumerate(documents_from_conll(corpus, per_document=1)):
        records.append({"id": number, "text": text.rstrip("\n"), layout: [list(span) for span in spans]})
    return write_lines(path, records)


def same_sentences_when_retokenized(corpus):
    """The sentences our splitter reads back as one sentence with the same tokens."""
    return Corpus([s for s in corpus.sentences
                   if [[t[0] for t in x] for x in split_sentences(" ".join(s.tokens))] == [s.tokens]], corpus.scheme)


def test_evaluate_on_jsonl_gives_the_f1_of_the_same_conll(micro_model, micro_data, tmp_path):
    from neuroner_tl.conll import write_conll

    sentences = [s for split in ("train", "dev", "test") for s in load_corpus(micro_data[split]).sentences]
    corpus = same_sentences_when_retokenized(Corpus(sentences, "IOB2"))
    assert len(corpus) >= 15
    conll = tmp_path / "same.conll"
    write_conll(conll, corpus.sentences)
    jsonl = conll_as_jsonl(corpus, tmp_path / "same.jsonl")
    reports = []
    for path in (conll, jsonl):
        code, output = invoke("evaluate", micro_model, path, "--json")
        assert code == 0, output
        reports.append(json.loads(output))
    assert reports[0] == reports[1] and reports[0]["overall"]["gold"] > 10


def test_train_on_a_tiny_jsonl(micro_data, tmp_path):
    """In memory (saving a model folder is train's own business, tested elsewhere): the JSONL's
    sentences and types are what the model learns."""
    from neuroner_tl import api
    from neuroner_tl.config import Hyperparameters

    corpus = load_corpus(micro_data["train"])
    train = conll_as_jsonl(corpus, tmp_path / "train.jsonl", layout="entities")
    result = api.train(train, None, hp=Hyperparameters(**MICRO_HP), verbose=False)
    assert result.tagger.entity_types == corpus.entity_types()
    assert result.tagger.provenance["trained_on"][0]["path"] == str(train.resolve())


def test_predict_jsonl_keeps_the_documents_fields_and_scores_every_span(micro_model, tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [
        {"id": "a1", "text": "Buongiorno, sono Mario Rossi. Il mio numero è 3331234567.", "meta": {"channel": "chat"},
         "_task_hash": 12, "answer": "accept", "spans": []},
        {"id": "a2", "text": "Abito in via Roma 3, Milano.\nGrazie."}])
    out = tmp_path / "out.jsonl"
    code, output = invoke("predict", micro_model, source, "--format", "jsonl", "-o", out)
    assert code == 0, output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["meta"] if "meta" in r else None) for r in records] == [("a1", {"channel": "chat"}),
                                                                                ("a2", None)]
    originals = [json.loads(line) for line in source.read_text().splitlines()]
    assert [r["text"] for r in records] == [r["text"] for r in originals]
    assert all("_task_hash" not in r and "answer" not in r and 0 <= r["score"] <= 1 for r in records)
    assert any(r["spans"] for r in records)  # the micro model proposes plenty: the checks below are not empty
    for record in records:
        for span in record["spans"]:
            piece = record["text"][span["start"]:span["end"]]
            assert piece and piece == piece.strip() and 0 <= span["score"] <= 1
    code, output = invoke("predict", micro_model, "-", "--format", "jsonl", input=source.read_text())
    assert code == 0 and [json.loads(line) for line in output.splitlines()] == records


def test_predict_label_studio_pre_annotations_from_raw_text_a_task_a_line(micro_model, tmp_path):
    source = tmp_path / "chats.txt"
    source.write_text("Buongiorno, sono Mario Rossi.\n\nIl mio numero è 3331234567, abito a Milano.\n")
    out = tmp_path / "tasks.json"
    code, output = invoke("predict", micro_model, source, "--format", "labelstudio", "-o", out)
    assert code == 0, output
    tasks = json.loads(out.read_text())
    check_pre_annotations(tasks)
    assert [t["data"]["text"] for t in tasks] == ["Buongiorno, sono Mario Rossi.",
                                                  "Il mio numero è 3331234567, abito a Milano."]
    assert all(t["predictions"][0]["model_version"].startswith("model@") for t in tasks)
    assert any(t["predictions"][0]["result"] for t in tasks)
    code, again = invoke("predict", micro_model, out, "--format", "jsonl")  # the tasks, read as input
    assert code == 0 and [json.loads(line)["text"] for line in again.splitlines()] == [t["data"]["text"] for t in tasks]


def test_annotate_writes_label_studio_pre_annotations_keeping_the_annotated_spans(micro_model, micro_data, tmp_path):
    target_corpus = keep_types(load_corpus(micro_data["train"]), {"Phone"})
    target = conll_as_jsonl(target_corpus, tmp_path / "target.jsonl")
    gold = [(text, [s for s in spans]) for text, spans in spans_read(target)]
    out = tmp_path / "review.json"
    before = snapshot(tmp_path)
    code, output = invoke("annotate", micro_model, target, "-e", "Phone", "-o", out)
    assert code == 0, output
    tasks = json.loads(out.read_text())
    check_pre_annotations(tasks)
    assert [t["data"]["text"] for t in tasks] == [text for text, _ in gold]
    for one, (_, spans) in zip(tasks, gold):
        regions = one["predictions"][0]["result"]
        kept = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in regions if "score" not in r]
        assert kept == spans  # the annotated Phone spans, as annotated, without a model score
        assert all(r["value"]["labels"][0] != "Phone" for r in regions if "score" in r)
        assert 0 <= one["predictions"][0]["score"] <= 1
    assert {p: b for p, b in snapshot(tmp_path).items() if p.name != "review.json"} == before
    code, output = invoke("annotate", micro_model, target, "-e", "Phone", "-o", target, "--force",
                          "--format", "labelstudio")
    one_line_error(code, output, "is an input")


def test_update_from_a_label_studio_export(micro_model, micro_data, tmp_path):
    """The customer's loop closed: annotate to Label Studio, every proposal accepted there and
    exported, update on the export (in memory, one epoch)."""
    from neuroner_tl import api

    target = conll_as_jsonl(keep_types(load_corpus(micro_data["train"]), {"Phone"}), tmp_path / "target.jsonl")
    review = tmp_path / "review.json"
    assert invoke("annotate", micro_model, target, "-e", "Phone", "-o", review)[0] == 0
    tasks = json.loads(review.read_text())
    for one in tasks:
        one["annotations"] = [{"result": one.pop("predictions")[0]["result"], "was_cancelled": False}]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    as_conll = tmp_path / "review.conll"
    assert invoke("annotate", micro_model, target, "-e", "Phone", "-o", as_conll)[0] == 0
    assert labelled(load_corpus(export)) == labelled(load_corpus(as_conll))  # what Label Studio sent back is annotate's
    result = api.update(micro_model, export, ["Phone"], None, annotated=True, max_epochs=1, verbose=False)
    assert result.tagger.entity_types == api.as_tagger(micro_model).entity_types
    assert result.tagger.provenance["updates"][-1]["target"]["path"] == str(export.resolve())


# Shape mistakes are one line naming the file, the line (or task) and the field, read for training and
# evaluation (``load_corpus``) and for prediction (``read_for_prediction``) alike -----------------------
def read_both_ways(path, input_format):
    """The error of reading ``path`` as evaluate reads it and as predict reads it: the same one line."""
    from neuroner_tl.prediction import read_for_prediction

    with pytest.raises(DataFormatError) as for_evaluation:
        load_corpus(path)
    with LineSource(path) as lines, pytest.raises(DataFormatError) as for_prediction:
        read_for_prediction(lines, input_format, "jsonl")
    assert str(for_evaluation.value) == str(for_prediction.value) and "\n" not in str(for_evaluation.value)
    return str(for_evaluation.value)


MERKEL = "Angela Merkel visited Paris."


@pytest.mark.parametrize("record,expected", [
    ({"text": MERKEL, "spans": [{"start": 0, "end": 13, "label": "PER"}], "label": [[22, 27, "LOC"]]},
     ": entities under both 'spans' and 'label'"),
    ({"text": MERKEL, "spans": {"start": 0, "end": 13, "label": "PER"}}, ": 'spans' holds an object, not a list"),
    ({"text": MERKEL, "label": "PER"}, ": 'label' holds a string, not a list of entities"),
    ({"text": MERKEL, "ents": 3}, ": 'ents' holds a number, not a list of entities"),
    ({"id": 7, "text": MERKEL, "spans": [{"start": 0, "end": 13, "label": "PER", "text": "Angela Merke"}]},
     ": id 7: span 0-13 (PER) says its text is 'Angela Merke', but the document's text there is 'Angela Merkel'"),
    ({"text": MERKEL, "entities": [{"start": 0, "start_offset": 7, "end": 13, "label": "PER"}]},
     ": a span has 'start' 0 and 'start_offset' 7: which is meant?"),
    ({"text": MERKEL, "spans": [{"start": 0, "end": 13, "label": "PER", "type": "ORG"}]},
     ": a span has 'label' \"PER\" and 'type' \"ORG\""),
    ({"text": MERKEL, "data": "Angela Merkel", "label": []}, ": both 'text' and 'data' hold a string"),
    ({"text": ["Angela", "Merkel"], "label": []}, ": a document needs its text as \"text\" (a string); 'text' "
                                                  "holds a list"),
])
def test_span_jsonl_shape_mistakes_are_one_line_naming_the_line_and_field(tmp_path, record, expected):
    path = write_lines(tmp_path / "bad.jsonl", [{"text": TEXT}, record])
    assert f"{path}:2{expected}" in read_both_ways(path, "jsonl")


def ls_file(tmp_path, content):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.mark.parametrize("content,expected", [
    ([task(1, TEXT, annotation()), {"id": 8, "data": TEXT, "annotations": [annotation((0, 11, "Mario Rossi", "PER"))]}],
     "task 2 (id 8): \"data\" holds a string, not an object"),
    ([task(3, TEXT, "accepted")], "task 1 (id 3): an annotation holds a string, not an object"),
    ([task(3, TEXT, {"result": [["labels", 0, 11]]})], "task 1 (id 3): a result holds a list, not a region object"),
    ([task(3, TEXT, {"result": annotation((0, 11, "Mario Rossi", "PER"))["result"]
                     + annotation((21, 25, "Roma", "LOC"), to_name="title")["result"]}, title="Roma")],
     "task 1 (id 3): regions on two texts ('text' and 'title')"),
    ([{"id": 4, "text": TEXT, "label": [{"start": 0, "end": 11, "labels": ["PER"]}],
       "place": [{"start": 21, "end": 25, "labels": ["LOC"]}]}], "task 1 (id 4): regions under both 'label' and "
                                                                 "'place'"),
])
def test_label_studio_shape_mistakes_are_one_line_naming_the_task_and_field(tmp_path, content, expected):
    path = ls_file(tmp_path, content)
    assert f"{path}: {expected}" in read_both_ways(path, "labelstudio")


def test_a_label_studio_region_without_a_type_but_with_labels_is_an_entity(tmp_path):
    one = task(1, TEXT, annotation((0, 11, "Mario Rossi", "PER"), (21, 25, "Roma", "LOC")))
    for region in one["annotations"][0]["result"]:
        del region["type"]
    assert labelled(load_corpus(ls_file(tmp_path, [one]))) == [GOLD]


@pytest.mark.parametrize("indent", [None, 2])
def test_one_label_studio_task_object_is_one_task_on_standard_input_and_any_suffix(tmp_path, indent):
    """Label Studio's import takes one task object as one task: so does every reader here."""
    import io

    from neuroner_tl.prediction import read_for_prediction

    one = task(9, TEXT, annotation((0, 11, "Mario Rossi", "PER"), (21, 25, "Roma", "LOC")))
    content = json.dumps(one, indent=indent)
    for name in ("task.json", "task.txt"):
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        assert guess_input_format(path) == "labelstudio"
        assert labelled(load_corpus(path)) == [GOLD]
    with LineSource("-", stream=io.BytesIO(content.encode())) as lines:
        assert detect_input_format(lines) == "labelstudio"
        sentences, documents = read_for_prediction(lines, "labelstudio", "jsonl")
    assert [(d.text, d.spans, d.identity) for d in documents] == [(TEXT, [CharSpan("PER", 0, 11), CharSpan("LOC", 21, 25)],
                                                                   {"id": 9})]


# A task's id and meta stay with it: Label Studio and JSONL output, whichever the input -------------------
def test_predict_keeps_each_tasks_id_meta_and_data_and_makes_region_ids_of_the_task_id(micro_model, tmp_path):
    tasks = [{**task(41, "Buongiorno, sono Mario Rossi.", annotation(), source="chat"), "meta": {"batch": 3}},
             {**task(17, "Il mio numero è 3331234567, abito a Milano."), "meta": {"batch": 4}}]
    export = ls_file(tmp_path, tasks)
    out = tmp_path / "pre.json"
    code, output = invoke("predict", micro_model, export, "--format", "labelstudio", "-o", out)
    assert code == 0, output
    written = json.loads(out.read_text())
    check_pre_annotations(written)
    assert [(t["id"], t["meta"], t["data"]) for t in written] == [(t["id"], t["meta"], t["data"]) for t in tasks]
    regions = [(t["id"], r["id"]) for t in written for r in t["predictions"][0]["result"]]
    assert regions and all(region.startswith(f"{identifier}_") for identifier, region in regions)
    code, output = invoke("predict", micro_model, export, "--format", "jsonl")
    assert code == 0, output
    records = [json.loads(line) for line in output.splitlines()]
    assert [(r["id"], r["meta"], r.get("source")) for r in records] == [(41, {"batch": 3}, "chat"), (17, {"batch": 4}, None)]


def test_jsonl_ids_and_meta_become_the_tasks_own_when_label_studio_can_hold_them(micro_model, tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [{"id": 5, "text": "Sono Mario Rossi.", "meta": {"channel": "chat"}},
                                                 {"id": "a2", "text": "Abito a Milano.", "meta": "mail"}])
    out = tmp_path / "tasks.json"
    code, output = invoke("predict", micro_model, source, "--format", "labelstudio", "-o", out)
    assert code == 0, output
    written = json.loads(out.read_text())
    check_pre_annotations(written)
    assert (written[0]["id"], written[0]["meta"], written[0]["data"]) == (5, {"channel": "chat"},
                                                                          {"text": "Sono Mario Rossi."})
    assert "id" not in written[1] and "meta" not in written[1]  # Label Studio's task id is a number, its meta an object
    assert written[1]["data"] == {"id": "a2", "meta": "mail", "text": "Abito a Milano."}
    assert all(r["id"].startswith(f"{one_id}_") for one, one_id in zip(written, (5, "a2"))
               for r in one["predictions"][0]["result"])


def test_region_ids_fall_back_to_the_position_when_the_task_id_is_no_id(tmp_path):
    spans = [CharSpan("PER", 0, 11, 0.9)]
    tasks = written_tasks(tmp_path, TaggedDocument(SpanDocument("1", TEXT, identity={"id": None}), spans),
                          TaggedDocument(SpanDocument("2", TEXT, identity={"id": 12}), spans))
    assert [[r["id"] for r in t["predictions"][0]["result"]] for t in tasks] == [["1_1"], ["12_1"]]
    assert "id" not in tasks[0] and tasks[0]["data"]["id"] is None and tasks[1]["id"] == 12

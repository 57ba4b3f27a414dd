"""What raw text may hold, one rule at every entry point (``predict`` on raw text and on JSONL or
Label Studio text, ``api.tag``, ``serve``, the SavedModel's ``serve_text``): control characters
and invisible format characters (NUL, ESC, DEL, zero-width space, soft hyphen, byte-order mark,
bidirectional marks) separate tokens like a space and are never part of one, while offsets count
them as characters of the original text; a lone surrogate is no character and an error."""

import json
import re

import pytest
from conftest import asgi_request, invoke, served_tokens

from neuroner_tl import api
from neuroner_tl.errors import DataFormatError
from neuroner_tl.formats import load_corpus
from neuroner_tl.tokenizer import is_invisible, split_sentences, tokenize

INVISIBLE = "\x00\x01\x08\x0e\x1b\x7f\x80\x9f\u00ad\u200b\u200e\u202e\u2060\ufeff"
TEXTS = ["Angela\x00 Merkel visited\u200bParis.", "Buongiorno\x1b[0m, sono Mario\x7fRossi\ufeff.",
         "Il mio numero è\u00ad3331234567\u2060, abito a\u202eMilano\x01.", "\x00\x08\x9f", "Via Roma\u200e 3\x0e"]
SPACED = [re.sub(f"[{INVISIBLE}]", " ", text) for text in TEXTS]  # the same texts, a space for each


def token_triples(text):
    return [token for sentence in split_sentences(text) for token in sentence]


def entity_tuples(results):
    return [[(e["type"], e["start"], e["end"], e["text"]) for e in entities] for entities in results]


def test_the_invisible_characters_are_the_unicode_controls_and_format_characters_not_the_joiners():
    assert all(is_invisible(c) for c in INVISIBLE)
    assert not any(is_invisible(c) for c in "\t\n\r \u00a0\u200c\u200dAé1.")


def test_invisible_characters_separate_tokens_like_a_space_and_offsets_stay_the_texts():
    for text, spaced in zip(TEXTS, SPACED):
        assert token_triples(text) == token_triples(spaced)
        assert all(text[start:end] == token for token, start, end in tokenize(text))
        assert not any(is_invisible(c) for token, _, _ in tokenize(text) for c in token)
    assert [t[0] for t in tokenize("see https://x.it/a\x00b")] == ["see", "https://x.it/a", "b"]


def test_api_tag_and_serve_tag_as_if_each_invisible_character_were_a_space(micro_model):
    from neuroner_tl.serve import create_app

    tagger = api.load_tagger(micro_model)
    found, wanted = api.tag(tagger, TEXTS), api.tag(tagger, SPACED)
    assert sum(map(len, found)) > 3, "the test needs entities to compare"
    assert [[(t, a, b) for t, a, b, _ in one] for one in entity_tuples(found)] == \
        [[(t, a, b) for t, a, b, _ in one] for one in entity_tuples(wanted)]
    for text, entities in zip(TEXTS, found):
        for entity in entities:
            assert entity["text"] == text[entity["start"]:entity["end"]]
            assert not is_invisible(entity["text"][0]) and not is_invisible(entity["text"][-1])
    status, answer = asgi_request(create_app(micro_model), "POST", "/tag", {"texts": TEXTS})
    assert status == 200 and entity_tuples(answer["results"]) == entity_tuples(found)


def test_predict_raw_text_and_jsonl_tokens_are_the_same_as_with_spaces(micro_model, tmp_path):
    raw, spaced_raw = tmp_path / "chat.txt", tmp_path / "spaced.txt"
    raw.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    spaced_raw.write_text("\n".join(SPACED) + "\n", encoding="utf-8")
    outputs = []
    for source in (raw, spaced_raw):
        code, output = invoke("predict", micro_model, source, "--format", "json", "--input-format", "text")
        assert code == 0, output
        outputs.append([(r["tokens"], [(e["start"], e["end"], e["type"]) for e in r["entities"]])
                        for r in json.loads(output)])
    assert outputs[0] == outputs[1]
    records = tmp_path / "chat.jsonl"
    records.write_text("".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in enumerate(TEXTS)), encoding="utf-8")
    code, output = invoke("predict", micro_model, records, "--format", "jsonl")
    assert code == 0, output
    spans = [[(s["start"], s["end"], s["label"]) for s in json.loads(line)["spans"]] for line in output.splitlines()]
    assert spans == [[(e[1], e[2], e[0]) for e in one] for one in entity_tuples(api.tag(api.load_tagger(micro_model),
                                                                                     SPACED))]


def test_the_saved_models_serve_text_tokenizes_invisible_characters_as_the_package_does(micro_model):
    for text, spaced, found in zip(TEXTS, SPACED, served_tokens(micro_model, TEXTS)):
        assert found == token_triples(text) == token_triples(spaced), text


def test_an_annotated_span_ending_on_an_invisible_character_is_trimmed_like_a_space(tmp_path, capsys):
    path = tmp_path / "nul.jsonl"
    path.write_text(json.dumps({"text": TEXTS[0], "label": [[0, 7, "PER"], [22, 28, "LOC"]]}) + "\n")
    corpus = load_corpus(path)
    assert [list(zip(s.tokens, s.labels)) for s in corpus.sentences] == [
        [("Angela", "B-PER"), ("Merkel", "O"), ("visited", "O"), ("Paris", "B-LOC"), (".", "O")]]
    assert "span 0-7 (PER) 'Angela\\x00' has whitespace at its ends: read as 0-6" in capsys.readouterr().err


LONE = "Angela\ud800 Merkel"


def test_a_lone_surrogate_is_an_error_naming_the_file_and_line_or_the_text(micro_model, tmp_path):
    from neuroner_tl.serve import create_app

    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "Mario Rossi"}\n{"text": "Angela\\ud800 Merkel"}\n')
    with pytest.raises(DataFormatError, match=r"broken\.jsonl:2: a string holds a lone surrogate U\+D800 at character 6"):
        load_corpus(path)
    code, output = invoke("predict", micro_model, path, "--format", "jsonl")
    assert code == 2 and "broken.jsonl:2: a string holds a lone surrogate" in output.strip().splitlines()[-1], output
    export = tmp_path / "broken.json"
    export.write_text('[{"id": 3, "data": {"text": "ok"}}, {"id": 4, "data": {"text": "x", "note": "\\udc00"}}]')
    with pytest.raises(DataFormatError, match=r"broken\.json: task 2 \(id 4\): a string holds a lone surrogate U\+DC00"):
        load_corpus(export)
    with pytest.raises(DataFormatError, match="text 2 holds a lone surrogate U\\+D800 at character 6"):
        api.tag(api.load_tagger(micro_model), ["Mario", LONE])
    app = create_app(micro_model)
    for route, body in (("/tag", {"text": LONE}), ("/tag/tokens", {"tokens": [LONE.split()]})):
        status, answer = asgi_request(app, "POST", route, body)
        assert status == 422 and "lone surrogate U+D800" in answer["detail"], (route, status, answer)

"""Active learning (issue #29, item 3): the uncertainty measures against enumeration of every tag
sequence, on a toy CRF and on a trained model; the greedy choice (duplicates, near-duplicates);
``select`` in every input format, and its one-line errors."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from neuroner_tl import api, crf, selection
from neuroner_tl.batching import encode
from neuroner_tl.errors import NeuronerError
from neuroner_tl.labelstudio import read_documents as read_tasks
from neuroner_tl.predicted import SentenceDistribution
from neuroner_tl.selection import SelectionSettings

from conftest import enumerated_probabilities, invoke, one_line_error, random_case


# The measures by hand and on a toy CRF ---------------------------------------------------------
def test_each_measure_by_hand_with_every_label_and_with_one_type():
    # labels O, B-A, I-A, B-B; the path: O then B-A
    marginals = np.array([[0.5, 0.1, 0.0, 0.4],
                          [0.2, 0.7, 0.1, 0.0]])
    distribution = SentenceDistribution(np.array([0, 1]), math.log(0.3), marginals)
    every = np.ones(4, bool)
    entropy = -(0.5 * math.log(0.5) + 0.1 * math.log(0.1) + 0.4 * math.log(0.4)) \
        - (0.2 * math.log(0.2) + 0.7 * math.log(0.7) + 0.1 * math.log(0.1))
    assert selection.sentence_total(distribution, every, "entropy") == pytest.approx(entropy)
    assert selection.sentence_total(distribution, every, "changes") == pytest.approx(0.5 + 0.3)
    assert selection.sentence_total(distribution, every, "least-confidence") == pytest.approx(-math.log(0.3))
    # only type A counts: O and B-B are one class "not A"
    only_a = selection.kept_labels(["O", "B-A", "I-A", "B-B"], ["A"])
    assert only_a.tolist() == [False, True, True, False]
    np.testing.assert_allclose(selection.collapsed(marginals, only_a), [[0.1, 0.0, 0.9], [0.7, 0.1, 0.2]])
    collapsed_entropy = -(0.1 * math.log(0.1) + 0.9 * math.log(0.9)) \
        - (0.7 * math.log(0.7) + 0.1 * math.log(0.1) + 0.2 * math.log(0.2))
    assert selection.sentence_total(distribution, only_a, "entropy") == pytest.approx(collapsed_entropy)
    assert selection.sentence_total(distribution, only_a, "changes") == pytest.approx(0.1 + 0.3)


def test_item_scores_divide_by_tokens_or_not():
    assert selection.item_score([1.0, 2.0], [2, 4], "item") == 3.0
    assert selection.item_score([1.0, 2.0], [2, 4], "token") == 0.5
    assert selection.item_score([], [], "token") == 0.0


def enumerate_case(inputs, length, transitions, start, end):
    """(sequences, probabilities, marginals [T, C]) of one example by enumeration."""
    sequences, probabilities = enumerated_probabilities(inputs, length, transitions, start, end)
    marginals = np.zeros((length, inputs.shape[1]))
    for sequence, probability in zip(sequences, probabilities):
        marginals[np.arange(length), list(sequence)] += probability
    return sequences, probabilities, marginals


def projection(sequence, kept):
    return tuple(tag if kept[tag] else -1 for tag in sequence)


@pytest.mark.parametrize("seed", range(4))
def test_the_kept_labels_log_likelihood_is_the_enumerated_probability_of_their_places(seed):
    inputs, transitions, lengths, start, end = random_case(seed, batch=3, time=4, tags=4)
    lengths = np.maximum(lengths, 1)
    tags, _ = crf.crf_decode(inputs, transitions, lengths, start, end)
    for kept in ([True] * 4, [False, True, True, False], [False, False, False, True], [False] * 4):
        got = crf.crf_projected_log_likelihood(inputs, tags, np.array(kept), lengths, transitions, start, end).numpy()
        for b, length in enumerate(lengths):
            sequences, probabilities, _ = enumerate_case(inputs[b], length, transitions, start, end)
            path = projection(tags.numpy()[b, :length], kept)
            expected = sum(p for s, p in zip(sequences, probabilities) if projection(s, kept) == path)
            assert got[b] == pytest.approx(math.log(expected), abs=1e-4), (kept, b)
    # every label kept: the path's own log-likelihood
    likelihood, _ = crf.crf_log_likelihood(inputs, tags, lengths, transitions, start, end)
    every = crf.crf_projected_log_likelihood(inputs, tags, np.ones(4, bool), lengths, transitions, start, end)
    np.testing.assert_allclose(every.numpy(), likelihood.numpy(), atol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_the_three_measures_on_a_toy_crf_equal_enumeration(seed):
    inputs, transitions, lengths, start, end = random_case(seed, batch=2, time=4, tags=3)
    lengths = np.maximum(lengths, 1)
    tags, _ = crf.crf_decode(inputs, transitions, lengths, start, end)
    marginals = tf.exp(crf.crf_log_marginals(inputs, lengths, transitions, start, end)).numpy()
    every = np.ones(3, bool)
    kept_log_likelihood = crf.crf_projected_log_likelihood(inputs, tags, every, lengths, transitions, start, end)
    for b, length in enumerate(lengths):
        sequences, probabilities, enumerated = enumerate_case(inputs[b], length, transitions, start, end)
        path = tags.numpy()[b, :length]
        distribution = SentenceDistribution(path, float(kept_log_likelihood[b]), marginals[b, :length])
        entropy = -np.sum(enumerated * np.log(np.where(enumerated > 0, enumerated, 1)))
        changes = np.sum(1 - enumerated[np.arange(length), path])
        assert selection.sentence_total(distribution, every, "entropy") == pytest.approx(entropy, abs=1e-4)
        assert selection.sentence_total(distribution, every, "changes") == pytest.approx(changes, abs=1e-4)
        assert selection.sentence_total(distribution, every, "least-confidence") == \
            pytest.approx(-math.log(probabilities.max()), abs=1e-4)


# The measures on a trained model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def tagger(micro_model):
    return api.load_tagger(micro_model)


def calibrated_parts(tagger):
    """(label transitions, start, end) as the tagger's CRF scores them: constrained, over its temperature."""
    layer = tagger.crf
    count = len(tagger.labels)
    matrix = layer.transitions.numpy() / layer.temperature.numpy()
    matrix = np.where(layer.allowed_transitions, matrix, crf.NEG_INF)
    return matrix[:count, :count], matrix[count, :count], matrix[:count, count + 1]


def test_the_tagger_scores_a_sentence_as_enumeration_of_its_crf_does(tagger):
    tokens = ["Mario", "Rossi", "chiama"]
    [item] = encode([tokens], tagger.encoder)
    potentials = tagger.potentials_function()(item.words[None].astype(np.int32), _chars(item)).numpy()[0]
    potentials = potentials / tagger.temperature
    transitions, start, end = calibrated_parts(tagger)
    sequences, probabilities, marginals = enumerate_case(potentials, 3, transitions, start, end)
    address = selection.kept_labels(tagger.labels, ["Address"])
    for kept in (np.ones(len(tagger.labels), bool), address):
        [distribution] = tagger.predict_distributions([item], kept)
        best = sequences[int(np.argmax(probabilities))]
        assert tuple(distribution.tag_ids) == best
        np.testing.assert_allclose(distribution.marginals, marginals, atol=1e-4)
        expected = sum(p for s, p in zip(sequences, probabilities) if projection(s, kept) == projection(best, kept))
        assert distribution.kept_log_likelihood == pytest.approx(math.log(expected), abs=1e-4)


def _chars(item):
    width = max(len(c) for c in item.chars)
    chars = np.zeros((1, len(item.chars), width), np.int32)
    for position, ids in enumerate(item.chars):
        chars[0, position, :len(ids)] = ids
    return chars


SENTENCES = [["Buongiorno", ",", "sono", "Mario", "Rossi", "di", "Milano", "."],
             ["Il", "mio", "numero", "è", "333", "1234567"],
             ["Grazie", "."]]


def test_a_document_scores_the_sum_of_its_sentences_or_their_token_weighted_mean(tagger):
    lengths = [len(s) for s in SENTENCES]
    items = [[s] for s in SENTENCES] + [SENTENCES]
    for measure in selection.MEASURES:
        totals = selection.item_scores(tagger, items, SelectionSettings(measure, "item"))
        assert totals[-1] == pytest.approx(sum(totals[:-1]), rel=1e-5)
        means = selection.item_scores(tagger, items, SelectionSettings(measure, "token"))
        np.testing.assert_allclose(means[:-1], np.array(totals[:-1]) / lengths, rtol=1e-6)
        assert means[-1] == pytest.approx(sum(totals[:-1]) / sum(lengths), rel=1e-5)


def test_document_uncertainty_tokenizes_texts_as_the_readers_do(tagger):
    from neuroner_tl.spans import SpanDocument

    texts = ["Buongiorno, sono Mario Rossi di Milano. Il mio numero è 333 1234567", "Grazie."]
    scores = selection.document_uncertainty(tagger, [texts[0], SpanDocument("d", texts[1])])
    expected = selection.item_scores(tagger, [SENTENCES[:2], [SENTENCES[2]]])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert selection.document_uncertainty(tagger, []) == []
    assert selection.document_uncertainty(tagger, [""]) == [0.0]


def test_scoring_only_some_types_never_counts_more_doubt_than_every_label(tagger):
    items = [[s] for s in SENTENCES]
    stricter = False
    for measure in selection.MEASURES:
        every = selection.item_scores(tagger, items, SelectionSettings(measure, "item"))
        some = selection.item_scores(tagger, items, SelectionSettings(measure, "item", ("Address", "Phone")))
        assert all(s <= e + 1e-6 for s, e in zip(some, every)), measure
        stricter = stricter or any(s < e - 1e-3 for s, e in zip(some, every))
    assert stricter


def test_a_type_the_model_lacks_cannot_be_scored(tagger):
    with pytest.raises(NeuronerError, match="no type 'Chemical'"):
        selection.item_scores(tagger, [[SENTENCES[0]]], SelectionSettings(types=("Chemical",)))
    with pytest.raises(NeuronerError, match="never updated"):
        selection.newest_types(tagger.provenance)
    assert selection.newest_types({"updates": [{"entity_types": ["A"]}, {"entity_types": ["B", "C"]}]}) == ("B", "C")


@pytest.mark.parametrize("settings, message", [
    (dict(measure="margin"), "--measure"), (dict(per="word"), "--per"), (dict(diversity=-1), "--diversity"),
    (dict(diversity=float("nan")), "--diversity")])
def test_settings_are_checked(settings, message):
    with pytest.raises(NeuronerError, match=message):
        SelectionSettings(**settings)


# The choice ---------------------------------------------------------------------------------------
def test_exact_duplicates_are_never_chosen_twice():
    same = [["Roma", "è", "bella"]]
    items = [same, same, [["Milano"]], same, [["Napoli", "no"]], [[]]]
    assert selection.choose([5, 5, 1, 5, 2, 9], items, 10, diversity=0) == [0, 4, 2]
    assert selection.choose([5, 5, 1, 5, 2, 9], items, 10) == [0, 4, 2]


def test_near_duplicates_are_passed_over_with_diversity_and_not_without():
    invoice = "non ho ricevuto la fattura di marzo per il contratto di Mario Rossi a Roma".split()
    near = "non ho ricevuto la fattura di aprile per il contratto di Mario Rossi a Roma".split()
    other = "il modem è spento da lunedì e nessuno risponde al telefono".split()
    items = [[invoice], [near], [other]]
    assert selection.choose([1.0, 0.95, 0.6], items, 3, diversity=0) == [0, 1, 2]
    assert selection.choose([1.0, 0.95, 0.6], items, 3, diversity=1) == [0, 2, 1]
    assert selection.choose([1.0, 0.95, 0.6], items, 2, diversity=1) == [0, 2]  # a prefix of the longer choice


def test_similarity_is_the_cosine_of_tfidf_vectors():
    lists = [selection.surface_features(t) for t in (["a", "b"], ["a", "b"], ["c"], ["A", "B"], ["a", "c"])]
    columns = selection.tfidf_columns(lists)
    similarity = selection.similarities_to(columns, 0)
    assert similarity[:4] == pytest.approx([1.0, 1.0, 0.0, 1.0])  # lowercased
    assert 0 < similarity[4] < 1
    assert selection.surface_features(["Via", "Roma", "12"]) == ["via", "roma", "00", "via roma", "roma 00"]


# select in every format ---------------------------------------------------------------------------
TEXTS = ["Buongiorno, sono Mario Rossi e abito in via Garibaldi 12 a Torino.",
         "Il mio numero è 333 1234567, richiamatemi.",
         "Grazie mille.",
         "Buongiorno, sono Mario Rossi e abito in via Garibaldi 12 a Torino.",  # a duplicate of the first
         "La fattura di marzo non è arrivata all'indirizzo di Piazza Duomo 3, Milano.",
         "Vorrei parlare con un operatore della Telecom di Napoli."]


def conll_of(texts):
    from neuroner_tl.tokenizer import split_sentences

    blocks = []
    for text in texts:
        for sentence in split_sentences(text):
            blocks.append("".join(f"{token}\tO\n" for token, _, _ in sentence))
    return "\n".join(blocks) + "\n"


def select(model, source, output, *extra):
    code, out = invoke("select", model, source, "-o", output, *extra)
    assert code == 0, out
    return out


def listed(out):
    """(rank, score, where) of the listing select prints."""
    rows = [line.split("\t") for line in out.strip().splitlines()[2:]]
    return [(int(r[0]), float(r[1]), r[2]) for r in rows]


def test_conll_sentences_come_back_as_their_own_lines_best_first(micro_model, tmp_path):
    source = tmp_path / "pool.conll"
    source.write_text(conll_of(TEXTS), encoding="utf-8")
    blocks = source.read_text(encoding="utf-8").strip().split("\n\n")
    out = select(micro_model, source, tmp_path / "chosen.conll", "-n", "10", "--diversity", "0")
    chosen = (tmp_path / "chosen.conll").read_text(encoding="utf-8").strip().split("\n\n")
    assert set(chosen) <= set(blocks) and len(chosen) == len(set(chosen)) == len(set(blocks)) == len(blocks) - 1
    rows = listed(out)
    assert [r[0] for r in rows] == list(range(1, len(chosen) + 1))
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert f"{len(chosen)} of {len(blocks)} items chosen (only {len(chosen)} distinct" in out
    tagger = api.load_tagger(micro_model)
    tokens = [[line.split("\t")[0] for line in block.splitlines()] for block in chosen]
    np.testing.assert_allclose([r[1] for r in rows], selection.item_scores(tagger, [[t] for t in tokens]), atol=1e-4)


def test_text_lines_are_items(micro_model, tmp_path):
    source = tmp_path / "pool.txt"
    source.write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    select(micro_model, source, tmp_path / "chosen.txt", "-n", "3")
    lines = (tmp_path / "chosen.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and set(lines) <= set(TEXTS) and len(set(lines)) == 3


def test_jsonl_records_come_back_whole_with_their_selection_in_meta(micro_model, tmp_path):
    records = [{"id": f"r{n}", "text": text, "meta": {"source": "chat"}, "extra": n} for n, text in enumerate(TEXTS)]
    source = tmp_path / "pool.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    select(micro_model, source, tmp_path / "chosen.jsonl", "-n", "4", "--measure", "changes")
    written = [json.loads(line) for line in (tmp_path / "chosen.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [w["meta"]["selection"]["rank"] for w in written] == [1, 2, 3, 4]
    assert {w["meta"]["selection"]["measure"] for w in written} == {"changes per token"}
    by_id = {r["id"]: r for r in records}
    for record in written:
        selected = record["meta"].pop("selection")
        assert record == by_id[record["id"]] and selected["score"] >= 0
    assert not {"r0", "r3"} <= {w["id"] for w in written}  # the duplicate is not chosen with its twin


def label_studio_tasks():
    tasks = [{"id": 10 + n, "data": {"text": text, "source": "chat"}, "meta": {"batch": 1}} for n, text in
             enumerate(TEXTS)]
    region = {"from_name": "label", "to_name": "text", "type": "labels",
              "value": {"start": 38, "end": 45, "text": "Telecom", "labels": ["Organization"]}}
    tasks[5]["annotations"] = [{"result": [region], "was_cancelled": False}]
    return tasks


def test_label_studio_tasks_keep_their_ids_and_meta_and_annotated_ones_are_left_out(micro_model, tmp_path, capsys):
    tasks = label_studio_tasks()
    assert TEXTS[5][38:45] == "Telecom"
    source = tmp_path / "tasks.json"
    source.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    out = select(micro_model, source, tmp_path / "chosen.json", "-n", "10")
    written = json.loads((tmp_path / "chosen.json").read_text(encoding="utf-8"))
    assert "4 of 5 items chosen (only 4 distinct items with words)" in out  # one annotated, one a duplicate
    ids = [t["id"] for t in written]
    assert 15 not in ids and not {10, 13} <= set(ids)  # 13 is 10's text again
    assert len({t["data"]["text"] for t in written}) == len(written) == 4
    by_id = {t["id"]: t for t in tasks}
    scores = []
    for task in written:
        scores.append(task["meta"].pop("selection")["score"])
        assert task == by_id[task["id"]]
    # the Label Studio backend's per-task score is select's
    tagger = api.load_tagger(micro_model)
    expected = selection.document_uncertainty(tagger, [by_id[i]["data"]["text"] for i in ids])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    # and the file is one Label Studio imports and the package reads back
    assert [d.text for d in read_tasks((tmp_path / "chosen.json").read_text(encoding="utf-8"), "chosen.json")] == \
        [by_id[i]["data"]["text"] for i in ids]


def test_brat_documents_are_copied_whole(micro_model, tmp_path):
    folder = tmp_path / "brat"
    folder.mkdir()
    for n, text in enumerate(TEXTS):
        (folder / f"doc{n}.txt").write_text(text, encoding="utf-8")
    (folder / "doc2.ann").write_text("T1\tPerson 0 6\tGrazie\n", encoding="utf-8")
    out = select(micro_model, folder, tmp_path / "chosen", "-n", "3")
    files = sorted(p.name for p in (tmp_path / "chosen").iterdir())
    names = [r[2] for r in listed(out)]
    assert files == sorted([f"{n}.txt" for n in names] + [f"{n}.ann" for n in names])
    for name in names:
        for suffix in (".txt", ".ann"):
            original = folder / f"{name}{suffix}"
            assert (tmp_path / "chosen" / f"{name}{suffix}").read_bytes() == \
                (original.read_bytes() if original.exists() else b"")


@pytest.mark.parametrize("into", ["labelstudio", "jsonl", "conll", "text"])
def test_conversions_keep_each_items_text_and_identity(micro_model, tmp_path, into):
    source = tmp_path / "tasks.json"
    source.write_text(json.dumps(label_studio_tasks()[:5], ensure_ascii=False), encoding="utf-8")
    output = tmp_path / f"chosen.{ {'labelstudio': 'json', 'jsonl': 'jsonl', 'conll': 'conll', 'text': 'txt'}[into]}"
    out = select(micro_model, source, output, "-n", "2", "--format", into)
    ranks = [r[2] for r in listed(out)]
    ids = [int(where.split("(id ")[1].rstrip(")")) for where in ranks]
    texts = [TEXTS[i - 10] for i in ids]
    content = output.read_text(encoding="utf-8")
    if into == "labelstudio":
        tasks = json.loads(content)
        assert [(t["id"], t["data"]["text"], t["meta"]["batch"]) for t in tasks] == \
            [(i, t, 1) for i, t in zip(ids, texts)]
    elif into == "jsonl":
        records = [json.loads(line) for line in content.splitlines()]
        assert [(r["id"], r["text"], r["meta"]["batch"], r["source"]) for r in records] == \
            [(i, t, 1, "chat") for i, t in zip(ids, texts)]
    elif into == "conll":
        documents = content.split("-DOCSTART-\n\n")[1:]
        from neuroner_tl.tokenizer import split_sentences
        assert [[line for line in d.splitlines() if line] for d in documents] == \
            [[token for s in split_sentences(t) for token, _, _ in s] for t in texts]
        assert api.load_corpus(output).sentences  # predict and the readers take it
    else:
        assert content.splitlines() == texts


def test_an_in_memory_corpus_returns_the_choice(micro_model, micro_data):
    corpus = api.load_corpus(micro_data["test"])
    result = api.select(micro_model, corpus, None, count=3, per="item")
    assert [c.rank for c in result.chosen] == [1, 2, 3]
    assert result.items == len(corpus) and result.settings.describe() == "least-confidence per item"
    assert all(c.item.sentences[0] is corpus.sentences[c.index] for c in result.chosen)


def test_newest_scores_the_last_updates_types(micro_model, micro_data):
    tagger = api.load_tagger(micro_model)
    tagger.provenance = {**tagger.provenance, "updates": [{"entity_types": ["Address"]}]}
    corpus = api.load_corpus(micro_data["test"])
    newest = api.select(tagger, corpus, None, count=2, newest=True)
    named = api.select(tagger, corpus, None, count=2, types=["Address"])
    assert newest.settings.types == ("Address",) and newest.settings.describe().endswith("over Address")
    assert [(c.item.where, c.score) for c in newest.chosen] == [(c.item.where, c.score) for c in named.chosen]


# Mistakes ---------------------------------------------------------------------------------------
def test_bad_input_is_one_line_naming_the_file_and_line(micro_model, tmp_path):
    jsonl = tmp_path / "pool.jsonl"
    jsonl.write_text('{"text": "Ciao Mario."}\n{"text": "Buongiorno"\n', encoding="utf-8")
    one_line_error(*invoke("select", micro_model, jsonl, "-n", "1", "-o", tmp_path / "a.jsonl"), f"{jsonl}:2:")
    conll = tmp_path / "pool.conll"
    conll.write_text("Ciao O\nMario B-Person\n\nBuongiorno O extra\n", encoding="utf-8")
    one_line_error(*invoke("select", micro_model, conll, "-n", "1", "-o", tmp_path / "a.conll"), f"{conll}:4:")
    tasks = tmp_path / "tasks.json"
    tasks.write_text('[{"data": {"text": "Ciao"}}, {"data": {"text": "Ciao"}, "annotations": 3}]', encoding="utf-8")
    one_line_error(*invoke("select", micro_model, tasks, "-n", "1", "-o", tmp_path / "a.json"), str(tasks), "task 2")
    assert not any((tmp_path / name).exists() for name in ("a.jsonl", "a.conll", "a.json"))


@pytest.mark.parametrize("arguments, message", [
    (["-n", "0"], "-n must be"), (["-n", "2", "--types", "Chemical"], "no type 'Chemical'"),
    (["-n", "2", "--newest"], "never updated"), (["-n", "2", "--format", "brat"], "BRAT folder"),
    (["-n", "2", "--diversity", "-0.5"], "--diversity"), (["-n", "2", "--newest", "--types", "Address"], "not both"),
    (["-n", "2", "--input-format", "brat"], "is not a BRAT folder")])
def test_wrong_options_are_one_line(micro_model, tmp_path, arguments, message):
    source = tmp_path / "pool.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    one_line_error(*invoke("select", micro_model, source, "-o", tmp_path / "out.txt", *arguments), message)
    assert not (tmp_path / "out.txt").exists()


def test_standard_input_is_refused_with_a_reason(micro_model, tmp_path):
    code, out = invoke("select", micro_model, "-", "-n", "1", "-o", tmp_path / "out.txt", input="Ciao Mario.\n")
    one_line_error(code, out, "not standard input")


def test_the_command_offers_the_modules_measures_and_lengths():
    from neuroner_tl.cli import select as command

    choices = {option.name: list(option.type.choices) for option in command.params if hasattr(option.type, "choices")}
    assert choices["measure"] == list(selection.MEASURES) and choices["per"] == list(selection.PER)
    assert [p.default for p in command.params if p.name in ("measure", "diversity")] == \
        [selection.DEFAULT_MEASURE, selection.DEFAULT_DIVERSITY]


def test_never_the_input_and_an_existing_output_only_with_force(micro_model, tmp_path):
    source = tmp_path / "pool.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    before = source.read_bytes()
    for extra in ([], ["--force"]):
        one_line_error(*invoke("select", micro_model, source, "-o", source, "-n", "2", *extra), "is an input")
    assert source.read_bytes() == before
    one_line_error(*invoke("select", micro_model, source, "-o", Path(micro_model) / "out.txt", "-n", "2"),
                   "inside")
    output = tmp_path / "out.txt"
    output.write_text("keep me\n", encoding="utf-8")
    one_line_error(*invoke("select", micro_model, source, "-o", output, "-n", "2"), "already exists", "--force")
    assert output.read_text(encoding="utf-8") == "keep me\n"
    select(micro_model, source, output, "-n", "2", "--force")
    assert len(output.read_text(encoding="utf-8").splitlines()) == 2
    assert source.read_bytes() == before

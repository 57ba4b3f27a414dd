import collections

import numpy as np

from neuroner_tl.batching import Encoded, pad, replace_singletons, training_batches
from neuroner_tl.brat import read_brat, write_brat
from neuroner_tl.tokenizer import split_sentences, tokenize
from neuroner_tl.vocabulary import (UNK_ID, TokenEncoder, Vocabulary, build_char_vocabulary, build_word_vocabulary,
                                    count_words, replace_digits)


def test_digits_become_zero_and_rare_words_unk():
    counts = count_words([["Roma", "12", "Roma", "34", "rara"]], replace_digits)
    assert counts["00"] == 2
    words = build_word_vocabulary(counts, min_count=2)
    assert "Roma" in words and "00" in words and "rara" not in words
    encoder = TokenEncoder(words, build_char_vocabulary([["Roma"]], replace_digits))
    assert encoder.word_id("rara") == UNK_ID
    assert encoder.word_id("ROMA") == UNK_ID  # lowercase of ROMA is roma, not in the vocabulary
    assert encoder.word_id("99") == words.id("00")


def test_lowercase_lookup_and_pretrained_words_join_the_vocabulary():
    counts = collections.Counter({"casa": 3, "Milano": 1})
    words = build_word_vocabulary(counts, 2, has_vector=lambda w: w == "Milano", extra_words=["Torino", "Milano"])
    assert "Milano" in words and "Torino" not in words
    encoder = TokenEncoder(words, Vocabulary([]))
    assert encoder.word_id("Casa") == words.id("casa")


def test_vocabulary_save_and_load_round_trip(tmp_path):
    vocabulary = Vocabulary(["a", "è", "#"])
    vocabulary.save(tmp_path / "v.txt")
    assert Vocabulary.load(tmp_path / "v.txt").entries == vocabulary.entries


def test_batches_cover_every_sentence_once_and_group_similar_lengths():
    rng = np.random.default_rng(0)
    items = [Encoded(np.ones(n, np.int32), [[1]] * n, np.zeros(n, np.int32)) for n in rng.integers(1, 40, 200)]
    batches = list(training_batches(items, 8, rng, pool_batches=25))
    seen = sorted(i for b in batches for i in b.indices)
    assert seen == list(range(200))
    waste = sum(b.words.size - (b.words > 0).sum() for b in batches) / sum(b.words.size for b in batches)
    assert waste < 0.1
    single = list(training_batches(items[:3], 1, rng))
    assert [len(b) for b in single] == [1, 1, 1]


def test_pad_shapes():
    batch = pad([Encoded(np.array([3, 4, 3], np.int32), [[1, 2, 3], [4], [1, 2, 3]]),
                 Encoded(np.array([5], np.int32), [[4]])], [0, 1])
    assert batch.words.tolist() == [[3, 4, 3], [5, 0, 0]]
    assert batch.chars.tolist() == [[[1, 2, 3], [4, 0, 0], [1, 2, 3]], [[4, 0, 0], [0, 0, 0], [0, 0, 0]]]
    rounded = pad([Encoded(np.array([3], np.int32), [[1, 2, 3]])], [0], multiples=(8, 8))
    assert rounded.words.shape == (1, 8) and rounded.chars.shape == (1, 8, 8)


def test_singleton_replacement_only_touches_singletons():
    words = np.array([[5, 6, 7, 5]], np.int32)
    replaced = replace_singletons(words, np.array([5]), 1.0, np.random.default_rng(0))
    assert replaced.tolist() == [[UNK_ID, 6, 7, UNK_ID]]
    assert replace_singletons(words, np.array([5]), 0.0, np.random.default_rng(0)) is words


def test_tokenizer_keeps_offsets_elisions_emails_and_numbers():
    text = "L'amico di mario.rossi@example.com chiama il 333 1234567, ok?"
    tokens = tokenize(text)
    assert [t[0] for t in tokens] == ["L'", "amico", "di", "mario.rossi@example.com", "chiama", "il", "333",
                                      "1234567", ",", "ok", "?"]
    assert all(text[s:e] == w for w, s, e in tokens)
    assert len(split_sentences("Buongiorno. Sono Anna.\nGrazie")) == 3


def test_brat_folder_round_trip(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    text = "Mario Rossi abita a Roma.\nChiama Poste Italiane."
    (source / "doc.txt").write_text(text, encoding="utf-8")
    (source / "doc.ann").write_text("T1\tPER 0 11\tMario Rossi\nT2\tLOC 20 24\tRoma\nT3\tORG 33 47\tPoste Italiane\n",
                                    encoding="utf-8")
    corpus = read_brat(source)
    assert corpus.sentences[0].labels == ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    assert corpus.sentences[1].labels == ["O", "B-ORG", "I-ORG", "O"]
    out = tmp_path / "out"
    write_brat(out, {"doc": text}, corpus.sentences, [s.labels for s in corpus.sentences])
    assert (out / "doc.txt").read_text(encoding="utf-8") == text
    lines = (out / "doc.ann").read_text(encoding="utf-8").splitlines()
    assert lines == ["T1\tPER 0 11\tMario Rossi", "T2\tLOC 20 24\tRoma", "T3\tORG 33 47\tPoste Italiane"]

import numpy as np
import pytest

from neuroner_tl import api
from neuroner_tl.config import Hyperparameters
from neuroner_tl.datasets import generate_corpus

SMALL = dict(token_embedding_dim=16, token_lstm_units=16, char_lstm_units=8, char_embedding_dim=8)


def test_tiny_model_learns(tiny_model):
    _, result = tiny_model
    history = result.tagger.history
    assert history[-1]["loss"] < history[0]["loss"] / 2
    assert result.dev_report.f1 > 30.0
    assert result.dev_report.f1 == pytest.approx(max(r["dev_f1"] for r in history), abs=1e-6), \
        "the best epoch's weights are kept"


def test_batch_size_one_trains_and_bioes_round_trips():
    corpus = generate_corpus("A", 24, seed=9)
    hp = Hyperparameters(batch_size=1, max_epochs=1, tag_scheme="BIOES", **SMALL)
    result = api.train(corpus, None, dev=generate_corpus("A", 8, seed=10), hp=hp, verbose=False)
    assert "S-Phone" in result.tagger.labels and "E-Person" in result.tagger.labels
    predicted = result.tagger.predict(corpus.sentences[:3])
    assert [len(p) for p in predicted] == [len(s) for s in corpus.sentences[:3]]


def test_early_stopping_stops_after_patience():
    corpus = generate_corpus("A", 40, seed=11)
    hp = Hyperparameters(max_epochs=30, patience=2, learning_rate=0.0, **SMALL)  # no learning: no improvement
    result = api.train(corpus, None, dev=generate_corpus("A", 10, seed=12), hp=hp, verbose=False)
    assert len(result.tagger.history) == 3
    assert result.best_epoch == 1


def test_same_seed_same_model():
    corpus = generate_corpus("A", 30, seed=13)
    dev = generate_corpus("A", 10, seed=14)
    hp = Hyperparameters(max_epochs=2, **SMALL)
    first = api.train(corpus, None, dev=dev, hp=hp, verbose=False).tagger.network.get_weights()
    second = api.train(corpus, None, dev=dev, hp=hp, verbose=False).tagger.network.get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)

import numpy as np
import pytest
from gensim.models import KeyedVectors

from neuroner_tl.embeddings import embedding_matrix, find_vector, guess_format, load_vectors, train_vectors
from neuroner_tl.errors import DataFormatError
from neuroner_tl.vocabulary import Vocabulary


@pytest.fixture
def vectors():
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(["Roma", "casa", "00"], np.arange(12, dtype=np.float32).reshape(3, 4))
    return kv


@pytest.mark.parametrize("form", ["word2vec", "word2vec-binary", "glove", "fasttext-vec"])
def test_every_text_and_binary_format_loads(tmp_path, vectors, form):
    suffix = {"word2vec": ".txt", "word2vec-binary": ".bin", "glove": ".txt", "fasttext-vec": ".vec"}[form]
    path = tmp_path / f"vectors{suffix}"
    vectors.save_word2vec_format(str(path), binary=(form == "word2vec-binary"))
    if form == "glove":  # GloVe files have no "count dim" header line
        path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    assert guess_format(path) == form
    loaded = load_vectors(path)
    np.testing.assert_allclose(loaded["casa"], vectors["casa"])


def test_fasttext_binary_model_loads_with_subword_vectors(tmp_path):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    model = FastText(sentences=[["ciao", "mondo", "casa"]] * 5, vector_size=8, min_count=1, epochs=1)
    path = tmp_path / "model.bin"
    save_facebook_model(model, str(path))
    assert guess_format(path) == "fasttext-bin"
    assert load_vectors(path).vector_size == 8


def test_lookup_tries_exact_then_lowercase_then_digits(vectors):
    np.testing.assert_array_equal(find_vector(vectors, "Roma"), vectors["Roma"])
    np.testing.assert_array_equal(find_vector(vectors, "CASA"), vectors["casa"])
    np.testing.assert_array_equal(find_vector(vectors, "42"), vectors["00"])
    assert find_vector(vectors, "roma") is None  # lowercase of the query, not of the table


def test_matrix_rows_coverage_and_random_range(vectors):
    vocabulary = Vocabulary(["Roma", "Casa", "nuovo"])
    matrix, coverage = embedding_matrix(vocabulary, 4, np.random.default_rng(0), vectors)
    assert (coverage.found, coverage.total) == (2, 3)
    assert np.all(matrix[0] == 0)  # padding
    np.testing.assert_array_equal(matrix[vocabulary.id("Casa")], vectors["casa"])
    random_rows = matrix[[1, vocabulary.id("nuovo")]]
    assert np.all(np.abs(random_rows) <= 0.25) and np.any(random_rows != 0)


def test_wrong_format_and_dimension_are_clear_errors(tmp_path, vectors):
    bad = tmp_path / "bad.txt"
    bad.write_text("3 4\nciao 1 2\n")
    with pytest.raises(DataFormatError, match=str(bad)):
        load_vectors(bad)
    with pytest.raises(DataFormatError, match="dimensions"):
        embedding_matrix(Vocabulary(["a"]), 5, np.random.default_rng(0), vectors)
    with pytest.raises(DataFormatError, match="no such embeddings file"):
        load_vectors(tmp_path / "nope.vec")


@pytest.mark.parametrize("method", ["word2vec", "fasttext"])
def test_train_vectors_writes_a_loadable_file(tmp_path, method):
    sentences = [["il", "cliente", "chiama", "il", "servizio"]] * 20
    path = train_vectors(sentences, tmp_path / "own.vec", method=method, dim=10, epochs=1)
    loaded = load_vectors(path)
    assert loaded.vector_size == 10 and "cliente" in loaded.key_to_index

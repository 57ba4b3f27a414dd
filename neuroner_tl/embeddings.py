"""Pretrained word vectors through gensim: loading, lookup, coverage, and training your own."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from .errors import DataFormatError
from .vocabulary import PAD_ID, Vocabulary, replace_digits

FORMATS = ("word2vec", "word2vec-binary", "glove", "fasttext-vec", "fasttext-bin")
UNIFORM_LIMIT = 0.25  # random vectors, UNK's among them, are drawn from U[-0.25, 0.25]


def guess_format(path: Path) -> str:
    """From the extension and, for text files, whether the first line is a ``COUNT DIM`` header."""
    suffix = path.suffix.lower()
    if suffix == ".bin":
        with path.open("rb") as stream:
            magic = stream.read(4)
        # fastText's binary models start with the magic number 793712314 (little endian)
        return "fasttext-bin" if magic == (793712314).to_bytes(4, "little") else "word2vec-binary"
    with path.open("rb") as stream:
        first = stream.readline().split()
    has_header = len(first) == 2 and all(part.isdigit() for part in first)
    if suffix == ".vec":
        return "fasttext-vec" if has_header else "glove"
    return "word2vec" if has_header else "glove"


def load_vectors(path: Union[str, Path], format: Optional[str] = None):
    """A gensim ``KeyedVectors`` from a pretrained file; ``format`` is guessed when None."""
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such embeddings file", path)
    if path.stat().st_size == 0:
        raise DataFormatError("is empty: a vectors file holds a word and its numbers a line", path)
    try:
        format = format or guess_format(path)
        if format not in FORMATS:
            raise DataFormatError(f"unknown embeddings format {format!r} (expected one of {', '.join(FORMATS)})", path)
        if format == "fasttext-bin":
            vectors = load_facebook_vectors(str(path))
        elif format == "glove":
            vectors = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)
        else:
            vectors = KeyedVectors.load_word2vec_format(str(path), binary=(format == "word2vec-binary"))
    except DataFormatError:
        raise
    except (ValueError, UnicodeDecodeError, EOFError, IndexError, OSError, AssertionError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataFormatError(f"not a readable {format or 'embeddings'} file ({reason})", path) from None
    if len(vectors) == 0:
        raise DataFormatError("has no vectors", path)
    check_finite(vectors, path)
    return vectors


def check_finite(vectors, path: Path) -> None:
    """A NaN or an infinity in a vector would surface later as a diverging training: name the word now."""
    finite = np.isfinite(vectors.vectors).all(axis=1)
    if not finite.all():
        word = vectors.index_to_key[int(np.argmin(finite))]
        raise DataFormatError(f"the vector of {word!r} holds NaN or infinity ({int((~finite).sum())} such "
                              f"vectors); fix or drop them", path)


def find_vector(vectors, word: str) -> Optional[np.ndarray]:
    """The vector for ``word`` as written, else lowercased, else with digits replaced by 0."""
    for form in (word, word.lower(), replace_digits(word), replace_digits(word.lower())):
        if vectors.has_index_for(form):
            return vectors[form]
    return None


@dataclasses.dataclass(frozen=True)
class Coverage:
    found: int
    total: int

    @property
    def ratio(self) -> float:
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.found}/{self.total} vocabulary words have a pretrained vector ({100 * self.ratio:.1f}%)"


def embedding_matrix(vocabulary: Vocabulary, dim: int, rng: np.random.Generator, vectors=None):
    """(matrix [len(vocabulary), dim], coverage): pretrained rows where found, U[-0.25, 0.25] otherwise.

    The padding row is zero; UNK always gets a random row.
    """
    matrix = rng.uniform(-UNIFORM_LIMIT, UNIFORM_LIMIT, size=(len(vocabulary), dim)).astype(np.float32)
    matrix[PAD_ID] = 0.0
    found = 0
    if vectors is not None:
        if vectors.vector_size != dim:
            raise DataFormatError(f"vectors have {vectors.vector_size} dimensions, the model expects {dim}")
        for index, word in enumerate(vocabulary.entries[2:], start=2):
            vector = find_vector(vectors, word)
            if vector is not None:
                matrix[index] = vector
                found += 1
    return matrix, Coverage(found, len(vocabulary) - 2)


def train_vectors(sentences: Iterable[Sequence[str]], output: Union[str, Path], method: str = "word2vec",
                  dim: int = 300, window: int = 5, min_count: int = 1, epochs: int = 5, seed: int = 1,
                  workers: int = 1) -> Path:
    """Train word2vec or fastText on tokenized sentences and save them in word2vec text format."""
    from gensim.models import FastText, Word2Vec

    if method not in ("word2vec", "fasttext"):
        raise ValueError(f"method must be word2vec or fasttext, not {method!r}")
    sentences = [list(s) for s in sentences]
    if not sentences:
        raise ValueError("no sentences to train vectors on")
    model_class = Word2Vec if method == "word2vec" else FastText
    model = model_class(sentences=sentences, vector_size=dim, window=window, min_count=min_count,
                        epochs=epochs, seed=seed, workers=workers)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model.wv.save_word2vec_format(str(output), binary=False)
    return output

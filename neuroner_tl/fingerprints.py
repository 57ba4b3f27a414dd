"""Digests that tell whether what a run depends on changed: a file, a corpus, a value."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Union

PathLike = Union[str, Path]


def file_fingerprint(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_of_corpus(corpus) -> str:
    """The tokens and labels of a ``corpus.Corpus`` (whatever file or object they came from)."""
    digest = hashlib.sha256()
    for sentence in corpus.sentences:
        digest.update(json.dumps([sentence.tokens, sentence.labels], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def fingerprint_of_value(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()

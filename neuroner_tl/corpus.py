"""The data model every reader fills and every writer reads: a ``Sentence`` (tokens, labels, extra
columns, offsets) and a ``Corpus`` of them with the tag scheme its labels are written in."""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

from . import tags as tagging


@dataclasses.dataclass
class Sentence:
    """One sentence: tokens, their labels (None when unlabelled) and any middle columns."""

    tokens: List[str]
    labels: Optional[List[str]] = None
    columns: List[List[str]] = dataclasses.field(default_factory=list)  # per token, the middle columns
    line: int = 0  # 1-based line of the first token in its file, for messages
    offsets: Optional[List[Tuple[int, int]]] = None  # character offsets, for text read from BRAT
    document: Optional[str] = None  # the BRAT document the sentence comes from

    def __len__(self) -> int:
        return len(self.tokens)

    def with_labels(self, labels: Sequence[str]) -> "Sentence":
        return dataclasses.replace(self, labels=list(labels))


@dataclasses.dataclass
class Corpus:
    """The sentences of a file and the tag scheme they were written in."""

    sentences: List[Sentence]
    scheme: Optional[str]  # None for unlabelled text
    path: Optional[str] = None

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self):
        return iter(self.sentences)

    @property
    def labelled(self) -> bool:
        return self.scheme is not None

    def entity_types(self) -> List[str]:
        return tagging.entity_types(t for s in self.sentences for t in (s.labels or []))

    def keeping_types(self, types) -> "Corpus":
        """The same corpus with every span not of ``types`` relabelled O, in the corpus's scheme."""
        wanted = set(types)
        sentences = [s.with_labels(tagging.tags_from_spans([x for x in tagging.spans(s.labels) if x.type in wanted],
                                                           len(s), self.scheme)) for s in self.sentences]
        return Corpus(sentences, self.scheme, self.path)

    def converted(self, scheme: str) -> "Corpus":
        """The same corpus with every label rewritten in ``scheme``."""
        scheme = tagging.canonical_scheme(scheme)
        if not self.labelled:
            return self
        sentences = [s.with_labels(tagging.convert(s.labels, scheme)) for s in self.sentences]
        return Corpus(sentences, scheme, self.path)

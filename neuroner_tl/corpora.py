"""What is checked and split before training: entity counts, the dev part held out of a corpus,
the types a run is asked to learn and whether the data can teach them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Union

import numpy as np

from . import tags as tagging
from .corpus import Corpus
from .errors import DataFormatError, NeuronerError
from .fingerprints import file_fingerprint

if TYPE_CHECKING:
    from .tagger import Tagger

PathLike = Union[str, Path]


def describe_corpus(corpus: Corpus, role: str, path: Optional[PathLike] = None) -> dict:
    record = {"role": role, "sentences": len(corpus), "tokens": sum(len(s) for s in corpus.sentences),
              "entities": dict(sorted(span_counts(corpus).items())), "scheme": corpus.scheme}
    source = path or corpus.path
    if source is not None and Path(source).is_file():
        record.update({"path": str(Path(source).resolve()), "sha256": file_fingerprint(source)})
    elif source is not None:
        record["path"] = str(source)
    return record


def check_has_entities(corpus: Corpus, role: str) -> None:
    """Data with no entity at all would train a model that only ever predicts O."""
    if not span_counts(corpus):
        raise DataFormatError(f"the {role} data have no entity at all (every label is O): a model trained on them "
                              f"would only ever predict O", corpus.path)


MIN_SENTENCES_TO_SPLIT = 10


def hold_out_dev(corpus: Corpus, fraction: float, seed: int, say, stratify: Sequence[str] = ()):
    """(training part, dev part) of a corpus without a dev set; tiny corpora train on everything.
    ``stratify``: types whose sentences are split apart, so that dev gets its share of a rare type."""
    if len(corpus) < MIN_SENTENCES_TO_SPLIT:
        say(f"only {len(corpus)} sentences and no dev set: training on all of them and early stopping on the "
            f"same sentences (pass a dev set for an honest score)")
        return corpus, corpus
    train_part, dev_part = split_off_dev(corpus, fraction, seed, stratify)
    say(f"no dev set given: holding out {len(dev_part)} of {len(corpus)} sentences for early stopping")
    return train_part, dev_part


def span_counts(corpus: Optional[Corpus]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for sentence in (corpus.sentences if corpus is not None else []):
        for span in tagging.spans(sentence.labels or []):
            counts[span.type] = counts.get(span.type, 0) + 1
    return counts


def check_types_have_training_spans(say, train_part: Corpus, dev: Corpus, test: Optional[Corpus],
                                    split: bool) -> None:
    """Every type in dev or test should have training spans: an error when holding out dev took all
    of a type's spans, a warning when a given dev or test file has a type the training data lack."""
    in_train, in_dev, in_test = span_counts(train_part), span_counts(dev), span_counts(test)
    for kind in sorted(set(in_dev) | set(in_test)):
        if in_train.get(kind):
            continue
        counts = f"{in_dev.get(kind, 0)} in dev, {in_test.get(kind, 0)} in test, none in training"
        if split:
            raise NeuronerError(f"every {kind} span ({counts}) fell in the held-out dev sentences; annotate more "
                                f"{kind} or pass --dev FILE")
        say(f"warning: {kind} spans: {counts}; the model has a label for {kind} but cannot learn it")


def split_off_dev(corpus: Corpus, fraction: float, seed: int, stratify: Sequence[str] = ()):
    """A seeded random ``fraction`` of the sentences as dev; with ``stratify``, the sentences holding a
    span of those types and the others are each split by ``fraction`` (dev gets at least one of the
    former when there are two or more)."""
    rng = np.random.default_rng(seed)
    wanted = set(stratify)
    holds = [bool(wanted) and any(sp.type in wanted for sp in tagging.spans(s.labels or [])) for s in corpus.sentences]
    dev_ids = set()
    for group in ([i for i, h in enumerate(holds) if h], [i for i, h in enumerate(holds) if not h]):
        if not group:
            continue
        size = int(round(fraction * len(group)))
        if group is not None and len(group) >= 2 and size == 0:
            size = 1
        dev_ids.update(np.asarray(group)[rng.permutation(len(group))[:size]].tolist())
    if not dev_ids:
        dev_ids = {int(rng.integers(len(corpus)))}
    train = Corpus([s for i, s in enumerate(corpus.sentences) if i not in dev_ids], corpus.scheme, corpus.path)
    dev = Corpus([s for i, s in enumerate(corpus.sentences) if i in dev_ids], corpus.scheme, corpus.path)
    return train, dev


def check_types(entity_types: Sequence[str]) -> List[str]:
    types = [t.strip() for t in entity_types if t and t.strip()]
    if not types:
        raise NeuronerError("name at least one target entity type (--entity TYPE)")
    for kind in types:
        if tagging.tag_problem(kind, "IO"):
            raise NeuronerError(f"{kind!r} cannot be an entity type name (write the type, e.g. PER, not B-PER)")
    return list(dict.fromkeys(types))


def check_no_case_clash(entity_types: Sequence[str], known: Sequence[str], where: str) -> None:
    """A type that differs from one of the model's only in case is a typo, not a new type."""
    for kind in entity_types:
        clash = [other for other in known if other != kind and other.lower() == kind.lower()]
        if clash and kind not in known:
            raise NeuronerError(f"entity type {kind!r} ({where}) differs from the model's {clash[0]!r} only in case; "
                                f"write {clash[0]} (types are case-sensitive)")


def check_target_has_types(corpus: Corpus, entity_types: Sequence[str], source: "Tagger", path) -> None:
    check_no_case_clash(entity_types, source.entity_types, "asked for with -e")
    check_no_case_clash(corpus.entity_types(), source.entity_types, f"in {path or corpus.path or 'the target data'}")
    present = set(corpus.entity_types())
    missing = [t for t in entity_types if t not in present]
    if missing:
        hint = ""
        unknown_everywhere = [t for t in missing if t not in source.entity_types]
        if unknown_everywhere and present:
            hint = f"; the file annotates {', '.join(sorted(present))}"
        elif not present:
            hint = "; the file has no entities at all"
        raise DataFormatError(f"has no {', '.join(missing)} entities to learn from{hint}", path or corpus.path)

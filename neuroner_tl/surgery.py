"""``ModelSurgeon``: rebuild a trained network for a new label set or a larger vocabulary, with no
access to the data it was trained on.

Every old weight is copied exactly and old indices stay stable: new labels are appended after the
old ones (the CRF's start and end rows/columns move from ``C``/``C+1`` to ``C'``/``C'+1``), new words
and characters after the old vocabulary. New weights are drawn from ``N(mean, std)`` of the existing
weights of the same matrix (the paper), or, with ``init="preserve"``, set so that the rebuilt
network decodes exactly what the source decoded until it is fine-tuned.

``isolate=True`` (the ``isolate`` update method) changes nothing of the source network: the target
types' labels are scored by a new ``model.LabelAdapter`` (new labels: the paper's N(mean, std) rows
over the hidden layer; a known type: a residual added to its frozen rows, starting at zero; a
forgotten type: new rows that replace its old ones), the vocabularies are not grown (the frozen
encoders see every input as the source saw it), and ``isolated_labels`` says which labels, and so
which rows and columns of the transitions, the update may train.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from . import tags as tagging
from .embeddings import find_vector
from .errors import UpdateError
from .model import assign_weights, weight_arrays
from .tagger import Tagger
from .vocabulary import PAD_ID, UNK_ID, Vocabulary

WORDS = "word_embedding/embeddings"
CHARS = "char_encoder/char_embedding/embeddings"
EMISSION_KERNEL = "emissions/kernel"
EMISSION_BIAS = "emissions/bias"
TRANSITIONS = "crf/transitions"
INITS = ("paper", "preserve")
PRESERVE_MARGIN = 1.0
ADAPTER_UNITS = 32


def like(existing: np.ndarray, shape, rng: np.random.Generator) -> np.ndarray:
    """Values drawn from N(mean, std) of ``existing``."""
    return rng.normal(float(np.mean(existing)), float(np.std(existing)), size=shape).astype(existing.dtype)


def used_transitions(matrix: np.ndarray) -> np.ndarray:
    """The entries of a (C+2)x(C+2) matrix the CRF uses: label to label, start to label, label to end."""
    c = matrix.shape[0] - 2
    return np.concatenate([matrix[:c, :c].ravel(), matrix[c, :c], matrix[:c, c + 1]])


def crf_index_map(old_labels: int, new_labels: int) -> np.ndarray:
    """Where each row/column of the old (C+2)x(C+2) matrix goes in the new one."""
    return np.concatenate([np.arange(old_labels), [new_labels, new_labels + 1]])


class ModelSurgeon:
    """Operates on a source ``Tagger``; the source itself is never modified."""

    def __init__(self, source: Tagger, seed: Optional[int] = None):
        self.source = source
        self.rng = np.random.default_rng(source.hp.seed if seed is None else seed)

    @classmethod
    def from_folder(cls, folder, seed: Optional[int] = None) -> "ModelSurgeon":
        from .model_io import load_tagger

        return cls(load_tagger(folder), seed)

    def labels_with(self, new_types: Sequence[str]) -> List[str]:
        """The source labels followed by the labels of the types it lacks."""
        known = set(self.source.entity_types)
        added = [t for t in new_types if t not in known]
        extra = tagging.labels_for_types(added, self.source.hp.tag_scheme)[1:]
        return self.source.labels + extra

    def operate(self, new_types: Sequence[str] = (), forget_types: Sequence[str] = (),
                new_words: Iterable[str] = (), new_chars: Iterable[str] = (), vectors=None,
                init: str = "paper", isolate: Sequence[str] = (), adapter_units: int = ADAPTER_UNITS,
                column: bool = False, column_chars: bool = False) -> Tagger:
        """A new ``Tagger``: labels for ``new_types`` added, ``forget_types`` re-drawn, the
        vocabularies grown by ``new_words``/``new_chars`` (see ``_grow_word_rows``; under ``preserve``
        the network predicts what the source did, except for new words given a pretrained vector)."""
        if init not in INITS:
            raise UpdateError(f"init must be one of {', '.join(INITS)}, not {init!r}")
        unknown = [t for t in forget_types if t not in self.source.entity_types]
        if unknown:
            raise UpdateError(f"cannot forget {', '.join(unknown)}: the model has no such type "
                              f"(it knows {', '.join(self.source.entity_types)})")
        if isolate and column:
            return self._isolate(list(isolate), new_types, forget_types, self.source.hp.token_lstm_units,
                                 column_words=new_words, vectors=vectors, column_chars=column_chars)
        if isolate:
            return self._isolate(list(isolate), new_types, forget_types, adapter_units)
        source = self.source
        labels = self.labels_with(new_types)
        words = _grown(source.words, new_words)
        chars = _grown(source.chars, new_chars)
        heads = _heads_widened(source.heads, len(source.labels), len(labels))
        if heads and heads.get("base_words") is not None:  # the base layer now reads every word (columns clip)
            heads["base_words"] = len(words)
        target = Tagger(source.hp, words, chars, labels, word_dim=source.word_dim, history=source.history,
                        provenance=_copy_provenance(source.provenance), heads=heads)
        old = weight_arrays(source.network)
        new = {name: value.copy() for name, value in old.items()}
        new[WORDS] = self._grow_word_rows(old[WORDS], words, vectors, init)
        if init == "preserve":
            # a new character starts as the character UNK row: the inputs do not change
            new[CHARS] = _rows_as_source_saw_them(old[CHARS], chars, lambda c: UNK_ID)
        else:
            new[CHARS] = self._grow_rows(old[CHARS], len(chars))
        added = len(labels) - len(source.labels)
        new[EMISSION_KERNEL], new[EMISSION_BIAS] = self._widen_emissions(old[EMISSION_KERNEL], old[EMISSION_BIAS],
                                                                         added, init)
        new[TRANSITIONS] = self._widen_transitions(old[TRANSITIONS], len(labels), init)
        forgotten = [i for i, label in enumerate(labels) if tagging.split_tag(label)[1] in set(forget_types)]
        if forgotten:
            self._redraw(new, forgotten, heads)
        _assign(target, new)
        return target

    def _isolate(self, types: List[str], new_types, forget_types, units: int, column_words: Optional[Iterable[str]] = None,
                 vectors=None, column_chars: bool = False) -> Tagger:
        """The source network unchanged, plus an adapter that scores the labels of ``types``: a
        ``model.LabelAdapter``, or with ``column_words`` (the words the column adds; may be empty) a
        ``model.TargetColumn`` started as a copy of the source's word rows, token BiLSTM and hidden
        layer, its lateral inputs at zero."""
        source = self.source
        labels = self.labels_with(new_types)
        owned = [i for i, label in enumerate(labels) if tagging.split_tag(label)[1] in set(types)]
        forgotten = {i for i in owned if tagging.split_tag(labels[i])[1] in set(forget_types)}
        heads = _heads_widened(source.heads, len(source.labels), len(labels), grow_base=False)
        heads["base_columns"] = [-1 if i in forgotten else c for i, c in enumerate(heads["base_columns"])]
        number = len(heads["adapters"])
        words = _grown(source.words, column_words or ())
        spec = {"labels": owned, "units": int(units)}
        if column_words is not None:
            spec.update({"kind": "column", "words": len(words), **({"own_chars": True} if column_chars else {})})
            heads.setdefault("base_words", source.network.base_words)
        heads["adapters"].append(spec)
        target = Tagger(source.hp, words, _grown(source.chars, ()), labels, word_dim=source.word_dim,
                        history=source.history, provenance=_copy_provenance(source.provenance), heads=heads)
        old = weight_arrays(source.network)
        new = weight_arrays(target.network)  # an adapter's BiLSTM keeps its fresh initialization
        new.update({name: value.copy() for name, value in old.items()})
        prefix = f"adapter_{number}"
        head_kernel = np.zeros_like(new[f"{prefix}/head/kernel"])
        head_bias = np.zeros_like(new[f"{prefix}/head/bias"])
        if column_words is not None:
            new.update(self._column_copy(old, new, prefix, words, vectors))
        kernel, bias = old[EMISSION_KERNEL], old[EMISSION_BIAS]
        scored_by_adapter = [k for k, label in enumerate(owned) if heads["base_columns"][label] < 0]
        if scored_by_adapter:  # the paper's new emission rows, over the (column's) hidden layer; residuals start at 0
            head_kernel[: kernel.shape[0], scored_by_adapter] = like(kernel, (kernel.shape[0], len(scored_by_adapter)),
                                                                     self.rng)
            head_bias[scored_by_adapter] = like(bias, len(scored_by_adapter), self.rng)
        new[f"{prefix}/head/kernel"], new[f"{prefix}/head/bias"] = head_kernel, head_bias
        new[TRANSITIONS] = self._widen_transitions(old[TRANSITIONS], len(labels), "paper")
        if forgotten:
            matrix, used = new[TRANSITIONS], used_transitions(old[TRANSITIONS])
            ids = sorted(forgotten)
            matrix[ids, :] = like(used, (len(ids), matrix.shape[1]), self.rng)
            matrix[:, ids] = like(used, (matrix.shape[0], len(ids)), self.rng)
        _assign(target, new)
        return target

    def _column_copy(self, old: Dict[str, np.ndarray], new: Dict[str, np.ndarray], prefix: str,
                     words: Vocabulary, vectors) -> Dict[str, np.ndarray]:
        """A column's starting weights: the source's word rows (a new word: the row the source read
        it by, its lowercase form's or UNK's, or its pretrained vector), its token BiLSTM, and its
        hidden layer with the lateral rows (from the frozen states) at zero. A source without a
        hidden layer leaves the column's at its fresh initialization."""
        base_rows = old[WORDS]
        grown = self._grow_word_rows(base_rows, words, vectors, "preserve")
        weights = {f"{prefix}/word_embedding/embeddings": grown}
        for name, value in old.items():
            if name.startswith("token_bilstm/") or (name.startswith("char_encoder/") and
                                                    f"{prefix}/{name}" in new):
                weights[f"{prefix}/{name}"] = value.copy()
        if "hidden/kernel" in old:
            kernel = np.zeros_like(new[f"{prefix}/hidden/kernel"])
            kernel[: old["hidden/kernel"].shape[0]] = old["hidden/kernel"]
            weights[f"{prefix}/hidden/kernel"], weights[f"{prefix}/hidden/bias"] = kernel, old["hidden/bias"].copy()
        return weights

    # the pieces --------------------------------------------------------------------------------
    def _grow_rows(self, matrix: np.ndarray, size: int) -> np.ndarray:
        old_size = matrix.shape[0]
        if size == old_size:
            return matrix.copy()
        rows = like(matrix[PAD_ID + 1:], (size - old_size, matrix.shape[1]), self.rng)
        return np.concatenate([matrix, rows], axis=0)

    def _grow_word_rows(self, matrix: np.ndarray, vocabulary: Vocabulary, vectors, init: str) -> np.ndarray:
        """Rows for the new words, under every init: the row the source used for the word (its
        lowercase form's) when it had one; else the pretrained vector; else UNK's row (``preserve``,
        so that the inputs do not change) or a draw from N(mean, std) of the rows (``paper``)."""
        old_size = matrix.shape[0]
        if vectors is not None and vectors.vector_size != matrix.shape[1]:
            raise UpdateError(f"the vectors have {vectors.vector_size} dimensions; the model's word "
                              f"embeddings have {matrix.shape[1]}")
        if init == "preserve":
            rows = np.repeat(matrix[UNK_ID:UNK_ID + 1], len(vocabulary) - old_size, axis=0)
        else:
            rows = like(matrix[PAD_ID + 1:], (len(vocabulary) - old_size, matrix.shape[1]), self.rng)
        for offset, word in enumerate(vocabulary.entries[old_size:]):
            seen_as = self.source.encoder.word_id(word)
            vector = find_vector(vectors, word) if vectors is not None else None
            if seen_as != UNK_ID and seen_as < old_size:  # (a word an earlier column added has no row here)
                rows[offset] = matrix[seen_as]
            elif vector is not None:
                rows[offset] = vector
        return np.concatenate([matrix, rows.astype(matrix.dtype)], axis=0)

    def _widen_emissions(self, kernel: np.ndarray, bias: np.ndarray, added: int, init: str):
        if added == 0:
            return kernel.copy(), bias.copy()
        if init == "preserve":
            # The emission layer's inputs lie in [-1, 1] (tanh or LSTM outputs), so an old label j
            # scores at least bias_j - sum|kernel[:, j]|; a new label scoring below that never wins.
            floor = float(np.min(bias - np.abs(kernel).sum(axis=0))) - PRESERVE_MARGIN
            new_kernel = np.zeros((kernel.shape[0], added), kernel.dtype)
            new_bias = np.full(added, floor, bias.dtype)
        else:
            new_kernel = like(kernel, (kernel.shape[0], added), self.rng)
            new_bias = like(bias, added, self.rng)
        return np.concatenate([kernel, new_kernel], axis=1), np.concatenate([bias, new_bias])

    def _widen_transitions(self, matrix: np.ndarray, labels: int, init: str) -> np.ndarray:
        old_labels = matrix.shape[0] - 2
        used = used_transitions(matrix)
        if init == "preserve":
            # Moves into or out of a new label score no more than any old move: with the low
            # emissions above, no best path goes through a new label.
            widened = np.full((labels + 2, labels + 2), float(np.min(used)), matrix.dtype)
        else:
            widened = like(used, (labels + 2, labels + 2), self.rng)
        index = crf_index_map(old_labels, labels)
        widened[np.ix_(index, index)] = matrix
        return widened

    def _redraw(self, weights: Dict[str, np.ndarray], label_ids: List[int], heads: Optional[dict]) -> None:
        """Task (ii): the forgotten labels' emission columns and every transition touching them (a
        label an adapter scores: its column of the adapter's head)."""
        kernel, bias, matrix = weights[EMISSION_KERNEL], weights[EMISSION_BIAS], weights[TRANSITIONS]
        columns = [heads["base_columns"][i] if heads else i for i in label_ids]
        for number, adapter in enumerate(heads["adapters"] if heads else []):
            owned = [adapter["labels"].index(i) for i in label_ids if i in adapter["labels"]]
            head_kernel, head_bias = weights[f"adapter_{number}/head/kernel"], weights[f"adapter_{number}/head/bias"]
            head_kernel[:, owned] = like(head_kernel, (head_kernel.shape[0], len(owned)), self.rng)
            head_bias[owned] = like(bias, len(owned), self.rng)
        columns = [c for c in columns if c >= 0]
        kernel[:, columns] = like(kernel, (kernel.shape[0], len(columns)), self.rng)
        bias[columns] = like(bias, len(columns), self.rng)
        used = used_transitions(matrix)
        matrix[label_ids, :] = like(used, (len(label_ids), matrix.shape[1]), self.rng)
        matrix[:, label_ids] = like(used, (matrix.shape[0], len(label_ids)), self.rng)


def _heads_widened(heads: Optional[dict], old_labels: int, labels: int, grow_base: bool = True) -> Optional[dict]:
    """The emission layout for ``labels`` labels of which the first ``old_labels`` are the source's:
    with ``grow_base``, the base ``emissions`` layer scores the added labels (surgery widens it);
    without, they are left for an adapter. None (no adapters, base covers all) stays None."""
    if heads is None and grow_base:
        return None
    heads = {"base_width": old_labels, "base_columns": list(range(old_labels)), "adapters": []} \
        if heads is None else {**heads, "adapters": [dict(a) for a in heads["adapters"]],
                               "base_columns": list(heads["base_columns"])}
    added = labels - old_labels
    if grow_base:
        width = heads["base_width"]
        heads["base_columns"] += list(range(width, width + added))
        heads["base_width"] = width + added
    else:
        heads["base_columns"] += [-1] * added
    return heads


def _rows_as_source_saw_them(matrix: np.ndarray, vocabulary: Vocabulary, source_id) -> np.ndarray:
    extra = [matrix[source_id(entry)] for entry in vocabulary.entries[matrix.shape[0]:]]
    return np.concatenate([matrix, np.asarray(extra, matrix.dtype).reshape(-1, matrix.shape[1])], axis=0)


def _grown(vocabulary: Vocabulary, entries: Iterable[str]) -> Vocabulary:
    grown = Vocabulary(vocabulary.entries[2:])
    for entry in entries:
        grown.add(entry)
    return grown


def _copy_provenance(provenance: dict) -> dict:
    import copy

    return copy.deepcopy(provenance)


def _assign(tagger: Tagger, arrays: Dict[str, np.ndarray]) -> None:
    assign_weights(tagger.network, arrays)

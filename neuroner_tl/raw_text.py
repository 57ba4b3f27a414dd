"""Tagging raw text: split into sentences and tokens with character offsets, tagged in shared
batches, entities returned with their offsets in the text."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Sequence, Tuple, Union

from .errors import DataFormatError
from .thresholds import Threshold
from .tokenizer import split_sentences, surrogate_problem

if TYPE_CHECKING:
    from .tagger import Tagger


def tag_texts(tagger: "Tagger", texts: Union[str, Sequence[str]], batch_size: int = 128,
              min_confidence: Threshold = None) -> Union[List[dict], List[List[dict]]]:
    """Entities in raw text: for one string a list, for a list of strings a list per string, of
    ``{"type", "text", "start", "end", "confidence"}`` with character offsets (end exclusive).
    The text is split into sentences and tokens by ``tokenizer.split_sentences``; every sentence
    of every text is tagged in the same batches. A text with a lone surrogate is a ``DataFormatError``."""
    single = isinstance(texts, str)
    results, _ = tag_texts_with_doubt(tagger, [texts] if single else texts, batch_size, min_confidence)
    return results[0] if single else results


def tag_texts_with_doubt(tagger: "Tagger", texts: Sequence[str], batch_size: int = 128,
                         min_confidence: Threshold = None) -> Tuple[List[List[dict]], List[float]]:
    """(each text's entities, as ``tag_texts`` gives them; each text's least confidence per token,
    ``-log P(tags)`` of its sentences summed over its tokens, 0 for a text without tokens), from the
    one tagging pass: the doubt ``selection.document_uncertainty`` measures by default."""
    text_list = list(texts)
    for number, text in enumerate(text_list, start=1):
        if not isinstance(text, str):
            raise TypeError(f"text {number} is {type(text).__name__}, not str")
        problem = surrogate_problem(text)
        if problem:
            raise DataFormatError(f"text {number} {problem}")
    owners, sentences = [], []
    for number, text in enumerate(text_list):
        for sentence in split_sentences(text):
            owners.append(number)
            sentences.append(sentence)
    predictions = tagger.predict_with_confidence([[t[0] for t in s] for s in sentences], batch_size,
                                                 min_confidence=min_confidence)
    results: List[List[dict]] = [[] for _ in text_list]
    doubt, tokens = [0.0] * len(text_list), [0] * len(text_list)
    for owner, sentence, prediction in zip(owners, sentences, predictions):
        text = text_list[owner]
        doubt[owner] -= prediction.log_probability
        tokens[owner] += len(sentence)
        for span in prediction.entities():
            start, end = sentence[span.start][1], sentence[span.end - 1][2]
            results[owner].append({"type": span.type, "text": text[start:end], "start": start, "end": end,
                                   "confidence": round(span.confidence, 6)})
    return results, [total / count if count else 0.0 for total, count in zip(doubt, tokens)]

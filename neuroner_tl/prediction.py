"""Tagging files and streams a chunk at a time: read CoNLL or raw text from a file or standard input,
tag ``CHUNK_SENTENCES`` sentences at once, write CoNLL or JSON as it goes. Memory does not grow
with the input (BRAT folders, span JSONL and Label Studio, whose documents are written whole, go
through ``api.predict``: ``read_for_prediction`` and ``write_documents``)."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple

from . import jsonl, labelstudio
from . import tags as tagging
from .atomic import atomic_writer
from .conll import iter_conll_blocks, sentence_from_block
from .corpus import Sentence
from .errors import DataFormatError
from .formats import SPAN_FORMATS, read_span_documents
from .spans import SpanDocument, documents_of_sentences, joined_offsets, tagged_documents, unlabelled_sentences
from .lines import STDIN, LineSource  # noqa: F401 (LineSource: re-exported)
from .predicted import Prediction
from .tagger import Tagger
from .thresholds import Threshold, check_threshold
from .tokenizer import split_sentences

CHUNK_SENTENCES = 2000


def conll_sentences(lines: Iterable[str], where) -> Iterator[Sentence]:
    """Sentences of CoNLL lines, lazily; a last column (when there are several) is kept as the gold
    labels, each checked to be a tag."""
    labelled = None
    for start, block in iter_conll_blocks(lines, where):
        if labelled is None:
            labelled = len(block[0]) - 1 > 1
        sentence = sentence_from_block(block, start, labelled)
        for offset, label in enumerate(sentence.labels or []):
            problem = tagging.tag_problem(label, None)
            if problem:
                raise DataFormatError(problem, where, start + offset)
        yield sentence


def text_sentences(lines: Iterable[str], document: str) -> Iterator[Sentence]:
    """Sentences of raw text, a line at a time, with character offsets into the whole text."""
    position = 0
    for line in lines:
        for tokens in split_sentences(line):
            yield Sentence([t[0] for t in tokens], offsets=[(t[1] + position, t[2] + position) for t in tokens],
                           document=document)
        position += len(line)


def tag_stream(tagger: Tagger, sentences: Iterable[Sentence], *, batch_size: int = 128, confidence: bool = True,
               min_confidence: Threshold = None,
               chunk: int = CHUNK_SENTENCES) -> Iterator[Tuple[Sentence, Prediction]]:
    """``(sentence, prediction)`` in the input order, tagging ``chunk`` sentences at a time."""
    iterator = iter(sentences)
    while True:
        block = list(itertools.islice(iterator, chunk))
        if not block:
            return
        yield from zip(block, tagger.predict_with_confidence(block, batch_size, confidence, min_confidence))


def entity_record(span, tokens: Sequence[str], offsets: Sequence[Tuple[int, int]]) -> dict:
    """An entity as every JSON output of the package gives it (README, "Entity offsets"):
    ``start``/``end`` are character offsets (end exclusive), ``token_start``/``token_end`` token
    indices in its sentence, then its text and, when computed, its confidence."""
    entity = {"type": span.type, "start": offsets[span.start][0], "end": offsets[span.end - 1][1],
              "token_start": span.start, "token_end": span.end, "text": " ".join(tokens[span.start:span.end])}
    if span.confidence is not None:
        entity["confidence"] = round(span.confidence, 6)
    return entity


def prediction_record(sentence: Sentence, prediction: Prediction, token_confidence: bool = False) -> dict:
    """The JSON of one tagged sentence: tokens, tags and entities (``entity_record``). Character
    offsets are the input text's for raw text; for a sentence that came as tokens (CoNLL) they are
    its ``text``'s, the tokens joined by single spaces, which the record then carries."""
    record = {"tokens": sentence.tokens}
    offsets = sentence.offsets
    if not offsets:
        record["text"] = " ".join(sentence.tokens)
        offsets = joined_offsets(sentence.tokens)
    record["tags"] = list(prediction.tags)
    record["entities"] = [entity_record(span, sentence.tokens, offsets) for span in prediction.entities()]
    if token_confidence and prediction.token_confidences is not None:
        record["token_confidences"] = [round(value, 6) for value in prediction.token_confidences]
    return record


def conll_lines(sentence: Sentence, prediction: Prediction, confidence_column: bool = False) -> str:
    """CoNLL rows: token, middle columns, gold label (if any), predicted tag, and with
    ``confidence_column`` the marginal probability of the predicted tag."""
    rows = []
    for i, token in enumerate(sentence.tokens):
        fields = [token, *(sentence.columns[i] if sentence.columns else [])]
        if sentence.labels is not None:
            fields.append(sentence.labels[i])
        fields.append(prediction.tags[i])
        if confidence_column:
            fields.append(f"{prediction.token_confidences[i]:.4f}")
        rows.append(" ".join(fields) + "\n")
    return "".join(rows) + "\n"


def write_stream(pairs: Iterable[Tuple[Sentence, Prediction]], stream: TextIO, output_format: str,
                 token_confidence: bool = False) -> int:
    """Write CoNLL (``token_confidence``: a confidence column) or a JSON array as the pairs come;
    returns the number of sentences written."""
    count = 0
    if output_format == "json":
        stream.write("[")
        for count, (sentence, prediction) in enumerate(pairs, start=1):
            stream.write(("," if count > 1 else "") + "\n"
                         + json.dumps(prediction_record(sentence, prediction, token_confidence), ensure_ascii=False))
        stream.write("\n]\n")
        return count
    for count, (sentence, prediction) in enumerate(pairs, start=1):
        stream.write(conll_lines(sentence, prediction, token_confidence))
    return count


@contextlib.contextmanager
def output_stream(output: Optional[Path], stream: Optional[TextIO]):
    """``stream`` when given (standard output), else an atomic writer onto ``output``."""
    if output is None:
        yield stream if stream is not None else sys.stdout
        return
    with atomic_writer(output) as writer:
        yield writer


def stream_sentences(lines: LineSource, input_format: str) -> Iterator[Sentence]:
    if input_format == "conll":
        return conll_sentences(lines, lines.name)
    return text_sentences(lines, lines.document)


def nonempty(sentences: Iterator[Sentence], where) -> Iterator[Sentence]:
    """``sentences``; an input without one is an error naming it."""
    first = next(sentences, None)
    if first is None:
        raise DataFormatError("has no words to tag", where)
    yield first
    yield from sentences


def predict_stream(tagger: Tagger, lines: LineSource, input_format: str, output: Optional[Path] = None,
                   stream: Optional[TextIO] = None, *, output_format: str = "conll", batch_size: int = 128,
                   token_confidence: bool = False, min_confidence: Threshold = None) -> int:
    """Tag ``lines`` (CoNLL or raw text) a chunk at a time and write CoNLL or JSON to ``output`` (an
    atomic file) or ``stream``; returns the number of sentences. JSON entities always carry their
    confidence; ``token_confidence`` adds each token's (a CoNLL column, a JSON list)."""
    check_threshold(min_confidence, tagger.entity_types)  # before anything is read or written
    sentences = nonempty(stream_sentences(lines, input_format), lines.name)
    want_confidence = output_format == "json" or token_confidence or min_confidence is not None
    pairs = tag_stream(tagger, sentences, batch_size=batch_size, confidence=want_confidence,
                       min_confidence=min_confidence)
    with output_stream(output, stream) as writer:
        return write_stream(pairs, writer, output_format, token_confidence)



# Whole documents: span JSONL and Label Studio, in and out ----------------------------------------
def line_documents(lines: Sequence[str]) -> List[SpanDocument]:
    """Raw text as documents, one a line that is not blank (as Label Studio imports a text file)."""
    return [SpanDocument(str(number), line.rstrip("\r\n"), where=f"line {number}", line=number)
            for number, line in enumerate(lines, start=1) if line.strip()]


def read_for_prediction(lines: LineSource, input_format: str,
                        output_format: str) -> Tuple[List[Sentence], List[SpanDocument]]:
    """(the sentences to tag, the documents they come from) of a whole input. A span file's
    documents are all read, annotated or not; for span output, a CoNLL sentence is a document
    (its tokens joined by spaces) and so is a line of raw text; otherwise raw text is one document
    and CoNLL none (BRAT output makes one of its sentences, ``formats.sentences_with_offsets``)."""
    if input_format in SPAN_FORMATS:
        documents = read_span_documents(lines, input_format)
        sentences = [s for d in documents for s in unlabelled_sentences(d)]
    elif input_format == "conll":
        sentences, documents = list(conll_sentences(lines, lines.name)), []
        if output_format in SPAN_FORMATS:
            documents, sentences = documents_of_sentences(sentences)
    elif output_format in SPAN_FORMATS:
        documents = line_documents(list(lines))
        sentences = [s for d in documents for s in unlabelled_sentences(d)]
    else:
        read = list(lines)
        sentences = list(text_sentences(read, lines.document))
        documents = [SpanDocument(lines.document, "".join(read))]
    return list(nonempty(iter(sentences), lines.name)), documents


def write_documents(stream: TextIO, output_format: str, documents: Sequence[SpanDocument],
                    sentences: Sequence[Sentence], predictions: Sequence[Prediction], model_version: str) -> int:
    """Write tagged documents as span JSONL or Label Studio pre-annotations, entity and document
    confidences as scores; returns the number of documents."""
    tagged = tagged_documents(documents, sentences, [p.entities() for p in predictions],
                              [p.token_confidences for p in predictions])
    if output_format == "jsonl":
        return jsonl.write_documents(tagged, stream)
    return labelstudio.write_tasks(tagged, stream, model_version)

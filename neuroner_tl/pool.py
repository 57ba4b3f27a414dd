"""What ``select`` chooses among, read from every input format, and the chosen items written for annotation tools."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from . import jsonl, labelstudio
from .atomic import atomic_write_folder, atomic_writer
from .brat import read_brat_documents
from .conll import format_conll
from .corpus import Corpus, Sentence
from .errors import DataFormatError, NeuronerError
from .formats import detect_input_format
from .lines import LineSource, read_utf8_text
from .prediction import conll_sentences, line_documents
from .spans import SpanDocument, carried_fields, unlabelled_sentences, warn

PathLike = Union[str, Path]
SELECT_FORMATS = ("conll", "text", "jsonl", "labelstudio", "brat")  # what select reads and writes
DOCSTART = "-DOCSTART-"


@dataclasses.dataclass
class Item:
    """One thing to annotate: where it is (for the listing), its sentences (what is scored), its
    document (its text and identity, for a writer of another format; a CoNLL sentence's text is its
    tokens joined by spaces) and ``original``, what a writer of the input's own format writes back
    as it was: a CoNLL sentence's lines, a line of text, a JSONL record, a Label Studio task, a BRAT
    document's ``.ann`` text (None: an in-memory sentence)."""

    where: str
    sentences: List[Sentence]
    document: SpanDocument
    original: object = None

    @property
    def token_lists(self) -> List[List[str]]:
        return [s.tokens for s in self.sentences]

    def preview(self, width: int = 60) -> str:
        """The item's text on one line, cut to ``width`` characters."""
        text = " ".join(self.document.text.split())
        return text if len(text) <= width else text[: width - 3] + "..."


@dataclasses.dataclass
class Pool:
    """The items of one input, in its order; ``left_out``: Label Studio tasks already annotated."""

    input_format: str
    name: str
    items: List[Item]
    left_out: int = 0


def source_format(source: PathLike, input_format: Optional[str]) -> str:
    """The input's format: as given, ``brat`` for a folder, else ``formats.detect_input_format``."""
    if input_format is not None and input_format not in SELECT_FORMATS:
        raise NeuronerError(f"select reads {', '.join(SELECT_FORMATS)}, not {input_format!r}")
    if str(source) == "-":
        raise NeuronerError("select reads a file or a BRAT folder, not standard input: save the items to a file")
    if input_format is None and Path(source).is_dir():
        return "brat"
    if input_format == "brat":
        return input_format
    with LineSource(source) as lines:
        return detect_input_format(lines, input_format)


def output_format_for(input_format: str, output_format: Optional[str]) -> str:
    """What select writes: as asked, else the input's format; BRAT only from BRAT (it keeps the
    documents' files)."""
    chosen = output_format or input_format
    if chosen not in SELECT_FORMATS:
        raise NeuronerError(f"select writes {', '.join(SELECT_FORMATS)}, not {chosen!r}")
    if chosen == "brat" and input_format != "brat":
        raise NeuronerError("--format brat copies the chosen documents of a BRAT folder: give a BRAT folder, or "
                            "write conll, text, jsonl or labelstudio")
    return chosen


# Reading ---------------------------------------------------------------------------------------
def read_pool(source: Union[PathLike, Corpus], input_format: str) -> Pool:
    """The items of ``source`` in ``input_format`` (``source_format``), or of a ``Corpus`` (a
    sentence an item); an input without a word is an error naming it."""
    if isinstance(source, Corpus):
        pool = Pool("conll", source.path or "(in memory)", [conll_item(s, None, n) for n, s in
                                                            enumerate(source.sentences, start=1)])
    elif input_format == "brat":
        pool = brat_pool(Path(source))
    else:
        with LineSource(source) as lines:
            pool = READERS[input_format](list(lines), lines.name)
    if not any(s.tokens for item in pool.items for s in item.sentences):
        raise DataFormatError("has no words to choose from", pool.name)
    return pool


def conll_item(sentence: Sentence, lines: Optional[List[str]], number: int) -> Item:
    where = f"line {sentence.line}" if sentence.line else f"sentence {number}"
    document = SpanDocument(f"sentence {number}", " ".join(sentence.tokens), where=where, line=sentence.line or None)
    original = lines[sentence.line - 1: sentence.line - 1 + len(sentence)] if lines is not None else None
    return Item(where, [sentence], document, original)


def conll_pool(lines: List[str], name: str) -> Pool:
    """A CoNLL sentence an item; its lines are written back as they were."""
    sentences = list(conll_sentences(lines, name))
    return Pool("conll", name, [conll_item(s, lines, n) for n, s in enumerate(sentences, start=1)])


def text_pool(lines: List[str], name: str) -> Pool:
    """A line that is not blank an item (as Label Studio imports a text file)."""
    items = [Item(d.where, unlabelled_sentences(d), d, lines[d.line - 1]) for d in line_documents(lines)]
    return Pool("text", name, items)


def jsonl_pool(lines: List[str], name: str) -> Pool:
    """A record an item; the record is written back as it was, with the selection added."""
    documents, _ = jsonl.read_documents(lines, name)
    items = [Item(d.label() or f"line {d.line}", unlabelled_sentences(d), d, json.loads(lines[d.line - 1]))
             for d in documents]
    return Pool("jsonl", name, items)


def labelstudio_pool(lines: List[str], name: str) -> Pool:
    """A task an item; tasks already annotated (a live annotation, ``labelstudio.chosen_regions``) are
    left out, said in a warning."""
    content = "".join(lines)
    documents = labelstudio.read_documents(content, name)
    tasks = json.loads(content)
    tasks = [tasks] if isinstance(tasks, dict) else tasks
    items = [Item(d.where, unlabelled_sentences(d), d, task) for d, task in zip(documents, tasks) if not d.annotated]
    left_out = len(documents) - len(items)
    if left_out:
        warn(f"{name}: {left_out} of {len(documents)} tasks are annotated already and are left out")
    if not items:
        raise DataFormatError("has no task left to annotate: every task is annotated", name)
    return Pool("labelstudio", name, items, left_out)


def brat_pool(folder: Path) -> Pool:
    """A document (``name.txt``, its ``name.ann`` if any) an item."""
    corpus, texts = read_brat_documents(folder)
    by_document: Dict[str, List[Sentence]] = {name: [] for name in texts}
    for sentence in corpus.sentences:
        by_document[sentence.document].append(dataclasses.replace(sentence, labels=None))
    items = []
    for name, text in texts.items():
        ann = folder / f"{name}.ann"
        items.append(Item(name, by_document[name], SpanDocument(name, text, where=name, fields={"document": name}),
                          read_utf8_text(ann) if ann.exists() else ""))
    return Pool("brat", str(folder), items)


READERS = {"conll": conll_pool, "text": text_pool, "jsonl": jsonl_pool, "labelstudio": labelstudio_pool}


# Writing ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Chosen:
    """An item chosen: the item and its ``index`` in the input, its rank (1: annotate first), its score
    and what the score measures."""

    item: Item
    index: int
    rank: int
    score: float
    measure: str

    def record(self) -> dict:
        """What the output records of the choice: ``{"rank", "score", "measure"}``."""
        return {"rank": self.rank, "score": round(self.score, 6), "measure": self.measure}


def with_selection(record: dict, chosen: Chosen) -> dict:
    """``record`` with ``meta.selection`` set (a ``meta`` that is not an object is kept, and the
    selection goes to a top-level ``selection``)."""
    record = dict(record)
    meta = record.get("meta", {})
    if isinstance(meta, dict):
        record["meta"] = {**meta, "selection": chosen.record()}
    else:
        record["selection"] = chosen.record()
    return record


def conll_text(chosen: Chosen, input_format: str) -> str:
    """A CoNLL sentence's own lines, else (a document) ``-DOCSTART-`` and its sentences' tokens."""
    item = chosen.item
    if input_format == "conll":
        if item.original is None:
            return format_conll(item.sentences)
        return "".join(line.rstrip("\r\n") + "\n" for line in item.original) + "\n"
    return f"{DOCSTART}\n\n" + format_conll([Sentence(s.tokens) for s in item.sentences])


def text_line(chosen: Chosen, input_format: str) -> str:
    """A line of text as it was, else the item's text on one line."""
    item = chosen.item
    if input_format == "text":
        return item.original.rstrip("\r\n") + "\n"
    return " ".join(item.document.text.split()) + "\n"


def jsonl_record(chosen: Chosen, input_format: str) -> dict:
    """A record as it was, else ``{"id"?, "meta"?, ...fields, "text"}``; with the selection."""
    item = chosen.item
    if input_format == "jsonl":
        return with_selection(item.original, chosen)
    document = item.document
    return with_selection({**document.identity, **carried_fields(document), "text": document.text}, chosen)


def task_record(chosen: Chosen, input_format: str) -> dict:
    """A task as it was (a flat task put under ``data``), else ``{"id"?, "data": {...}}``; with the selection."""
    item = chosen.item
    if input_format == "labelstudio":
        task = item.original
        if not labelstudio.is_task(task):
            identity = {"id": task["id"]} if "id" in task else {}
            task = {**identity, "data": {k: v for k, v in task.items() if k != "id"}}
        return with_selection(task, chosen)
    document = item.document
    own, kept = labelstudio.task_identity(document)
    data = {**kept, **carried_fields(document), document.names.get("text_key", labelstudio.DEFAULT_TEXT_KEY):
            document.text}
    return with_selection({**own, "data": data}, chosen)


def write_chosen(output: PathLike, pool: Pool, chosen: Sequence[Chosen], output_format: str) -> None:
    """Write the chosen items, best first, in ``output_format`` (atomically): CoNLL, text lines, span
    JSONL, a Label Studio task list (its order is the import's) or a BRAT folder of the chosen
    documents' files."""
    source = pool.input_format
    if output_format == "brat":
        files = {}
        for choice in chosen:
            files[f"{choice.item.document.name}.txt"] = choice.item.document.text
            files[f"{choice.item.document.name}.ann"] = choice.item.original
        atomic_write_folder(output, files)
        return
    with atomic_writer(output) as stream:
        if output_format == "conll":
            stream.writelines(conll_text(c, source) for c in chosen)
        elif output_format == "text":
            stream.writelines(text_line(c, source) for c in chosen)
        elif output_format == "jsonl":
            stream.writelines(json.dumps(jsonl_record(c, source), ensure_ascii=False) + "\n" for c in chosen)
        else:
            stream.write("[" + ",".join("\n" + json.dumps(task_record(c, source), ensure_ascii=False)
                                        for c in chosen) + "\n]\n")


def ranked(pool: Pool, order: Sequence[int], scores: Sequence[float], measure: str) -> List[Chosen]:
    """The items at ``order`` (best first) with their ranks and scores."""
    return [Chosen(pool.items[index], index, rank, float(scores[index]), measure) for rank, index in
            enumerate(order, start=1)]


"""Label Studio tasks and annotations made from the generated chats, as Label Studio sends them to a backend."""

import re

from neuroner_tl import tags
from neuroner_tl.datasets import generate_corpus
from neuroner_tl.spans import joined_offsets

# a new type, "Greeting", that the generated data leave unannotated and a tiny update can learn
CONFIG = """<View>
  <Labels name="ner" toName="txt">
    <Label value="Person" background="red"/>
    <Label value="Organization" background="blue"/>
    <Label value="Greeting" background="green"/>
  </Labels>
  <Text name="txt" value="$text"/>
</View>"""
GREETING = re.compile(r"\b(Buongiorno|Buonasera|[Ss]alve|[Cc]iao)\b")
ANNOTATED_TYPES = ("Person", "Organization")
GREETING_TEXTS = ["Buongiorno , sono Oreste Roncalli e ho un problema con la bolletta .",
                  "salve , il numero da portare è 3791350915 , grazie ."]


def texts(count: int, seed: int = 40):
    return [" ".join(s.tokens) for s in generate_corpus("A", count, seed=seed).sentences]


def regions(sentence):
    """An annotator's regions of ``sentence``: its Person and Organization spans and every greeting."""
    text = " ".join(sentence.tokens)
    offsets = joined_offsets(sentence.tokens)
    found = []
    for span in tags.spans(sentence.labels):
        if span.type in ANNOTATED_TYPES:
            start, end = offsets[span.start][0], offsets[span.end - 1][1]
            found.append((start, end, span.type))
    found += [(m.start(), m.end(), "Greeting") for m in GREETING.finditer(text)]
    return [{"from_name": "ner", "to_name": "txt", "type": "labels",
             "value": {"start": start, "end": end, "text": text[start:end], "labels": [kind]}}
            for start, end, kind in sorted(found)]


def annotated_sentences(count: int, seed: int = 40):
    """(text, regions) of ``count`` generated chats."""
    return [(" ".join(s.tokens), regions(s)) for s in generate_corpus("A", count, seed=seed).sentences]


def annotation_event(task_id: int, text: str, result, project_id: int = 1, action: str = "ANNOTATION_CREATED",
                     annotation_id=None):
    """A webhook payload as Label Studio sends it when an annotation is submitted (``webhooks``' serializers)."""
    return {"action": action,
            "project": {"id": project_id, "label_config": CONFIG, "title": "chats", "task_number": 100},
            "task": {"id": task_id, "data": {"text": text}, "meta": {}, "project": project_id, "is_labeled": True},
            "annotation": {"id": annotation_id or 1000 + task_id, "task": task_id, "project": project_id,
                           "result": result, "was_cancelled": False, "ground_truth": False, "completed_by": 1,
                           "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-05T10:00:00Z",
                           "lead_time": 12.5}}


def predict_request(task_texts, project="1.1767607200", first_id=1):
    """``POST /predict`` as Label Studio's ``ml.api_connector`` sends it."""
    return {"tasks": [{"id": first_id + i, "data": {"text": text}, "meta": {}, "annotations": [], "predictions": [],
                       "project": 1} for i, text in enumerate(task_texts)],
            "project": project, "label_config": CONFIG,
            "params": {"login": None, "password": None, "context": None}}


def setup_request(project="1.1767607200", schema=CONFIG):
    return {"project": project, "schema": schema, "hostname": "http://localhost:8080",
            "access_token": "0123456789abcdef", "extra_params": None}

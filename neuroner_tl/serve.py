"""``neuroner-tl serve``: a small HTTP JSON service over one model, loaded once (FastAPI + uvicorn,
the optional extra ``pip install "neuroner-tl[serve]"``).

Routes:

- ``GET /health`` -> ``{"status": "ok"}`` once the model is loaded and warmed up;
- ``GET /model`` -> what a client needs: labels, entity types, scheme, hyperparameters, the package and
  format versions, a model id (a digest of the weights and vocabularies) and the limits below; never
  a path or a training file (``neuroner-tl info`` shows those);
- ``POST /tag`` with ``{"text": "..."}`` -> ``{"entities": [...]}``, or with ``{"texts": [...]}`` ->
  ``{"results": [[...], ...]}``; each entity is ``{"type", "text", "start", "end", "confidence"}`` with
  character offsets (end exclusive). ``"min_confidence"`` (a probability, or one per type with
  ``"*"`` for the rest) drops less probable entities;
- ``POST /tag/tokens`` with ``{"tokens": [["Angela", "Merkel"], ...]}`` -> per sentence its ``text``
  (the tokens joined by single spaces), tags, entities and token confidences, for callers that
  tokenize themselves; an entity's ``start``/``end`` are characters of that text and
  ``token_start``/``token_end`` its token indices (README, "Entity offsets").

A POST body must be sent as JSON (``Content-Type: application/json``): any other type, or none, is
refused with 415 and the type expected (``JsonOnly``). A text with a lone surrogate (a broken
``\\ud800`` escape) is refused with 422.

Every sentence of a request is tagged in the same batches. Limits (``Limits``), each refused with 413
and the reason: a body of more than ``max_bytes``, more than ``max_texts`` texts (or sentences), more
than ``max_tokens`` tokens in one request, or a sentence of more than ``max_sentence_tokens`` tokens.
They bound the time and the memory of one request: a server's memory stays flat under repeated
large requests (measured in the tests).
"""


import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any, List, Optional, Union

from .errors import NeuronerError

MAX_TEXTS = 1000
JSON_MEDIA_TYPE = "application/json"


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for (``neuroner-tl serve`` options of the same names)."""

    max_texts: int = MAX_TEXTS
    max_bytes: int = 1 << 20  # the request body
    max_tokens: int = 50_000  # every sentence of the request together
    max_sentence_tokens: int = 1000  # one sentence (the network's time axis)


class RequestTooLarge(NeuronerError):
    """A request beyond ``Limits``: answered with 413 and this message."""


def check_token_counts(sentences_tokens, limits: Limits) -> None:
    """The request's sentences (token counts) fit ``limits``."""
    total = 0
    for number, count in enumerate(sentences_tokens, start=1):
        if count > limits.max_sentence_tokens:
            raise RequestTooLarge(f"sentence {number} has {count} tokens; at most {limits.max_sentence_tokens} "
                                  f"per sentence (split the text, or serve with a larger --max-sentence-tokens)")
        total += count
        if total > limits.max_tokens:
            raise RequestTooLarge(f"more than {limits.max_tokens} tokens in one request; send fewer texts at once")


async def send_error(send, status: int, detail: str) -> None:
    """Answer a request with ``status`` and ``{"detail": ...}``, as FastAPI's own errors are."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def is_json_media_type(content_type: bytes) -> bool:
    """Whether a Content-Type header says JSON: ``application/json`` or a ``+json`` type, any parameters."""
    media = content_type.decode("latin-1").split(";")[0].strip().lower()
    return media == JSON_MEDIA_TYPE or (media.startswith("application/") and media.endswith("+json"))


class JsonOnly:
    """ASGI middleware: a POST whose body is not said to be JSON is refused with 415 naming the type
    expected, before anything reads the body (FastAPI would answer 422 about the body's shape)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            declared = dict(scope.get("headers") or []).get(b"content-type")
            if declared is None or not is_json_media_type(declared):
                shown = repr(declared.decode("latin-1")) if declared is not None else "none"
                return await send_error(send, 415, f"expected Content-Type: {JSON_MEDIA_TYPE}, got {shown}")
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` is refused with 413 before anything
    parses it (whatever its Content-Length says: the body is counted as it arrives)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(send)
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, send):
        await send_error(send, 413, f"the request body is larger than {self.max_bytes} bytes")
Threshold = Any  # a probability or {"TYPE": p, "*": p}, as in a request's JSON: checked by thresholds.check_threshold
                # (pydantic would take true for 1.0)


def missing_extra_message() -> Optional[str]:
    """Why ``serve`` cannot run here (None when it can), without importing the web stack."""
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        return (f"neuroner-tl serve needs the optional extra ({', '.join(missing)} not installed): "
                f"pip install \"neuroner-tl[serve]\"")
    return None


def create_app(model: Union[str, Path], max_texts: int = MAX_TEXTS, limits: Optional[Limits] = None,
               calibrated: bool = True):
    """The FastAPI application serving ``model`` (a model folder), wrapped in ``JsonOnly`` and
    ``BodyLimit``; the model is loaded here, once. ``limits`` (default ``Limits(max_texts=max_texts)``) bound each request."""
    from fastapi import FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    from . import __version__, api
    from .model_io import FORMAT_VERSION, model_id
    from .prediction import entity_record
    from .spans import joined_offsets
    from .tokenizer import split_sentences

    limits = limits or Limits(max_texts=max_texts)
    max_texts = limits.max_texts
    tagger = api.as_tagger(model, calibrated)
    tagger.tag("Warm up.")  # compile the decoder before the first request
    model_info = {"model_id": model_id(model), "neuroner_tl": __version__, "format_version": FORMAT_VERSION,
                  "labels": tagger.labels, "entity_types": tagger.entity_types,
                  "tag_scheme": tagger.hp.tag_scheme, "constrained_decoding": tagger.constrained,
                  "temperature": tagger.temperature, "calibrated": tagger.calibrated,
                  "hyperparameters": tagger.hp.to_dict(), "limits": dataclasses.asdict(limits)}

    class TextRequest(BaseModel):
        text: Optional[str] = Field(None, description="one text")
        texts: Optional[List[str]] = Field(None, description="several texts, tagged in the same batches")
        min_confidence: Threshold = None

    class TokensRequest(BaseModel):
        tokens: List[List[str]]
        min_confidence: Threshold = None

    app = FastAPI(title="neuroner_tl", description="Named entities with character offsets and confidence.")

    @app.exception_handler(RequestValidationError)
    async def malformed(request, error):
        """422 with the reasons, without echoing the input (which may not even be JSON: ``Infinity``)."""
        reasons = "; ".join(f"{'.'.join(str(part) for part in problem.get('loc', ()))}: {problem.get('msg')}"
                            for problem in error.errors())
        return JSONResponse(status_code=422, content={"detail": reasons})

    def checked(min_confidence: Threshold) -> Threshold:
        from .thresholds import check_threshold

        try:
            check_threshold(min_confidence, tagger.entity_types)
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return min_confidence

    def within_limit(count: int) -> None:
        if count > max_texts:
            raise HTTPException(status_code=413, detail=f"{count} items in one request; at most {max_texts}")

    def within_token_limits(counts) -> None:
        try:
            check_token_counts(counts, limits)
        except RequestTooLarge as error:
            raise HTTPException(status_code=413, detail=str(error)) from None

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/model")
    def model_route():
        return model_info

    @app.post("/tag")
    def tag(request: TextRequest):
        if (request.text is None) == (request.texts is None):
            raise HTTPException(status_code=422, detail="give either \"text\" or \"texts\"")
        threshold = checked(request.min_confidence)
        texts = [request.text] if request.text is not None else request.texts
        within_limit(len(texts))
        within_token_limits(len(sentence) for text in texts for sentence in split_sentences(text))
        try:
            entities = tagger.tag(texts, min_confidence=threshold)
        except NeuronerError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return {"entities": entities[0]} if request.text is not None else {"results": entities}

    @app.post("/tag/tokens")
    def tag_tokens(request: TokensRequest):
        within_limit(len(request.tokens))
        within_token_limits(len(tokens) for tokens in request.tokens)
        threshold = checked(request.min_confidence)
        try:
            predictions = tagger.predict_with_confidence(request.tokens, min_confidence=threshold)
        except NeuronerError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return {"results": [{"text": " ".join(tokens), "tags": p.tags,
                             "token_confidences": [round(c, 6) for c in p.token_confidences],
                             "entities": [entity_record(s, tokens, joined_offsets(tokens)) for s in p.entities()]}
                            for tokens, p in zip(request.tokens, predictions)]}

    return JsonOnly(BodyLimit(app, limits.max_bytes))


def run_server(model: Union[str, Path], host: str = "127.0.0.1", port: int = 8000, max_texts: int = MAX_TEXTS,
               log_level: str = "info", limits: Optional[Limits] = None, calibrated: bool = True) -> None:
    """Load ``model`` and serve it until interrupted."""
    problem = missing_extra_message()
    if problem:
        raise NeuronerError(problem)
    import uvicorn

    uvicorn.run(create_app(model, max_texts, limits, calibrated), host=host, port=port, log_level=log_level)

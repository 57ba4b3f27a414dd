"""``neuroner-tl serve``: a small HTTP JSON service over one model, loaded once (FastAPI + uvicorn,
the optional extra ``pip install "neuroner-tl[serve]"``).

Routes:

- ``GET /health`` -> ``{"status": "ok"}`` once the model is loaded and warmed up;
- ``GET /model`` -> labels, entity types, scheme, hyperparameters and where the model was trained;
- ``POST /tag`` with ``{"text": "..."}`` -> ``{"entities": [...]}``, or with ``{"texts": [...]}`` ->
  ``{"results": [[...], ...]}``; each entity is ``{"type", "text", "start", "end", "confidence"}`` with
  character offsets (end exclusive). ``"min_confidence"`` (a probability, or one per type with
  ``"*"`` for the rest) drops less probable entities;
- ``POST /tag/tokens`` with ``{"tokens": [["Angela", "Merkel"], ...]}`` -> per sentence its tags,
  entities (token offsets) and token confidences, for callers that tokenize themselves.

Every sentence of a request is tagged in the same batches. A request of more than ``max_texts``
texts (or sentences) is refused with 413.
"""


import importlib.util
from pathlib import Path
from typing import Any, List, Optional, Union

from .errors import NeuronerError

MAX_TEXTS = 1000
Threshold = Any  # a probability or {"TYPE": p, "*": p}, as in a request's JSON: checked by tagger.check_threshold
                # (pydantic would take true for 1.0)


def missing_extra_message() -> Optional[str]:
    """Why ``serve`` cannot run here (None when it can), without importing the web stack."""
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        return (f"neuroner-tl serve needs the optional extra ({', '.join(missing)} not installed): "
                f"pip install \"neuroner-tl[serve]\"")
    return None


def create_app(model: Union[str, Path], max_texts: int = MAX_TEXTS):
    """The FastAPI application serving ``model`` (a model folder); the model is loaded here, once."""
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel, Field

    from . import api

    tagger = api.load_tagger(model)
    tagger.tag("Warm up.")  # compile the decoder before the first request
    description = api.info(tagger)
    model_info = {"model": str(Path(model).resolve()), "labels": tagger.labels, "entity_types": tagger.entity_types,
                  "tag_scheme": tagger.hp.tag_scheme, "constrained_decoding": tagger.constrained,
                  "hyperparameters": tagger.hp.to_dict(), "trained_on": description["provenance"].get("trained_on"),
                  "updates": description["provenance"].get("updates", [])}

    class TextRequest(BaseModel):
        text: Optional[str] = Field(None, description="one text")
        texts: Optional[List[str]] = Field(None, description="several texts, tagged in the same batches")
        min_confidence: Threshold = None

    class TokensRequest(BaseModel):
        tokens: List[List[str]]
        min_confidence: Threshold = None

    app = FastAPI(title="neuroner_tl", description="Named entities with character offsets and confidence.")

    def checked(min_confidence: Threshold) -> Threshold:
        from .tagger import check_threshold

        try:
            check_threshold(min_confidence, tagger.entity_types)
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return min_confidence

    def within_limit(count: int) -> None:
        if count > max_texts:
            raise HTTPException(status_code=413, detail=f"{count} items in one request; at most {max_texts}")

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
        if request.text is not None:
            return {"entities": tagger.tag(request.text, min_confidence=threshold)}
        within_limit(len(request.texts))
        return {"results": tagger.tag(request.texts, min_confidence=threshold)}

    @app.post("/tag/tokens")
    def tag_tokens(request: TokensRequest):
        within_limit(len(request.tokens))
        threshold = checked(request.min_confidence)
        try:
            predictions = tagger.predict_with_confidence(request.tokens, min_confidence=threshold)
        except NeuronerError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return {"results": [{"tags": p.tags, "token_confidences": [round(c, 6) for c in p.token_confidences],
                             "entities": [{"type": s.type, "start": s.start, "end": s.end,
                                           "confidence": round(s.confidence, 6)} for s in p.entities()]}
                            for p in predictions]}

    return app


def run_server(model: Union[str, Path], host: str = "127.0.0.1", port: int = 8000, max_texts: int = MAX_TEXTS,
               log_level: str = "info") -> None:
    """Load ``model`` and serve it until interrupted."""
    problem = missing_extra_message()
    if problem:
        raise NeuronerError(problem)
    import uvicorn

    uvicorn.run(create_app(model, max_texts), host=host, port=port, log_level=log_level)

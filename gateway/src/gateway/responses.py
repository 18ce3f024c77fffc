"""Answers that are serialised once: a route returns `ModelResponse(model)` and FastAPI neither
validates the model again against the route's `response_model` nor serialises it a second time.

The route keeps `response_model=` so that the OpenAPI document is unchanged; the model must be an
instance of that response model (the schema built it, and validated it, from the service's answer).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.responses import Response


class ModelResponse(Response):
    """JSON of a Pydantic model, as FastAPI would write it for the route's response_model
    (field aliases, no fields left out)."""

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(model.model_dump_json(by_alias=True).encode(), status_code, **kwargs)

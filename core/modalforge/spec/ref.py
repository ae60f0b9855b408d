"""A reference to a registered component in a spec: ``{name, params}`` or a bare name.

Its own module so that the engine's settings (:mod:`modalforge.engine.config`) can name
components (``train.optimizer``) without importing the whole spec schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ComponentRef(BaseModel):
    """A registered component by name, with its parameters. A bare string means no parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="registered component name (see `modalforge components`)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="constructor parameters, checked against its signature"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

"""The base for request bodies: unknown fields refused, whitespace trimmed, and text that
PostgreSQL cannot store (NUL, lone UTF-16 surrogates) refused with a 422."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

# A row id in a path: a positive bigint (a larger number would reach SQL as numeric)
Id = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]
# A row id in a body, with the same bounds
RowId = Annotated[int, Field(ge=1, le=9_223_372_036_854_775_807)]


def storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("text is not valid Unicode") from e
    return value


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value) if isinstance(value, str) else value

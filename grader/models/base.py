"""The base of every model: frozen, unknown fields rejected.

A typo in a spec or a forged field in a report is then an error rather than silently ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Base for every model here: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

"""`grader audit`'s result: one figure of how often a wrong solution escapes.

Plain data, on its own so that the renderer can show figures without importing the audit
(which runs the reference and, with it, the sandbox package).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """How many grading seeds a wrong solution escapes on."""

    kind: str  # "range", "pair", "values", "calls", "mistake" or "random"
    subject: str  # the parameter(s), or the mistake's id
    description: str
    escapes: int
    seeds: int
    # Whether max_escape applies: figures that no affordable design can hold (a solution
    # wrong on a random tenth of its calls) are shown, not held.
    held: bool = True

    @property
    def rate(self) -> float:
        return self.escapes / self.seeds if self.seeds else 0.0

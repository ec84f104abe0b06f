"""The grader's data: problem specs in, score reports out, by audience.

- `spec`: problem specs and the cases drawn from them (what staff write, packs carry).
- `protocol`: what crosses the process boundary (the request to a worker, its messages).
- `status`: report statuses and case reasons, and the one table that picks the headline.
- `report`: the score report (what students, staff and every renderer read).

Every model is frozen and forbids unknown fields (`base.Frozen`), so a typo in a spec or a
forged field in a report is an error rather than silently ignored. Every field carries a
description, so that `grader schema` prints a JSON schema that documents itself. Every public
name is re-exported here: `from grader.models import Report` works as before the split.
"""

from __future__ import annotations

from grader.models.base import Frozen
from grader.models.protocol import (
    CaseOutcome,
    CaseOutcomeKind,
    CellSpan,
    ConfinedMessage,
    Confinement,
    DoneMessage,
    ErrorInfo,
    Frame,
    Isolation,
    LoadedMessage,
    LoadFailedMessage,
    OutcomeMessage,
    RunRequest,
    SandboxFailedMessage,
    StartMessage,
    WorkerMessage,
)
from grader.models.report import (
    CaseResult,
    Hint,
    LeftOut,
    NotebookInfo,
    OutputCheck,
    PracticeInfo,
    ProblemInfo,
    Report,
    SubmissionInfo,
    Versions,
)
from grader.models.spec import (
    FULL_ARRAY_LIMIT,
    Arg,
    ArrayArg,
    AuditSpec,
    Case,
    CaseSet,
    EdgeCase,
    ExceptionHint,
    IntParameter,
    LengthOfParameter,
    Limits,
    Mistake,
    Output,
    OutputKind,
    Parameter,
    ProblemSpec,
    ReferenceSpec,
    ScalarArg,
    ServiceSpec,
    VectorDraw,
    VectorParameter,
)
from grader.models.status import HEADLINE, CaseReason, Status, headline_status

__all__ = [
    "FULL_ARRAY_LIMIT",
    "HEADLINE",
    "Arg",
    "ArrayArg",
    "AuditSpec",
    "Case",
    "CaseOutcome",
    "CaseOutcomeKind",
    "CaseReason",
    "CaseResult",
    "CaseSet",
    "CellSpan",
    "ConfinedMessage",
    "Confinement",
    "DoneMessage",
    "EdgeCase",
    "ErrorInfo",
    "ExceptionHint",
    "Frame",
    "Frozen",
    "Hint",
    "IntParameter",
    "Isolation",
    "LeftOut",
    "LengthOfParameter",
    "Limits",
    "LoadFailedMessage",
    "LoadedMessage",
    "Mistake",
    "NotebookInfo",
    "OutcomeMessage",
    "Output",
    "OutputCheck",
    "OutputKind",
    "Parameter",
    "PracticeInfo",
    "ProblemInfo",
    "ProblemSpec",
    "ReferenceSpec",
    "Report",
    "RunRequest",
    "SandboxFailedMessage",
    "ScalarArg",
    "ServiceSpec",
    "StartMessage",
    "Status",
    "SubmissionInfo",
    "VectorDraw",
    "VectorParameter",
    "Versions",
    "WorkerMessage",
    "headline_status",
]

"""The grader's own faults. A student's mistake is never one of these: it is a report.

GraderError                 anything the grader cannot go on from; exit code 2
├── UsageError              a bad flag or argument combination
├── SubmissionNotFound      the file to grade does not exist or is not a file
├── ProblemError            a problem cannot be found, chosen or loaded
│   ├── UnknownProblem      no spec with that id, or none matching the file
│   │   └── ReferenceMissing the spec is there, its reference solution is not
│   ├── InvalidPack         a practice pack that is unreadable, invalid or tampered with
│   └── InvalidSpec         a spec file that does not parse or validate
├── ReferenceFailed         the reference solution failed: the grader is misconfigured
├── SandboxUnavailable      the isolation asked for cannot be set up here
├── ArtifactError           a pull request's CI artifact is missing, malformed or forged
└── PostError               GitHub refused a check run, or could not be reached
"""

from __future__ import annotations


class GraderError(Exception):
    """Base of the grader's own faults; the message says what to do."""


class UsageError(GraderError):
    """A bad flag or argument combination."""


class SubmissionNotFound(GraderError):
    """The submission path does not exist or is not a regular file (a FIFO, a device)."""


class ProblemError(GraderError):
    """A problem cannot be found, chosen or loaded."""


class UnknownProblem(ProblemError):
    """No spec with that id, or no spec matching the submission."""


class ReferenceMissing(UnknownProblem):
    """The spec is there but its reference solution is not (a student's machine)."""

    def __init__(self, message: str, problem_id: str) -> None:
        super().__init__(message)
        self.problem_id = problem_id


class InvalidPack(ProblemError):
    """A practice pack that cannot be read, does not validate, or was changed after it was made."""


class InvalidSpec(ProblemError):
    """A spec file that does not parse or validate."""


class ReferenceFailed(GraderError):
    """The reference solution could not produce expected outputs."""


class SandboxUnavailable(GraderError):
    """The isolation asked for (or required) cannot be set up here."""


class ArtifactError(GraderError):
    """A pull request's CI artifact is missing, malformed or disagrees with the event."""


class PostError(GraderError):
    """GitHub refused the check run, or could not be reached."""

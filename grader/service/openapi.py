"""The service's HTTP API as an OpenAPI 3.1 description, served at `GET /api/openapi.json`.

Written here, route by route, next to the pydantic models of the JSON bodies, whose schemas
pydantic generates (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). The API's answers are
built from these same models (`app._summary`), and tests/test_serve_openapi.py checks that
every route the app has is described here, and nothing more, with each status it answers,
and validates real answers against the schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from grader import __version__
from grader.models import Report

OPENAPI_PATH = "/api/openapi.json"
REF = "#/components/schemas/{model}"


class SubmissionSummary(BaseModel):
    """One submission, as a list shows it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Random 128-bit id (hex).")
    student: str = Field(description="Who submitted it (from the token).")
    problem: str = Field(description="Problem id.")
    file: str = Field(description="The upload's file name: a label only.")
    submitted: str | None = Field(description="When it was accepted (ISO 8601, UTC).")
    state: Literal["queued", "running", "done"] = Field(description="Where it is.")
    position: int | None = Field(description="Place in the queue (1 = next), while queued.")
    score: float | None = Field(description="Points earned, when done.")
    max_score: float | None = Field(description="Points available, when done.")
    status: str | None = Field(description="The report's status, when done.")


class SubmissionAccepted(SubmissionSummary):
    """The answer to an upload (202): the submission, and where to ask about it."""

    url: str = Field(description="The submission's own address: GET it for the verdict.")


class SubmissionDetail(SubmissionSummary):
    """One submission, with the student's view of its report once it is done."""

    report: Report | None = Field(description="The student view of the report, when done.")


class SubmissionList(BaseModel):
    """The caller's own submissions, newest first (staff: everyone's)."""

    model_config = ConfigDict(extra="forbid")

    submissions: list[SubmissionSummary]


class Error(BaseModel):
    """A refused request: what is wrong and what to do."""

    error: str = Field(description="For people: what went wrong and what to do.")
    next_allowed: str | None = Field(
        None, description="429 for the hourly limit only: when the next upload is accepted."
    )


MODELS: tuple[type[BaseModel], ...] = (
    SubmissionSummary,
    SubmissionAccepted,
    SubmissionDetail,
    SubmissionList,
    Error,
)

_HTML = {"text/html": {"schema": {"type": "string"}}}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _page_error(description: str) -> dict[str, Any]:
    return {"description": description + " (an HTML page saying so)", "content": _HTML}


def _json(model: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
    }


_UNAUTHORIZED = _error("No token, a malformed Authorization header, or an unknown token.")
_REDIRECT = {"description": "See Other: the page to go to (`Location`)."}
_PATH_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The submission's id.",
}
_PATH_PROBLEM = {
    "name": "problem",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "Problem id.",
}
_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "contentMediaType": "application/octet-stream",
                        "description": "The solution: a .py file or a .ipynb notebook, 1 MiB "
                        "at most.",
                    },
                    "problem": {
                        "type": "string",
                        "description": "Problem id; optional when there is one problem, or "
                        "when the file defines exactly one problem's function.",
                    },
                },
            }
        }
    },
}


def _form(*fields: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {name: {"type": "string"} for name in fields},
                }
            }
        },
    }


def _paths() -> dict[str, Any]:
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    cookie: list[dict[str, list[str]]] = [{"cookie": []}]
    return {
        "/api/submissions": {
            "post": {
                "operationId": "submit",
                "summary": "Upload a solution to be graded.",
                "security": bearer,
                "requestBody": _UPLOAD,
                "responses": {
                    "202": _json("SubmissionAccepted", "Accepted and stored; graded in turn."),
                    "400": _error("Malformed multipart, no file, or an unknown problem."),
                    "401": _UNAUTHORIZED,
                    "403": _error("The staff token cannot submit."),
                    "413": _error("The file (or the body) is larger than 1 MiB."),
                    "415": _error("Not multipart/form-data, or not a .py or .ipynb file."),
                    "429": _error(
                        "Too many submissions waiting, or the problem's hourly limit "
                        "(`next_allowed` and `Retry-After` say when to retry)."
                    ),
                },
            },
            "get": {
                "operationId": "listSubmissions",
                "summary": "The caller's submissions, newest first (staff: everyone's).",
                "security": bearer,
                "responses": {
                    "200": _json("SubmissionList", "The submissions."),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        "/api/submissions/{id}": {
            "get": {
                "operationId": "getSubmission",
                "summary": "A submission's state, queue position and, when done, its verdict.",
                "security": bearer,
                "parameters": [_PATH_ID],
                "responses": {
                    "200": _json("SubmissionDetail", "The submission."),
                    "401": _UNAUTHORIZED,
                    "404": _error("No such submission of the caller's (another's alike)."),
                },
            }
        },
        "/api/grades.csv": {
            "get": {
                "operationId": "grades",
                "summary": "Staff: each student's latest graded submission, as a gradebook.",
                "security": bearer,
                "parameters": [
                    {
                        "name": "problem",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Problem id (optional when there is one).",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "`grader batch`'s grades.csv format.",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "400": _error("Several problems and none named."),
                    "401": _UNAUTHORIZED,
                    "403": _error("Not the staff token."),
                    "404": _error("No such problem."),
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This description.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/": {
            "get": {
                "operationId": "home",
                "summary": "The page: sign-in, or the caller's submissions and upload form.",
                "security": [{}, *cookie],
                "responses": {"200": {"description": "The page.", "content": _HTML}},
            }
        },
        "/login": {
            "post": {
                "operationId": "login",
                "summary": "Sign in with a token (kept in an HttpOnly, SameSite=Strict cookie).",
                "security": [],
                "requestBody": _form("token"),
                "responses": {
                    "303": _REDIRECT,
                    "400": _page_error("A malformed form."),
                    "401": _page_error("Unknown token."),
                    "403": _page_error("Posted from another site."),
                    "413": _page_error("The form is larger than 4 KiB."),
                },
            }
        },
        "/logout": {
            "post": {
                "operationId": "logout",
                "summary": "Sign out (forget the cookie).",
                "security": cookie,
                "requestBody": _form("csrf"),
                "responses": {
                    "303": _REDIRECT,
                    "400": _page_error("A malformed form."),
                    "403": _page_error("Posted from another site, or a stale CSRF token."),
                    "413": _page_error("The form is larger than 4 KiB."),
                },
            }
        },
        "/submit": {
            "post": {
                "operationId": "submitForm",
                "summary": "The page's upload form (the API's upload, plus a CSRF token).",
                "security": cookie,
                "requestBody": _UPLOAD,
                "responses": {
                    "303": _REDIRECT,
                    **{
                        status: _page_error(text)
                        for status, text in (
                            ("400", "Malformed multipart, no file, or an unknown problem."),
                            ("403", "Posted from another site, a stale CSRF token, or staff."),
                            ("413", "The file is larger than 1 MiB."),
                            ("415", "Not a .py or .ipynb file."),
                            ("429", "Too many waiting, or the hourly limit."),
                        )
                    },
                },
            }
        },
        "/submissions/{id}": {
            "get": {
                "operationId": "submissionPage",
                "summary": "A submission's page: its place in the queue, then its verdict.",
                "security": cookie,
                "parameters": [_PATH_ID],
                "responses": {
                    "200": {"description": "The page.", "content": _HTML},
                    "303": _REDIRECT,
                    "404": _page_error("No such submission of the caller's."),
                },
            }
        },
        "/staff/{problem}/": {
            "get": {
                "operationId": "staffBatch",
                "summary": "Staff: the batch page over each student's latest graded submission.",
                "security": cookie,
                "parameters": [_PATH_PROBLEM],
                "responses": {
                    "200": {"description": "The batch page.", "content": _HTML},
                    "403": _page_error("Not signed in as staff."),
                    "404": _page_error("No such problem."),
                },
            }
        },
        "/staff/{problem}/{name}": {
            "get": {
                "operationId": "staffFile",
                "summary": "Staff: a file the batch page links: grades.csv, <student>.html "
                "or <student>.json (the staff report).",
                "security": cookie,
                "parameters": [
                    _PATH_PROBLEM,
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "grades.csv, <student>.html or <student>.json.",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "text/html": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"$ref": REF.format(model="Report")}},
                        },
                    },
                    "403": _page_error("Not signed in as staff."),
                    "404": _page_error("No such problem, or no graded submission of that student."),
                },
            }
        },
    }


def description() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a new dict each call)."""
    _, schemas = models_json_schema(
        [(model, "serialization") for model in MODELS], ref_template=REF
    )
    paths = _paths()
    for operations in paths.values():
        for operation in operations.values():
            responses = operation["responses"]
            responses.setdefault("405", {"description": "Another method than those listed."})
            if operation["operationId"] != "openapi":
                responses.setdefault("500", _fault())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "grader serve",
            "version": __version__,
            "description": "Students upload solutions and read their verdicts; staff read "
            'the gradebook. Errors under /api/ are JSON `{"error": ...}`; the page\'s are '
            "HTML. See docs/serving.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A student's token from the roster, or the staff token.",
                },
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "grader_token",
                    "description": "The page's session, set by POST /login.",
                },
            },
        },
    }


def _fault() -> dict[str, Any]:
    return {
        "description": "A fault of the grader's own (logged): JSON under /api/, else a page.",
        "content": {
            "application/json": {"schema": {"$ref": REF.format(model="Error")}},
            "text/html": {"schema": {"type": "string"}},
        },
    }

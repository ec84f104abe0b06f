"""The HTTP side of `grader serve`: the JSON API, the page, and running it under uvicorn.

Everything a request carries is hostile: the body is read as a stream and cut off past
`MAX_BODY` (413 before the rest is read), the multipart parser is bounded (one file, a few
small fields), the file name is used only for its suffix and as a label shown through
`safe_text`, and the student id comes from the token alone. Bad input gets a 4xx with a JSON
`{"error": ...}` saying what is wrong and what to do (an HTML page for the page's forms);
a 500 means a fault of the grader's own.

API (Bearer tokens):
    POST /api/submissions         multipart: file (.py or .ipynb), problem (optional) -> 202
    GET  /api/submissions/{id}    state, queue position, the student view of the report
    GET  /api/submissions         the caller's own (staff: everyone's)
    GET  /api/grades.csv          staff: each student's latest graded submission, batch format
    GET  /api/openapi.json        this API as OpenAPI 3.1 (grader/service/openapi.py)
Page (token in an HttpOnly, SameSite=Strict cookie; forms carry a CSRF token):
    GET / ; POST /login, /logout, /submit ; GET /submissions/{id} ; GET /staff/{problem}/
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import logging
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from anyio import to_thread
from rich.console import Console
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from grader import safe_text
from grader.cases import random_seed
from grader.engine import Graded
from grader.gradebook import BatchResult, gradebook_csv, summarize
from grader.grading import MAX_SOURCE_BYTES
from grader.ipynb import SUBMISSION_SUFFIXES as ALLOWED_SUFFIXES
from grader.models import Report
from grader.problems import Problem
from grader.render import batch_page, print_report, student_page
from grader.service.http import Limits, uvicorn_options
from grader.service.openapi import OPENAPI_PATH, SubmissionSummary, description
from grader.service.roster import Caller, Roster
from grader.service.store import RateLimited, StillWaiting, Store, Submission

log = logging.getLogger("grader.serve")

MAX_BODY = MAX_SOURCE_BYTES + 64 * 1024  # the file, plus room for multipart headers and fields
MAX_FORM = 4096  # the sign-in and sign-out forms
MAX_NAME_CHARS = 200
COOKIE = "grader_token"
REFRESH_SECONDS = 2


class Dispatcher(Protocol):
    """What grades queued submissions: the local pool, or the Redis queue's sender."""

    def start(self) -> None: ...

    def notify(self) -> None: ...

    def stop(self) -> None: ...

    def seed_for(self, problem_id: str) -> int:
        """A fresh seed for one upload (never another student's)."""
        ...

    def seed_unused(self, problem_id: str, seed: int) -> None:
        """The upload `seed_for` gave `seed` to was refused (never graded, never shown)."""
        ...


class ApiError(Exception):
    """A request refused, with a message for the person who sent it."""

    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class _TooLarge(Exception):
    pass


@dataclass
class Service:
    """What the app serves from."""

    store: Store
    roster: Roster
    problems: dict[str, Problem]  # the specs (in queue mode the reference may be absent)
    rate: int | None = None  # --rate: overrides each spec's submissions_per_hour
    dispatcher: Dispatcher | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def per_hour(self, problem: str) -> int | None:
        if self.rate is not None:
            return self.rate
        return self.problems[problem].spec.service.submissions_per_hour

    def csrf(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------
# Identity


def _bearer(service: Service, request: Request) -> Caller:
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            401,
            "no token: send your token in the header 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "the Authorization header must read 'Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    caller = service.roster.caller(token.strip())
    if caller is None:
        raise ApiError(
            401,
            "unknown token: check it (your course staff gave it to you)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return caller


def _cookie(service: Service, request: Request) -> tuple[Caller, str] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    caller = service.roster.caller(token)
    return None if caller is None else (caller, token)


# --------------------------------------------------------------------------------------------
# Uploads


@dataclass(frozen=True)
class Upload:
    file_name: str
    suffix: str
    content: bytes
    fields: dict[str, str]


async def _read_upload(request: Request) -> Upload:
    """The multipart body's file and small fields; 413 as soon as the body is too large."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            415,
            "send the submission as multipart/form-data with the file in the field 'file' "
            "(curl -F file=@solution.py ...)",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise _too_large()

    async def limited() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > MAX_BODY:
                raise _TooLarge
            yield chunk

    parser = MultiPartParser(
        request.headers, limited(), max_files=1, max_fields=8, max_part_size=16 * 1024
    )
    try:
        form = await parser.parse()
    except _TooLarge:
        raise _too_large() from None
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart body: {exc.message}") from None
    except Exception as exc:  # the parser's own errors on garbage (a missing boundary, ...)
        raise ApiError(
            400, f"malformed multipart body ({type(exc).__name__}): send it as curl -F does"
        ) from None
    try:
        return await _upload_of(form)
    finally:
        await form.close()  # the spooled file of a refused upload too


async def _upload_of(form: FormData) -> Upload:
    upload = form.get("file")
    if upload is None:
        raise ApiError(400, "the field 'file' is missing: send your solution as -F file=@FILE")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "the field 'file' must be a file, not text: use -F file=@FILE")
    # The name is a label only: what follows the last slash of either kind, bounded.
    raw_name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not raw_name:
        raise ApiError(400, "the uploaded file has no name: name it, e.g. solution.py")
    name = raw_name[:MAX_NAME_CHARS]
    suffix = Path(raw_name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        shown = safe_text.visible_controls(suffix) if suffix else "no suffix"
        raise ApiError(
            415,
            f"only Python files (.py) and notebooks (.ipynb) are graded; this file has "
            f"{shown}: upload your solution file",
        )
    content = await upload.read()
    if len(content) > MAX_SOURCE_BYTES:
        raise _too_large()
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    return Upload(file_name=name, suffix=suffix, content=content, fields=fields)


def _too_large() -> ApiError:
    return ApiError(
        413,
        f"the file is larger than {MAX_SOURCE_BYTES // 1024} KiB, the most a submission may be: "
        f"upload only your solution",
    )


_DEF = re.compile(r"\bdef\s+(\w+)\s*\(")


def _choose_problem(service: Service, requested: str | None, upload: Upload) -> str:
    known = ", ".join(sorted(service.problems))
    if requested:
        if requested not in service.problems:
            shown = safe_text.visible_controls(requested[:100])
            raise ApiError(400, f"unknown problem {shown!r}: choose one of {known}")
        return requested
    if len(service.problems) == 1:
        return next(iter(service.problems))
    # Not by parsing the file: that runs here, on the event loop, and a file made to be slow
    # to parse (1 MiB of nested brackets: seconds) would stall every request. A `def NAME(`
    # anywhere in the text (a .py, or a notebook's JSON) is enough to pick a problem.
    text = upload.content.decode("utf-8", errors="replace")
    names = set(_DEF.findall(text))
    matching = [pid for pid, p in service.problems.items() if p.spec.function in names]
    if len(matching) == 1:
        return matching[0]
    raise ApiError(
        400, f"cannot tell which problem this file answers: send the field 'problem' ({known})"
    )


async def _submit(service: Service, caller: Caller, upload: Upload) -> Submission:
    if caller.staff or caller.student is None:
        raise ApiError(403, "the staff token cannot submit: use a student's token")
    problem = _choose_problem(service, upload.fields.get("problem", "").strip() or None, upload)

    def add() -> Submission | RateLimited | StillWaiting:
        dispatcher = service.dispatcher
        seed = random_seed() if dispatcher is None else dispatcher.seed_for(problem)
        added = service.store.add(
            student=str(caller.student),
            problem=problem,
            file_name=upload.file_name,
            suffix=upload.suffix,
            content=upload.content,
            sha256=hashlib.sha256(upload.content).hexdigest(),
            seed=seed,
            per_hour=service.per_hour(problem),
        )
        if dispatcher is not None and isinstance(added, RateLimited | StillWaiting):
            dispatcher.seed_unused(problem, seed)  # refused uploads do not drain ready seeds
        return added

    added = await to_thread.run_sync(add)
    if isinstance(added, StillWaiting):
        raise ApiError(
            429,
            f"{added.waiting} of your submissions to {problem} are still waiting for their "
            f"verdicts: submit again when one has its verdict",
            headers={"Retry-After": str(REFRESH_SECONDS * 5)},
        )
    if isinstance(added, RateLimited):
        when = datetime.fromtimestamp(added.next_allowed, UTC)
        wait = max(1, int(added.next_allowed - datetime.now(UTC).timestamp()) + 1)
        raise ApiError(
            429,
            f"at most {added.limit} submissions per hour to {problem}: the next one is "
            f"accepted from {when.isoformat(timespec='seconds')}",
            headers={"Retry-After": str(wait)},
            next_allowed=when.isoformat(timespec="seconds"),
        )
    if service.dispatcher is not None:
        service.dispatcher.notify()
    log.info("accepted submission %s (%s, %s)", added.id, problem, added.student)
    return added


# --------------------------------------------------------------------------------------------
# Views of a submission


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def _student_report(submission: Submission) -> Report | None:
    if submission.report is None:
        return None
    return Graded(Report.model_validate_json(submission.report)).student


def _summary(service: Service, submission: Submission) -> dict[str, Any]:
    """The submission as the API shows it (built through the model its description names)."""
    return SubmissionSummary(
        id=submission.id,
        student=submission.student,
        problem=submission.problem,
        file=submission.file_name,
        submitted=_iso(submission.submitted),
        state=submission.state,
        position=service.store.position(submission),
        score=submission.score,
        max_score=submission.max_score,
        status=submission.status,
    ).model_dump(mode="json")


def _owned(service: Service, caller: Caller, submission_id: str) -> Submission:
    """The submission, if the caller may see it; 404 alike for another's and a missing one
    (so ids cannot be probed)."""
    submission = service.store.get(submission_id)
    if submission is None or not (caller.staff or submission.student == caller.student):
        raise ApiError(404, "no such submission of yours: check the id")
    return submission


def verdict_text(report: Report) -> str:
    """The verdict exactly as `grader check` prints it, as plain text (every student string
    in it already went through `safe_text.terminal`; the page escapes it as HTML)."""
    console = Console(
        file=io.StringIO(), record=True, width=110, color_system=None, force_terminal=False
    )
    print_report(report, console)
    return console.export_text()


# --------------------------------------------------------------------------------------------
# Gradebook and staff page


def _latest_result(service: Service, problem: str) -> BatchResult:
    """Each student's latest graded submission to the problem, as a batch's result."""
    latest = service.store.latest_done(problem)
    reports = {
        student: Report.model_validate_json(sub.report)
        for student, sub in latest.items()
        if sub.report is not None
    }
    seed = next((r.seed for r in reports.values() if r.seed is not None), 0)
    return BatchResult(seed=seed, reports=reports)


def _problem_param(service: Service, request: Request) -> str:
    problem = request.query_params.get("problem")
    if problem is None:
        if len(service.problems) == 1:
            return next(iter(service.problems))
        known = ", ".join(sorted(service.problems))
        raise ApiError(400, f"name the problem: ?problem=ID (one of {known})")
    if problem not in service.problems:
        raise ApiError(404, "no such problem: " + ", ".join(sorted(service.problems)))
    return problem


# --------------------------------------------------------------------------------------------
# Endpoints


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def build_app(service: Service) -> Starlette:
    """The ASGI application."""

    async def api_submit(request: Request) -> Response:
        caller = _bearer(service, request)
        upload = await _read_upload(request)
        submission = await _submit(service, caller, upload)
        body = _summary(service, submission)
        body["url"] = f"/api/submissions/{submission.id}"
        return _json(body, 202)

    def api_get(request: Request) -> Response:
        caller = _bearer(service, request)
        submission = _owned(service, caller, request.path_params["id"])
        body = _summary(service, submission)
        report = _student_report(submission)
        body["report"] = None if report is None else report.model_dump(mode="json")
        return _json(body)

    def api_list(request: Request) -> Response:
        caller = _bearer(service, request)
        if caller.staff:
            found = list(reversed(service.store.all()))
        else:
            found = service.store.of_student(str(caller.student))
        return _json({"submissions": [_summary(service, s) for s in found]})

    def api_grades(request: Request) -> Response:
        caller = _bearer(service, request)
        if not caller.staff:
            raise ApiError(403, "the gradebook is for staff: use the staff token")
        return _grades_csv(_problem_param(service, request))

    def _grades_csv(problem: str) -> Response:
        text = gradebook_csv(_latest_result(service, problem))
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{problem}-grades.csv"'},
        )

    # ---- the page --------------------------------------------------------------------------

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("refresh", None)
        context.setdefault("caller", None)
        context.setdefault("csrf", "")
        return HTMLResponse(safe_text.render_html(template, **context), status_code=status)

    def home_context(caller: Caller, token: str) -> dict[str, Any]:
        if caller.staff:
            submissions = list(reversed(service.store.all()))[:200]
        else:
            submissions = service.store.of_student(str(caller.student))
        return {
            "caller": caller.name,
            "staff": caller.staff,
            "csrf": service.csrf(token),
            "problems": [
                {
                    "id": pid,
                    "title": p.spec.title,
                    "link": "/staff/" + safe_text.relative_link(pid)[2:] + "/",
                }
                for pid, p in sorted(service.problems.items())
            ],
            "submissions": [
                {
                    **_summary(service, s),
                    "link": "/submissions/" + s.id,
                    "score_text": "" if s.score is None else f"{s.score:g}/{s.max_score:g}",
                }
                for s in submissions
            ],
        }

    def home(request: Request) -> Response:
        signed = _cookie(service, request)
        if signed is None:
            return page("serve_signin.html", title="Sign in")
        caller, token = signed
        return page("serve_home.html", title="Submissions", **home_context(caller, token))

    async def small_form(request: Request) -> dict[str, str]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise ApiError(413, "form too large")
        try:
            parsed = parse_qs(body.decode("utf-8"), max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "malformed form") from None
        return {key: values[0] for key, values in parsed.items()}

    async def login(request: Request) -> Response:
        # A sign-in posted from another site would sign the victim into the sender's account
        # (whose uploads the sender then collects): browsers say where a post comes from.
        same_site(request)
        form = await small_form(request)
        token = form.get("token", "").strip()
        if not token or service.roster.caller(token) is None:
            return page(
                "serve_signin.html",
                status=401,
                title="Sign in",
                error="Unknown token: check it (your course staff gave it to you).",
            )
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    def same_site(request: Request) -> None:
        # Sec-Fetch-Site first (every current browser sends it); else Origin, which is "null"
        # for our own pages' posts (their Referrer-Policy is no-referrer). A client that sends
        # neither is not a browser a page could drive.
        fetch_site = request.headers.get("sec-fetch-site")
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if fetch_site is not None:
            foreign = fetch_site not in ("same-origin", "none")
        else:
            foreign = origin is not None and origin not in ("null", own)
        if foreign:
            raise ApiError(403, "this form did not come from this site: open the page and retry")

    def check_csrf(token: str, sent: str | None) -> None:
        if not sent or not hmac.compare_digest(service.csrf(token), sent):
            raise ApiError(
                403, "this form is stale or did not come from this site: reload the page"
            )

    async def logout(request: Request) -> Response:
        same_site(request)
        form = await small_form(request)
        signed = _cookie(service, request)
        if signed is not None:
            check_csrf(signed[1], form.get("csrf"))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def submit_form(request: Request) -> Response:
        same_site(request)
        signed = _cookie(service, request)
        if signed is None:
            return RedirectResponse("/", status_code=303)
        caller, token = signed
        try:
            upload = await _read_upload(request)
            check_csrf(token, upload.fields.get("csrf"))
            submission = await _submit(service, caller, upload)
        except ApiError as exc:
            return page(
                "serve_home.html",
                status=exc.status,
                title="Submissions",
                error=exc.message,
                **home_context(caller, token),
            )
        return RedirectResponse(f"/submissions/{submission.id}", status_code=303)

    def submission_page(request: Request) -> Response:
        signed = _cookie(service, request)
        if signed is None:
            return RedirectResponse("/", status_code=303)
        caller, token = signed
        submission = _owned(service, caller, request.path_params["id"])
        report = _student_report(submission)
        summary = _summary(service, submission)
        standing = "none"
        if report is not None:
            summary["score_text"] = f"{report.score:g}/{report.max_score:g}"
            standing = "full" if report.full_marks else "partial" if report.score > 0 else "none"
        return page(
            "serve_submission.html",
            standing=standing,
            title=f"Submission {submission.id[:8]}",
            caller=caller.name,
            csrf=service.csrf(token),
            submission=summary,
            verdict=None if report is None else verdict_text(report),
            refresh=None if report is not None else REFRESH_SECONDS,
        )

    def staff_caller(request: Request) -> Caller:
        signed = _cookie(service, request)
        if signed is None or not signed[0].staff:
            raise ApiError(403, "staff only: sign in with the staff token")
        return signed[0]

    def staff_batch(request: Request) -> Response:
        staff_caller(request)
        problem = request.path_params["problem"]
        if problem not in service.problems:
            raise ApiError(404, "no such problem")
        result = _latest_result(service, problem)
        summary = summarize(result, service.problems[problem])
        summary["seed"] = None  # every submission has a seed of its own
        return HTMLResponse(batch_page(summary))

    def staff_file(request: Request) -> Response:
        staff_caller(request)
        problem, name = request.path_params["problem"], request.path_params["name"]
        if problem not in service.problems:
            raise ApiError(404, "no such problem")
        if name == "grades.csv":
            return _grades_csv(problem)
        # The batch page links each student's page (<id>.html); <id>.json is the report.
        student, suffix = name.rsplit(".", 1) if "." in name else (name, "")
        latest = service.store.latest_done(problem).get(student)
        if suffix not in ("json", "html") or latest is None or latest.report is None:
            raise ApiError(404, "no graded submission of that student")
        if suffix == "html":
            report = Report.model_validate_json(latest.report)
            return HTMLResponse(student_page(student, report))
        return Response(latest.report, media_type="application/json")

    openapi_body = JSONResponse(description()).body  # built once: it never changes

    def api_openapi(request: Request) -> Response:
        return Response(openapi_body, media_type="application/json")

    routes = [
        Route(OPENAPI_PATH, api_openapi, methods=["GET"]),
        Route("/api/submissions", api_submit, methods=["POST"]),
        Route("/api/submissions", api_list, methods=["GET"]),
        Route("/api/submissions/{id}", api_get, methods=["GET"]),
        Route("/api/grades.csv", api_grades, methods=["GET"]),
        Route("/", home, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/submit", submit_form, methods=["POST"]),
        Route("/submissions/{id}", submission_page, methods=["GET"]),
        Route("/staff/{problem}/", staff_batch, methods=["GET"]),
        Route("/staff/{problem}/{name}", staff_file, methods=["GET"]),
    ]

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def error_response(request: Request, status: int, message: str, **extra: Any) -> Response:
        if is_api(request):
            return _json({"error": message, **extra}, status)
        return page("serve_error.html", status=status, title="Error", error=message)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        response = error_response(request, exc.status, exc.message, **exc.extra)
        response.headers.update(exc.headers)
        return response

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        messages = {404: "no such page or endpoint", 405: "method not allowed here"}
        message = messages.get(exc.status_code, str(exc.detail))
        return error_response(request, exc.status_code, message)

    async def on_fault(request: Request, exc: Exception) -> Response:
        log.exception("fault of the grader's own on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error of the grader (it is logged)")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if service.dispatcher is not None:
            await to_thread.run_sync(service.dispatcher.start)
        try:
            yield
        finally:
            if service.dispatcher is not None:
                await to_thread.run_sync(service.dispatcher.stop)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_fault,
        },
    )
    # No redirect to the path without its trailing slash: Starlette would build its address
    # from the Host header, which the client chooses.
    app.router.redirect_slashes = False
    app.add_middleware(_SecurityHeaders)
    return app


class _SecurityHeaders:
    """Headers on every response: the CSP, no sniffing, no referrer, no framing, no caching."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (
                        b"content-security-policy",
                        safe_text.SERVICE_CONTENT_SECURITY_POLICY.encode(),
                    ),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


# --------------------------------------------------------------------------------------------
# Running it


class NoQueryInAccessLog(logging.Filter):
    """uvicorn's access log, with query strings cut: tokens travel in headers and form bodies
    only, but a token pasted into a URL (`?token=...`) must not reach the log either."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, mark, _ = args[2].partition("?")
            # A token pasted into the path (`/api/submissions/<token>`): segments that look
            # like one (long, of both cases: submission ids are lowercase hex) are cut too.
            path = _TOKEN_LIKE.sub("...", path)
            record.args = (*args[:2], path + ("?..." if mark else ""), *args[3:])
        return True


_TOKEN_LIKE = re.compile(r"(?=[^/]*[a-z])(?=[^/]*[A-Z])[A-Za-z0-9_%-]{16,}")


def log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with `NoQueryInAccessLog` on the access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"no_query": {"()": f"{__name__}.NoQueryInAccessLog"}}
    config["handlers"]["access"]["filters"] = ["no_query"]
    config["loggers"]["grader"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


MAX_CONNECTIONS = 256


def run(service: Service, *, host: str, port: int, limits: Limits | None = None) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM: the running gradings go back to the queue),
    with `limits` on slow clients and connections per address (default: `http.Limits()`)."""
    import resource

    import uvicorn

    limits = limits or Limits()

    # Room for the connections and every grading's pipes and files, whatever the shell's
    # default soft limit (often 1024).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    uvicorn.run(
        build_app(service),
        host=host,
        port=port,
        log_config=log_config(),
        server_header=False,
        # An idle connection is closed 5 s after its last response.
        timeout_keep_alive=5,
        # Beyond this many connections at once, requests get 503 at once rather than a file
        # descriptor each: connections cannot use up the process's descriptors (which the
        # gradings need).
        limit_concurrency=MAX_CONNECTIONS,
        # h11 with deadlines for a request's head and body and a cap per client address, so
        # that slow or idle clients from one address cannot take all of those connections
        # (grader/service/http.py).
        **uvicorn_options(limits),
    )

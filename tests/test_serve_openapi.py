"""`GET /api/openapi.json`: an OpenAPI 3.1 description of every route, status and body (issue
23 item 7), checked against the app's real routes and its real answers. In process (Starlette's
TestClient): nothing is graded here, a report is recorded directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving import STAFF_TOKEN, TOY, multipart
from starlette.routing import Route

from grader.grading import grader_fault_report
from grader.problems import load_problem
from grader.service.app import Service, build_app
from grader.service.pool import record
from grader.service.roster import Roster
from grader.service.store import Store

openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2 (the dev extra)")
from openapi_schema_validator import OAS31Validator  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

TOKENS = {"alice": "alice-" + "token-abcdefghijklmnop", "bob": "bob-" + "token-abcdefghijklmnopq"}
CORRECT = (TOY / "submissions" / "correct.py").read_bytes()


@pytest.fixture
def service(tmp_path: Path) -> Service:
    problem = load_problem(
        "vector_stats", problems_dir=TOY / "problems", reference_dir=TOY / "reference"
    )
    return Service(
        Store(tmp_path / "data"),
        Roster(TOKENS, STAFF_TOKEN),
        {"vector_stats": problem},
        rate=2,
    )


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(build_app(service), follow_redirects=False) as client:
        yield client


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def test_the_description_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    openapi_spec_validator.validate(spec)  # raises on any fault
    # The bodies' schemas come from the pydantic models, the report's included.
    schemas = spec["components"]["schemas"]
    for model in ("SubmissionSummary", "SubmissionDetail", "SubmissionList", "Error", "Report"):
        assert model in schemas
    assert "score" in schemas["Report"]["properties"]


def _operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}


def test_every_route_is_described_and_nothing_else(
    client: TestClient, spec: dict[str, Any]
) -> None:
    app = client.app
    real = set()
    for route in app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route), f"a route of another kind: {route!r}: describe it"
        # Starlette answers HEAD for every GET route by itself.
        real |= {(route.path, method) for method in route.methods or () if method != "HEAD"}
    described = _operations(spec)
    assert real - described == set(), "routes the description lacks"
    assert described - real == set(), "described routes the app does not have"
    for path, ops in spec["paths"].items():
        for operation in ops.values():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == {part[1:-1] for part in path.split("/") if part.startswith("{")}


def _check(spec: dict[str, Any], path: str, method: str, response: Any) -> None:
    """The status is one the description lists for the route; a JSON body fits its schema."""
    operation = spec["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method} {path} answered {status}, which its description does not list: "
        f"{response.text[:300]}"
    )
    content = operation["responses"][status].get("content")
    media = response.headers.get("content-type", "").split(";")[0]
    if content is None:
        return
    assert media in content, f"{method} {path} {status}: {media} is not described"
    if media == "application/json":
        schema = {**content[media]["schema"], "components": spec["components"]}
        OAS31Validator(schema).validate(response.json())


def _upload(name: str, content: bytes, **fields: str) -> dict[str, Any]:
    body, content_type = multipart(fields, [("file", name, content)])
    return {"content": body, "headers": {"Content-Type": content_type}}


def test_real_answers_match_the_description(
    client: TestClient, spec: dict[str, Any], service: Service, tmp_path: Path
) -> None:
    alice = {"Authorization": f"Bearer {TOKENS['alice']}"}
    bob = {"Authorization": f"Bearer {TOKENS['bob']}"}
    staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    submissions = "/api/submissions"

    def post(auth: dict[str, str], upload: dict[str, Any]) -> Any:
        response = client.post(
            submissions, content=upload["content"], headers={**auth, **upload["headers"]}
        )
        _check(spec, submissions, "POST", response)
        return response

    accepted = post(alice, _upload("s.py", CORRECT))
    assert accepted.status_code == 202
    first = accepted.json()["id"]
    assert post(alice, _upload("s.py", CORRECT)).status_code == 202
    assert post(alice, _upload("s.py", CORRECT)).status_code == 429  # rate=2 per hour
    assert post({}, _upload("s.py", CORRECT)).status_code == 401
    assert post(staff, _upload("s.py", CORRECT)).status_code == 403
    assert post(bob, _upload("s.txt", CORRECT)).status_code == 415
    assert post(bob, _upload("s.py", CORRECT, problem="nope")).status_code == 400
    assert post(bob, _upload("s.py", b"x" * (2 << 20))).status_code == 413

    def get(path: str, template: str, headers: dict[str, str]) -> Any:
        response = client.get(path, headers=headers)
        _check(spec, template, "GET", response)
        return response

    assert get(submissions, submissions, alice).status_code == 200
    assert get(submissions, submissions, staff).json()["submissions"]
    one = f"{submissions}/{{id}}"
    assert get(f"{submissions}/{first}", one, alice).json()["report"] is None
    assert get(f"{submissions}/{first}", one, bob).status_code == 404
    # Done: the detail carries the student's view of the report.
    path = tmp_path / "s.py"
    path.write_bytes(CORRECT)
    problem = service.problems["vector_stats"]
    report = grader_fault_report(
        path, problem=problem, seed=1, isolation="basic", error=RuntimeError("x")
    )
    assert record(service.store, first, report)
    done = get(f"{submissions}/{first}", one, alice).json()
    assert done["state"] == "done" and done["report"]["max_score"] == report.max_score
    grades = "/api/grades.csv"
    assert get(grades, grades, staff).status_code == 200
    assert get(grades, grades, alice).status_code == 403
    assert get(grades + "?problem=nope", grades, staff).status_code == 404
    wrong_method = client.put(submissions, headers=alice)
    _check(spec, submissions, "POST", wrong_method)  # (405 is listed for every route)
    assert wrong_method.status_code == 405

    # The page.
    assert get("/", "/", {}).status_code == 200
    for token, status in (("nope", 401), (TOKENS["alice"], 303)):
        response = client.post("/login", data={"token": token})
        _check(spec, "/login", "POST", response)
        assert response.status_code == status
    page = "/submissions/{id}"
    assert get(f"/submissions/{first}", page, {}).status_code == 200
    assert get("/staff/vector_stats/", "/staff/{problem}/", {}).status_code == 403
    response = client.post("/logout", data={"csrf": "stale"})
    _check(spec, "/logout", "POST", response)
    assert response.status_code == 403

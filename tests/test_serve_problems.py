"""A problem id is a name in the catalogue, never a path; a spec's reference lies inside the
reference folder (issue 22 item 7). Fast: the file system only (the worker-level test is in
test_serve_queue.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from serving import TOY

from grader.errors import InvalidSpec, UnknownProblem
from grader.problems import load_problem, spec_path_for


@pytest.fixture
def course(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the toy problem's folders, with an evil spec and reference beside them (where
    a job naming a path could reach them)."""
    problems, reference = tmp_path / "course" / "problems", tmp_path / "course" / "reference"
    shutil.copytree(TOY / "problems", problems)
    shutil.copytree(TOY / "reference", reference)
    evil = tmp_path / "anywhere"
    evil.mkdir()
    spec = (TOY / "problems" / "vector_stats.toml").read_text()
    spec = spec.replace('id = "vector_stats"', 'id = "evil"', 1)
    (evil / "evil.toml").write_text(spec.replace("vector_stats.py", "evil_ref.py"))
    (evil / "evil_ref.py").write_text("raise SystemExit('evil reference ran')\n")
    return problems, reference


@pytest.mark.parametrize(
    "problem_id",
    [
        "../../anywhere/evil",
        "../../../../../anywhere/evil",
        "/anywhere/evil",
        "vector_stats/../vector_stats",
        "..",
        ".hidden",
        "vector_stats\x00",
        "vector_stats\n",
        "",
    ],
)
def test_a_problem_id_is_never_a_path(course: tuple[Path, Path], problem_id: str) -> None:
    problems, reference = course
    # The evil spec is reachable through the path from the problems folder.
    if problem_id.startswith("../../anywhere"):
        assert (problems / f"{problem_id}.toml").is_file()
    with pytest.raises(UnknownProblem) as error:
        load_problem(problem_id, problems_dir=problems, reference_dir=reference)
    assert "problem" in str(error.value)
    with pytest.raises(UnknownProblem):
        spec_path_for(problem_id, problems)


def test_a_known_id_still_loads(course: tuple[Path, Path]) -> None:
    problems, reference = course
    problem = load_problem("vector_stats", problems_dir=problems, reference_dir=reference)
    assert problem.reference_path == (reference / "vector_stats.py").resolve()
    with pytest.raises(UnknownProblem, match="known: vector_stats"):
        load_problem("graphdef_vs_state", problems_dir=problems, reference_dir=reference)


def _spec_with_reference(problems: Path, file: str) -> None:
    spec = (problems / "vector_stats.toml").read_text()
    assert 'file = "vector_stats.py"' in spec
    (problems / "vector_stats.toml").write_text(
        spec.replace('file = "vector_stats.py"', f"file = {file!r}")
    )


@pytest.mark.parametrize(
    "file",
    ["../../anywhere/evil_ref.py", "{anywhere}/evil_ref.py", "link.py", "linked/evil_ref.py"],
)
def test_a_reference_outside_the_reference_folder_is_refused(
    course: tuple[Path, Path], tmp_path: Path, file: str
) -> None:
    problems, reference = course
    anywhere = tmp_path / "anywhere"
    (reference / "link.py").symlink_to(anywhere / "evil_ref.py")
    (reference / "linked").symlink_to(anywhere, target_is_directory=True)
    _spec_with_reference(problems, file.format(anywhere=anywhere))
    with pytest.raises(InvalidSpec, match="outside the reference folder"):
        load_problem("vector_stats", problems_dir=problems, reference_dir=reference)


def test_a_reference_in_a_subfolder_or_through_an_inner_link_loads(
    course: tuple[Path, Path],
) -> None:
    problems, reference = course
    (reference / "sub").mkdir()
    shutil.move(reference / "vector_stats.py", reference / "sub" / "vector_stats.py")
    (reference / "alias.py").symlink_to(reference / "sub" / "vector_stats.py")
    _spec_with_reference(problems, "alias.py")
    problem = load_problem("vector_stats", problems_dir=problems, reference_dir=reference)
    assert problem.reference_path == (reference / "sub" / "vector_stats.py").resolve()

"""Assemble the service `grader serve` runs: the store, the roster, the problems, and who
grades (threads here, or workers behind a Redis queue)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from grader.engine import Catalog, Grader, World
from grader.errors import UsageError
from grader.problems import Problem, list_problems, spec_path_for
from grader.service.app import Dispatcher, Service
from grader.service.roster import STAFF_TOKEN_ENV, load_roster
from grader.service.store import Store


def parse_rate(rate: str | None) -> int | None:
    """`--rate`: N or N/hour."""
    if rate is None:
        return None
    number = rate.strip().lower().removesuffix("/hour").removesuffix("/h").strip()
    if not number.isdigit() or int(number) < 1:
        raise UsageError(f"--rate must read N/hour with N at least 1 (e.g. 10/hour), not {rate!r}")
    return int(number)


def build_service(
    *,
    data: Path,
    roster_path: Path,
    catalog: Catalog,
    world: World,
    rate: str | None = None,
    queue_url: str | None = None,
    workers: int | None = None,
    require_sandbox: bool = False,
    allow_basic: bool = False,
    ready_seeds: int = 32,
) -> tuple[Service, str | None]:
    """The service, and a warning for staff (basic isolation), if any."""
    per_hour = parse_rate(rate)
    roster = load_roster(roster_path, os.environ.get(STAFF_TOKEN_ENV) or None)
    store = Store(data)
    dispatcher: Dispatcher
    warning = None
    if queue_url is not None:
        from grader.service.queue import QueueSender

        # The server only stores and sends: specs are enough, the workers hold the reference.
        problems = {
            spec.id: Problem(
                spec=spec,
                spec_path=spec_path_for(spec.id, catalog.problems_dir),
                reference_path=Path(os.devnull),
            )
            for spec in list_problems(catalog.problems_dir)
        }
        dispatcher = QueueSender(store, queue_url, problems)
    else:
        from grader.service.pool import LocalPool

        problems = {
            spec.id: catalog.problem(spec.id) for spec in list_problems(catalog.problems_dir)
        }
        # Submissions never see the service's data or the roster (tokens, classmates).
        protect = (data.resolve(), roster_path.resolve())
        setup = world.staff(
            require_sandbox=require_sandbox, allow_basic=allow_basic, protect=protect
        )
        warning = setup.warning
        dispatcher = LocalPool(
            store,
            problems,
            grader=Grader(setup),
            workers=workers or os.cpu_count() or 1,
            ready_seeds=ready_seeds,
        )
    if not problems:
        raise UsageError("no problem specs found: point --problems-dir at them")
    secret = bytes.fromhex(store.meta("csrf_secret", secrets.token_hex(32)))
    service = Service(store, roster, problems, rate=per_hour, dispatcher=dispatcher, secret=secret)
    return service, warning

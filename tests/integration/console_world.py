"""The console's browser tests' world: a real `crmflow serve` on a store of two tenants, and Chromium.

One server and one browser per test module (each test gets its own browser context, so its own cookies):
starting either is the slow part. The store is seeded before the server starts, with the read models
projected, so the pages and the API read the same rows. Screenshots go to $CRMFLOW_CONSOLE_SCREENSHOTS,
or to the module's temporary directory; they are test artifacts, never committed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, create_tables
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.history import stored_history
from tests.conftest import required_service_missing
from tests.serving import serving

SECRET = "console-secret-that-is-long-enough-for-hs256"


@dataclass
class Seeded:
    """Ids the stories refer to, by tenant."""

    ids: dict[str, dict[str, str]] = field(default_factory=dict)


def seed(store: str, reports_url: str) -> Seeded:
    """Two tenants with opportunities over three months and owners, leads and cases; read models projected."""
    app = CrmApplication(store)
    seeded = Seeded()

    def run(tenant: str, command: str, caller: str = "sales:maria", **data: Any) -> str:
        result = app.execute(CommandRequest(command, tenant, data, caller=caller))
        return str(result.aggregate_id)

    try:
        for tenant, owners, scale in (("acme", ("ana", "ben"), 1), ("globex", ("gus", "gil"), 7)):
            ids = seeded.ids.setdefault(tenant, {})
            account = ids["account"] = run(tenant, "account.create", name=f"{tenant.title()} Industries")
            for n, (month, owner, stage) in enumerate(
                [
                    ("2027-02-14", owners[0], None),
                    ("2027-03-10", owners[0], "proposal"),
                    ("2027-03-20", owners[1], "negotiation"),
                    ("2027-04-05", owners[1], None),
                    ("2027-03-28", owners[1], "won"),
                    ("2027-02-02", owners[0], "lost"),
                ]
            ):
                opportunity = run(
                    tenant,
                    "opportunity.create",
                    account_id=account,
                    name=f"Deal {n}",
                    owner=owner,
                    amount=f"{(n + 1) * 1250 * scale}.25",
                    close_date=month,
                )
                ids[f"opportunity{n}"] = opportunity
                if stage == "won":
                    run(tenant, "opportunity.win", opportunity_id=opportunity)
                elif stage == "lost":
                    run(tenant, "opportunity.lose", opportunity_id=opportunity, reason="budget")
                elif stage:
                    run(tenant, "opportunity.advance", opportunity_id=opportunity, stage=stage)
            lead = ids["lead"] = run(tenant, "lead.create", name=f"Ada of {tenant}", source="web")
            run(tenant, "lead.assign", caller=f"sales:{owners[0]}", lead_id=lead, owner=owners[1])
            ids["case"] = run(
                tenant, "case.open", caller="service:sam", subject="Cannot log in", priority="high"
            )
        # The shipped definitions, as `crmflow demo` deploys them: the designers' pages draw them.
        shipped = sorted((Path(__file__).parents[2] / "processes" / "definitions").glob("*.yaml"))
        documents = [d for d in load_files(shipped) if d.kind in ("Process", "Calendar")]
        DefinitionRegistry(app).deploy(documents, "admin:seed")
        # A web lead the web-lead-follow-up process routes, as the process worker would: its assignment's
        # cause is the process step, its trigger and the round robin (what an operator reads).
        routed = run("acme", "lead.create", caller="web-form", name="Routed", source="web")
        seeded.ids["acme"]["routed_lead"] = routed
        created = [e for e in stored_history(app) if e["type"] == "LeadCreated" and e["subject"] == routed]
        ProcessRuntime(app).handle(created)
        reports = Database(reports_url)
        create_tables(reports)
        apply_all(reports, stored_history(app))
        reports.close()
    finally:
        app.close()
    return seeded


@dataclass
class Console:
    base: str
    store: Path
    seeded: Seeded
    shots: Path
    log: Path

    def token(self, tenant: str, role: str, subject: str = "ada") -> str:
        return issue_token(SECRET, tenant=tenant, role=role, subject=subject)

    def api(self, token: str, path: str, **params: str) -> httpx.Response:
        return httpx.get(
            self.base + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    where = tmp_path_factory.mktemp("console")
    store, reports = str(where / "crm.db"), str(where / "reports.db")
    seeded = seed(store, reports)
    env = {
        **os.environ,
        "CRMFLOW_DATABASE_URL": store,
        "CRMFLOW_REPORTS_DATABASE_URL": reports,
        "CRMFLOW_API_SECRET": SECRET,
        "CRMFLOW_TENANTS": "acme,globex",
    }
    log_path = where / "serve.log"
    shots = Path(os.environ.get("CRMFLOW_CONSOLE_SCREENSHOTS") or where / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with serving(env, log_path) as (_, base):
        yield Console(base, Path(store), seeded, shots, log_path)


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Debian's Chromium under Playwright; skipped with the reason where it is missing (failed under CI)."""
    executable = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        required_service_missing(request, "playwright is not installed: pip install -e '.[test]'")
    if executable is None:
        required_service_missing(
            request, "Chromium is not on PATH: run bash .ci/services (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        # As root (CI containers) Chromium needs --no-sandbox; /dev/shm is small in containers.
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and a page in it."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    yield context.new_page()
    context.close()


def sign_in(tab: Any, console: Console, token: str, then: str = "/console") -> None:
    tab.goto(f"{console.base}/console/sign-in?next={then}")
    tab.fill("textarea[name=token]", token)
    tab.click("button[type=submit]")
    tab.wait_for_load_state()

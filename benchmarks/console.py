"""The console's dashboard render time next to the JSON API's report time, on one tenant's large history.

    python benchmarks/console.py                    # 100,000 events on SQLite (about 3 minutes to generate)
    python benchmarks/console.py --events 20000 --rounds 50

Generates one tenant's history with commands (accounts, opportunities created, advanced, won and lost,
leads created and assigned, cases opened), projects it into the read models, then asks the same app, in
process over ASGI (no network), for the dashboard page (every charted report, one query each, the charts'
options and the tables rendered by Jinja2) and for the same reports from GET /v1/reports/NAME, in
alternating rounds. Prints p50/p99 of each; not a timed test (benchmarks/README.md has the figures).
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import structlog
from fastapi.testclient import TestClient

import crmflow.aggregates.commands  # noqa: F401  - the command table
from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, create_tables
from crmflow.workers.api.app import create_app
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.config import Settings
from crmflow.workers.console.charts import CHARTED
from crmflow.workers.history import stored_history

SECRET = "benchmark-secret-that-is-long-enough-for-hs256"
OWNERS = ("ana", "ben", "chen", "dana", "eli", "fay", "gus", "hal")


def generate(app: CrmApplication, events: int, seed: int = 7) -> int:
    """Commands until the store holds about ``events`` events; returns how many it holds."""
    rng = random.Random(seed)

    def run(command: str, **data: object) -> str:
        return str(app.execute(CommandRequest(command, "acme", data, caller="bench:load")).aggregate_id)

    accounts = [run("account.create", name=f"Account {n}") for n in range(max(events // 200, 5))]
    start = date(2026, 1, 1)
    stored = lambda: int(app.recorder.max_notification_id() or 0)  # noqa: E731
    while stored() < events:
        for _ in range(50):
            roll = rng.random()
            if roll < 0.55:
                opportunity = run(
                    "opportunity.create",
                    account_id=rng.choice(accounts),
                    name="Deal",
                    owner=rng.choice(OWNERS),
                    amount=f"{rng.randint(500, 90_000)}.{rng.randint(0, 99):02d}",
                    close_date=str(start + timedelta(days=rng.randint(0, 720))),
                )
                fate = rng.random()
                if fate < 0.5:
                    run("opportunity.advance", opportunity_id=opportunity)
                if fate < 0.2:
                    run("opportunity.win", opportunity_id=opportunity)
                elif fate < 0.35:
                    run("opportunity.lose", opportunity_id=opportunity, reason="budget")
            elif roll < 0.85:
                lead = run("lead.create", name="Lead", source=rng.choice(("web", "webinar", "referral")))
                run("lead.assign", lead_id=lead, owner=rng.choice(OWNERS))
            else:
                run("case.open", subject="Help", priority=rng.choice(("urgent", "high", "medium", "low")))
    return stored()


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    where = Path(tempfile.mkdtemp(prefix="crmflow-bench-console-"))
    app = CrmApplication(str(where / "events.db"))
    reports = Database(str(where / "reports.db"))
    create_tables(reports)
    began = time.perf_counter()
    total = generate(app, args.events)
    generated = time.perf_counter() - began
    apply_all(reports, stored_history(app))
    projected = time.perf_counter() - began - generated
    client = TestClient(
        create_app(
            Settings(database_url=None, api_secret=SECRET, tenants=["acme"]), app=app, reports_db=reports
        )
    )
    token = issue_token(SECRET, tenant="acme", role="analyst", subject="bench")
    page = client.get("/console/sign-in")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert nonce
    client.post("/console/sign-in", data={"csrf_token": nonce.group(1), "token": token})
    bearer = {"Authorization": f"Bearer {token}"}
    dashboard, api_all, api_pipeline, size = [], [], [], 0
    for round_ in range(args.rounds + 2):  # the first two warm the caches and are not counted
        t = time.perf_counter()
        response = client.get("/console/reports")
        took = time.perf_counter() - t
        assert response.status_code == 200
        size = len(response.content)
        t = time.perf_counter()
        for name in CHARTED:
            assert client.get(f"/v1/reports/{name}", headers=bearer).status_code == 200
        every = time.perf_counter() - t
        t = time.perf_counter()
        client.get("/v1/reports/pipeline", headers=bearer)
        one = time.perf_counter() - t
        if round_ >= 2:
            dashboard.append(took * 1000)
            api_all.append(every * 1000)
            api_pipeline.append(one * 1000)
    print(
        f"tenant acme: {total:,} events stored (generated in {generated:.0f} s, "
        f"projected in {projected:.0f} s); "
        f"{args.rounds} rounds; dashboard page {size / 1024:.0f} KiB"
    )
    for what, values in (
        (f"dashboard page ({len(CHARTED)} reports, charts, tables)", dashboard),
        (f"JSON API, the same {len(CHARTED)} reports", api_all),
        ("JSON API, pipeline alone", api_pipeline),
    ):
        p50, p99 = quantiles(values)
        print(f"  {what:45} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

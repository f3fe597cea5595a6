"""Fixtures the HTTP API tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from tests.conftest import Clock
from tests.integration.api_harness import Api, start_api
from tests.integration.console_world import browser, console, tab  # noqa: F401  - the console's browser tests


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    """The API over a fresh SQLite store and reports file, on the test's clock."""
    app = CrmApplication(str(tmp_path / "events.db"), clock=clock)
    reports = Database(str(tmp_path / "reports.db"))
    create_tables(reports)
    yield start_api(app, reports)
    reports.close()
    app.close()

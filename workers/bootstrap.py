"""The composition root: builds the running parts from Settings.

Tests build the same parts with a temporary SQLite file or a fresh PostgreSQL
database; nothing else in the code constructs infrastructure.
"""

from __future__ import annotations

from aggregates.application import CrmApplication
from workers.config import Settings


def build_application(settings: Settings) -> CrmApplication:
    return CrmApplication(settings.database_url)

"""The console's composition: its routes and static files on the API's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from crmflow.workers.config import Settings
from crmflow.workers.console import routes_designers, routes_operations, routes_reports, routes_session
from crmflow.workers.console.links import UsedLinks
from crmflow.workers.console.page import HERE


def install_console(api: FastAPI, settings: Settings) -> None:
    """Serve the console at /console (and / redirects there), on the API's services and secret."""
    api.state.console_links = UsedLinks()
    api.state.settings = settings  # the dead-letter pages reach Kafka with the server's own settings
    for module in (routes_session, routes_reports, routes_operations, routes_designers):
        api.include_router(module.router)
    api.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

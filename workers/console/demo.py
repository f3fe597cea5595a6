"""`crmflow demo --serve`: the console on the demo's kept data, with sign-in links printed."""

from __future__ import annotations

import secrets
from typing import Any

from crmflow.workers.config import Settings
from crmflow.workers.console.links import issue_link_token, sign_in_link
from crmflow.workers.shutdown import StopSignal

HOST = "127.0.0.1"  # the demo's data and its generated secret are for this machine only


def serve_demo(result: Any, settings: Settings, port: int, err: Any) -> int:
    """Serve the API and console on the demo's store until Ctrl-C; ``result`` is the demo's DemoResult."""
    from crmflow.workers.api.app import create_app
    from crmflow.workers.cli.serve import serve_app

    stop = StopSignal().install()  # as `crmflow serve`: a SIGTERM or Ctrl-C ends it with exit code 0
    secret = settings.api_secret.get_secret_value() if settings.api_secret else secrets.token_hex(32)
    served = Settings(database_url=result.database_url, api_secret=secret, tenants=list(result.tenants),
                      log_level=settings.log_level)  # fmt: skip
    base = f"http://{HOST}:{port}"
    err.print(f"\n[bold]The console[/]: {base}/console (Ctrl-C stops it). One-time sign-in links "
              "(each works once, within 15 minutes):")  # fmt: skip
    tenant = result.tenants[0]
    for role, subject in (("analyst", "grace"), ("admin", "ops")):
        link = sign_in_link(base, issue_link_token(secret, tenant=tenant, role=role, subject=subject))
        err.print(f"  {role:8} {link}", soft_wrap=True)
    err.print(f"More tokens: CRMFLOW_API_SECRET={secret} crmflow token issue --tenant {tenant} --role sales "
              f"--subject ada --console --url {base}", soft_wrap=True)  # fmt: skip
    api = create_app(served)
    return 0 if stop.is_set() else serve_app(api, HOST, port, settings.log_level)

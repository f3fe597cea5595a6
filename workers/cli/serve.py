"""crmflow serve | token issue: the HTTP API and the bearer tokens it accepts."""

from __future__ import annotations

import argparse
from datetime import timedelta

import structlog

import crmflow.aggregates.commands  # noqa: F401  - fills the command table api.tokens checks its roles against
from crmflow.workers.api.tokens import ROLES, issue_token
from crmflow.workers.cli.output import fail
from crmflow.workers.config import Settings
from crmflow.workers.shutdown import StopSignal

RAW = argparse.RawDescriptionHelpFormatter
NO_SECRET = (
    "CRMFLOW_API_SECRET is not set: the API signs and checks bearer tokens with it. "
    "Set it (at least 32 characters, e.g. export CRMFLOW_API_SECRET=$(openssl rand -hex 32)) "
    "to the same value for `crmflow serve` and `crmflow token issue`"
)
log = structlog.get_logger("crmflow.serve")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser(
        "serve",
        help="run the HTTP API (commands, events, reports, histories, process definitions)",
        formatter_class=RAW,
        epilog="example:\n"
        "  export CRMFLOW_API_SECRET=$(openssl rand -hex 32)\n"
        "  crmflow serve --host 0.0.0.0 --port 8000\n"
        "  token=$(crmflow token issue --tenant acme --role sales --subject ada)\n"
        '  curl -H "Authorization: Bearer $token" localhost:8000/v1/reports/pipeline\n'
        "  # OpenAPI: http://localhost:8000/openapi.json",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.set_defaults(run=run_serve)

    token = sub.add_parser(
        "token",
        help="issue bearer tokens for the HTTP API",
        formatter_class=RAW,
        epilog="example:\n"
        "  crmflow token issue --tenant acme --role sales --subject ada --expires-in-days 30",
    )
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    issue = actions.add_parser(
        "issue",
        help="print a signed token for a tenant and a role",
        formatter_class=RAW,
        epilog="examples:\n"
        "  crmflow token issue --tenant acme --role sales --subject ada --expires-in-days 30\n"
        "  crmflow token issue --tenant '*' --role admin --subject ops  # platform-wide definitions only\n"
        "  crmflow token issue --tenant acme --role analyst --subject grace --console  # a sign-in link\n"
        "\nroles:\n" + "\n".join(f"  {r.name:10} {r.summary}" for r in ROLES.values()),
    )
    issue.add_argument(
        "--tenant", required=True, help='the tenant the token acts for; "*" for a platform token'
    )
    issue.add_argument(
        "--role", required=True, choices=list(ROLES), help="what the token may do (listed below)"
    )
    issue.add_argument(
        "--subject", required=True, help="who the token is for (recorded as caller ROLE:SUBJECT)"
    )
    issue.add_argument(
        "--expires-in-days", type=float, help="the token expires after this many days (default: never)"
    )
    issue.add_argument(
        "--console", action="store_true",
        help="print a one-time sign-in link for the web console instead (valid 15 minutes, once)",
    )
    issue.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the console's address for --console (default %(default)s)"
    )
    issue.set_defaults(run=run_issue)


def run_issue(args: argparse.Namespace, settings: Settings) -> int:
    if settings.api_secret is None:
        return fail(NO_SECRET, code=2)
    if args.expires_in_days is not None and args.expires_in_days <= 0:
        return fail(f"--expires-in-days must be more than 0 (got {args.expires_in_days})")
    expires = timedelta(days=args.expires_in_days) if args.expires_in_days is not None else None
    secret = settings.api_secret.get_secret_value()
    if args.console:
        from crmflow.workers.console.links import issue_link_token, sign_in_link

        token = issue_link_token(secret, tenant=args.tenant, role=args.role, subject=args.subject)
        print(sign_in_link(args.url, token))
        return 0
    print(
        issue_token(
            secret,
            tenant=args.tenant,
            role=args.role,
            subject=args.subject,
            expires_in=expires,
        )
    )
    return 0


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    if settings.api_secret is None:
        return fail(f"crmflow serve refuses to start: {NO_SECRET}", code=2)
    # Imported here: FastAPI and uvicorn are heavy, and no other command needs them.
    from crmflow.workers.api.app import create_app

    # uvicorn handles SIGTERM itself, then raises it again under the handler it found:
    # with ours in place, a graceful stop ends with exit code 0 instead of death by signal.
    stop = StopSignal().install()
    api = create_app(settings)
    if stop.is_set():
        return 0
    return serve_app(api, args.host, args.port, settings.log_level)


def serve_app(api: object, host: str, port: int, log_level: str) -> int:
    """Run the API (and its console) until SIGTERM or Ctrl-C; `crmflow serve` and `crmflow demo --serve`."""
    import uvicorn

    log.info(
        "api_serving", host=host, port=port, openapi=f"http://{host}:{port}/openapi.json",
        console=f"http://{host}:{port}/console",
    )  # fmt: skip
    # Our request log replaces uvicorn's access log; log_config=None keeps stderr to JSON lines.
    uvicorn.run(
        api, host=host, port=port, access_log=False, log_config=None, log_level=log_level  # type: ignore[arg-type]
    )
    log.info("api_stopped")
    return 0

"""Settings from the environment, validated by pydantic.

CRMFLOW_DATABASE_URL      SQLite path or postgresql:// URL (default ./.crmflow/crmflow.db)
KAFKA_BOOTSTRAP_SERVERS   host:port[,host:port] of the Kafka cluster
CRMFLOW_TOPIC_PREFIX      prefix of crmflow's topics (default crmflow)
CRMFLOW_PARTITIONS        partitions of the topics crmflow creates (default 6)
CRMFLOW_REPLICATION_FACTOR replicas of each partition of the topics crmflow creates (default 1; 3 in production)
CRMFLOW_TENANTS           comma-separated tenant ids the intake accepts (unset: any well-formed id)
CRMFLOW_SCHEMA_DIR        folder of <Type>.json JSON Schemas for inbound event data
CRMFLOW_MAX_INBOUND_BYTES largest inbound message accepted (default 262144)
CRMFLOW_KAFKA_CLIENT_ID   client id prefix (default crmflow; each worker adds its kind)
CRMFLOW_KAFKA_SESSION_TIMEOUT_MS, CRMFLOW_KAFKA_MAX_POLL_INTERVAL_MS, CRMFLOW_KAFKA_REQUEST_TIMEOUT_MS
                          consumer-group and request timeouts (defaults 10000, 60000, 30000)
CRMFLOW_KAFKA_FETCH_MAX_WAIT_MS  longest a fetch may wait at the broker (default 500; 20 for the bundled
                          broker, which holds every fetch for the full wait)
CRMFLOW_KAFKA_ASSIGNOR    cooperative-sticky (default) | sticky | range: how a consumer group shares partitions
CRMFLOW_KAFKA_GROUP_INSTANCE_ID  static group membership: a stable id per worker copy (e.g. the pod name)
CRMFLOW_REPORTS_DATABASE_URL  read models: SQLite path or postgresql:// URL (default: reports.db beside the
                          SQLite store, or the same PostgreSQL database)
CRMFLOW_LOG_LEVEL         debug | info | warning | error (default info)
CRMFLOW_API_SECRET        the secret that signs and checks the API's bearer tokens (HS256; at least 32 chars)
CRMFLOW_METRICS_PORT      workers serve Prometheus metrics on this port (unset: no metrics endpoint)
CRMFLOW_LAG_INTERVAL_S    how often workers with metrics measure their consumer groups' lag (default 15)
CRMFLOW_API_RATE_PER_S, CRMFLOW_API_BURST  HTTP requests per second and at once, per tenant
                          (default 200, 1000; rate 0: unlimited)
CRMFLOW_INTAKE_RATE_PER_S, CRMFLOW_INTAKE_BURST  inbound messages per second and at once, per tenant,
                          taken in by each intake copy (default 2000, 50000; rate 0: unlimited)
CRMFLOW_COST_PER_CASE     what serving one case costs, in the account's currency, in the profitability,
                          segments reports (default 25.00)
CRMFLOW_EXPECTED_LIFETIME_YEARS  how many more years of the next 12 months' expected revenue an account's
                          lifetime value counts (default 3)

Any other CRMFLOW_* variable is refused (a typo would otherwise be ignored and its default used), naming
the nearest setting: `CRMFLOW_PARTITION: unknown setting; did you mean CRMFLOW_PARTITIONS?`. The few
CRMFLOW_* names that crmflow's tools read but the service does not are in NOT_SETTINGS.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crmflow.projections.account_figures import COST_PER_CASE, LIFETIME_YEARS
from crmflow.workers.rate_limits import Rate

if TYPE_CHECKING:
    from crmflow.workers.kafka.clients import KafkaSettings

PREFIX = "CRMFLOW_"
API_SECRET_MIN_LENGTH = 32  # HS256 wants a key at least as long as its hash: 256 bits
# CRMFLOW_* variables that are not settings of the service but are read by crmflow's own tools, so they may
# be set where crmflow runs (CI, a developer's shell, the host running docker compose) without refusing it.
NOT_SETTINGS = {
    "CRMFLOW_KAFKA_CACHE": "where .ci/fetch-kafka and the tests keep the Apache Kafka jars",
    "CRMFLOW_TEST_POSTGRES": "the PostgreSQL server the tests use (tests/databases.py)",
    "CRMFLOW_CHAOS_WEB_LEADS": "the size of the chaos test (tests/integration/test_chaos.py)",
    "CRMFLOW_BENCH_POSTGRES_URL": "the PostgreSQL server the benchmarks use (benchmarks/harness.py)",
    "CRMFLOW_IMAGE": "docker compose: the image to run (deploy/docker-compose.yaml)",
    "CRMFLOW_API_PORT": "docker compose: the host port of the API (deploy/docker-compose.yaml)",
    "CRMFLOW_CONSOLE_SCREENSHOTS": "where the console's browser tests save their screenshots (docs/console.md)",
}


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    def __init__(self, **values: Any) -> None:
        # Before pydantic-settings reads the environment: it ignores names that match no field.
        unknown = unknown_settings(os.environ)
        if unknown:
            raise ValidationError.from_exception_data(type(self).__name__, unknown)
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise _named_by_variable(error) from None

    database_url: str | None = Field(None, description="SQLite path or postgresql:// URL")
    reports_database_url: str | None = Field(None, description="read models: SQLite path or postgresql:// URL")
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "CRMFLOW_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = Field("crmflow", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)
    tenants: Annotated[list[str] | None, NoDecode, BeforeValidator(_comma_separated)] = None
    schema_dir: Path | None = None
    max_inbound_bytes: int = Field(256 * 1024, ge=1024)
    kafka_client_id: str = "crmflow"
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000)
    kafka_max_poll_interval_ms: int = Field(60_000, ge=1_000)
    kafka_request_timeout_ms: int = Field(30_000, ge=1_000)
    kafka_fetch_max_wait_ms: int = Field(500, ge=0, le=10_000)
    kafka_assignor: Literal["cooperative-sticky", "sticky", "range"] = "cooperative-sticky"
    kafka_group_instance_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    api_secret: SecretStr | None = Field(None, description="signs the API's bearer tokens (32+ characters)")
    metrics_port: int | None = Field(None, ge=1, le=65535)
    lag_interval_s: float = Field(15.0, gt=0)
    # Fair share per tenant. The defaults sit far above what the demo, the tests and the benchmarks send, so
    # only a tenant flooding the service meets them.
    api_rate_per_s: float = Field(200.0, ge=0, allow_inf_nan=False)
    api_burst: int = Field(1_000, ge=1)
    intake_rate_per_s: float = Field(2_000.0, ge=0, allow_inf_nan=False)
    intake_burst: int = Field(50_000, ge=1)
    # How long the CLI's checks wait for the store, the read models and the broker before saying which is
    # not there (crmflow.workers.preflight); libpq rounds up to whole seconds, at least 2.
    connect_timeout_s: float = Field(3.0, gt=0, le=300, allow_inf_nan=False)
    # The customer view's reports (projections.account_reports; docs/reports.md, "Profitability"): exact
    # decimals, as money is; the defaults are projections.account_figures'.
    cost_per_case: Decimal = Field(COST_PER_CASE, ge=0, decimal_places=2, allow_inf_nan=False)
    expected_lifetime_years: Decimal = Field(LIFETIME_YEARS, ge=0, le=100, allow_inf_nan=False)

    @field_validator("api_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        # pydantic's own words ("at least 32 items after validation") name neither variable nor characters.
        if secret is not None and len(secret.get_secret_value()) < API_SECRET_MIN_LENGTH:
            raise PydanticCustomError(
                "api_secret_too_short", "must be at least {minimum} characters (got {length})",
                {"minimum": API_SECRET_MIN_LENGTH, "length": len(secret.get_secret_value())},
            )  # fmt: skip
        return secret

    def kafka(self) -> KafkaSettings:
        # Imported here: it imports kafka-python, which commands that use no broker need not pay for.
        from crmflow.workers.kafka.clients import KafkaSettings

        return KafkaSettings(
            bootstrap_servers=self.kafka_bootstrap_servers,
            topic_prefix=self.topic_prefix,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            client_id=self.kafka_client_id,
            session_timeout_ms=self.kafka_session_timeout_ms,
            max_poll_interval_ms=self.kafka_max_poll_interval_ms,
            request_timeout_ms=self.kafka_request_timeout_ms,
            fetch_max_wait_ms=self.kafka_fetch_max_wait_ms,
            assignor=self.kafka_assignor,
            group_instance_id=self.kafka_group_instance_id,
        )

    def api_rate(self) -> Rate:
        return Rate(self.api_rate_per_s, self.api_burst)

    def intake_rate(self) -> Rate:
        return Rate(self.intake_rate_per_s, self.intake_burst)

    def tuned_for_bundled_broker(self) -> Settings:
        """These settings with the bundled broker's group timeouts and fetch wait (BUNDLED_BROKER_TUNING)."""
        from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING

        return self.model_copy(update={f"kafka_{name}": value for name, value in BUNDLED_BROKER_TUNING.items()})


def _named_by_variable(error: ValidationError) -> ValidationError:
    """The error with the API secret's problem placed at CRMFLOW_API_SECRET, the name the operator sets.

    The CLI prints each problem as "LOC: message"; the field's own loc would read API_SECRET, a variable
    that does not exist. Every other problem is kept as it was, in its own words.
    """
    problems = error.errors()
    if not any(p["type"] == "api_secret_too_short" for p in problems):
        return error
    details = [
        InitErrorDetails(
            type=PydanticCustomError(p["type"], p["msg"].replace("{", "{{").replace("}", "}}")),
            loc=(f"{PREFIX}API_SECRET",) if p["type"] == "api_secret_too_short" else p["loc"],
            input="**********" if p["type"] == "api_secret_too_short" else p["input"],  # never the secret
        )
        for p in problems
    ]
    return ValidationError.from_exception_data(error.title, details)


def environment_names() -> set[str]:
    """Every environment variable Settings reads: the prefixed field names, or a field's own aliases."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(str(alias) if isinstance(alias, str) else f"{PREFIX}{field_name}")
    return {name.upper() for name in names}


def unknown_settings(environ: Mapping[str, str]) -> list[InitErrorDetails]:
    """One error per CRMFLOW_* variable that is no setting, naming the nearest one if any is near."""
    known = environment_names() | set(NOT_SETTINGS)
    # Compared without the prefix all share, or every name would look near every other.
    candidates = sorted(name.removeprefix(PREFIX) for name in known if name.startswith(PREFIX))
    errors: list[InitErrorDetails] = []
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings matches names case-insensitively
        if not upper.startswith(PREFIX) or upper in known:
            continue
        nearest = difflib.get_close_matches(upper.removeprefix(PREFIX), candidates, n=1, cutoff=0.6)
        hint = f"did you mean {PREFIX}{nearest[0]}?" if nearest else "no setting is named like it (README.md, Configuration)"
        error = PydanticCustomError("unknown_setting", "unknown setting; {hint}", {"hint": hint})
        errors.append(InitErrorDetails(type=error, loc=(name,), input=environ[name]))
    return errors

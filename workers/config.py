"""Settings from the environment, validated by pydantic.

CRMFLOW_DATABASE_URL    SQLite path or postgresql:// URL (default ./.crmflow/crmflow.db)
KAFKA_BOOTSTRAP_SERVERS host:port[,host:port] of the Kafka cluster
CRMFLOW_TOPIC_PREFIX    prefix of crmflow's topics (default crmflow)
CRMFLOW_LOG_LEVEL       debug | info | warning | error (default info)
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMFLOW_", extra="ignore")

    database_url: str | None = Field(None, description="SQLite path or postgresql:// URL")
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "CRMFLOW_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = Field("crmflow", pattern=r"^[A-Za-z0-9._-]+$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

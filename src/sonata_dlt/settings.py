"""The one typed settings object.

Values come, in rising priority, from the defaults below, a TOML file (``--config`` or ``SONATA_DLT_CONFIG``),
environment variables prefixed ``SONATA_DLT_`` (nested fields with ``__``, e.g. ``SONATA_DLT_LEDGER__BACKEND``),
and explicit overrides from the command line. Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sonata_dlt.errors import ConfigurationError


class Role(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


class TokenGrant(BaseModel):
    """A bearer token and the one party (and role) it speaks for."""

    token: str = Field(min_length=16)
    party_id: str = Field(min_length=1)
    role: Role


class BilateralConfig(BaseModel):
    """A commercial relationship hosted by this server."""

    buyer_id: str
    seller_id: str


class LedgerConfig(BaseModel):
    backend: str = "local"  # entry-point name in the group sonata_dlt.ledger_backends
    options: dict[str, Any] = Field(default_factory=dict)


class CheckpointConfig(BaseModel):
    every_leaves: int = Field(default=1000, ge=1)
    every_seconds: float = Field(default=60.0, gt=0)


class NotifyConfig(BaseModel):
    max_attempts: int = Field(default=12, ge=1)
    first_backoff_seconds: float = Field(default=0.5, gt=0)
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    concurrency: int = Field(default=16, ge=1)
    # Delivered and abandoned rows are kept this long (for support: "did you send it?"), then deleted in batches.
    retention_days: float = Field(default=7.0, gt=0)
    purge_every_seconds: float = Field(default=600.0, gt=0)


class FulfilmentConfig(BaseModel):
    """Demo auto-fulfilment: the server plays the seller's OSS and moves orders along by itself."""

    auto: bool = False
    step_delay_seconds: float = Field(default=1.0, ge=0)


DEMO_BUYER_ID = "BUYER-1"
DEMO_SELLER_ID = "SELLER-1"
DEMO_BUYER_TOKEN = "demo-buyer-token"  # noqa: S105 - documented, loopback-only demo credential
DEMO_SELLER_TOKEN = "demo-seller-token"  # noqa: S105 - documented, loopback-only demo credential


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SONATA_DLT_", env_nested_delimiter="__", extra="forbid")

    database_url: str = "sqlite:///var/sonata-dlt.sqlite"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("var")  # keys, the local ledger journal, default SQLite file
    demo: bool = False
    tokens: list[TokenGrant] = Field(default_factory=list)
    bilaterals: list[BilateralConfig] = Field(default_factory=list)

    product_schema_dir: Path | None = None
    accept_unknown_product_types: bool = False

    max_body_bytes: int = Field(default=1 << 20, ge=1024)  # JSON request bodies
    max_upload_bytes: int = Field(default=2 << 30, ge=1024)  # streamed CSV / NDJSON uploads
    page_limit_default: int = Field(default=100, ge=1)
    page_limit_max: int = Field(default=1000, ge=1)

    # Where concurrent order creates are committed together (group commit): "process" runs the transactions in a
    # writer process beside the server, so they use a second core instead of waiting for the event loop's
    # interpreter lock; "thread" runs them on a thread of the server process.
    group_commit: Literal["process", "thread"] = "process"
    record_log: bool = True  # off only to measure the cost of recording in bench/; never in production
    log_origin_prefix: str = "sonata-dlt.local"
    host_key_path: Path | None = None  # defaults to data_dir/host.key
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    fulfilment: FulfilmentConfig = Field(default_factory=FulfilmentConfig)
    log_format: Literal["json", "kv"] = "kv"
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (CLI, TOML file contents) win over the environment.
        return (init_settings, env_settings)

    @model_validator(mode="after")
    def _apply_demo(self) -> Settings:
        if self.demo:
            known = {grant.token for grant in self.tokens}
            for token, party, role in (
                (DEMO_BUYER_TOKEN, DEMO_BUYER_ID, Role.BUYER),
                (DEMO_SELLER_TOKEN, DEMO_SELLER_ID, Role.SELLER),
            ):
                if token not in known:
                    self.tokens.append(TokenGrant(token=token, party_id=party, role=role))
            if not any(b.buyer_id == DEMO_BUYER_ID and b.seller_id == DEMO_SELLER_ID for b in self.bilaterals):
                self.bilaterals.append(BilateralConfig(buyer_id=DEMO_BUYER_ID, seller_id=DEMO_SELLER_ID))
            if self.product_schema_dir is None:
                self.accept_unknown_product_types = True
        if self.page_limit_default > self.page_limit_max:
            raise ValueError("page_limit_default must not exceed page_limit_max")
        return self

    @property
    def resolved_host_key_path(self) -> Path:
        return self.host_key_path or self.data_dir / "host.key"

    @staticmethod
    def config_file_from_environment() -> Path | None:
        """The TOML file named by ``SONATA_DLT_CONFIG``, if any (the one environment read outside BaseSettings)."""
        import os

        value = os.environ.get("SONATA_DLT_CONFIG")
        return Path(value) if value else None

    SERIALISED_ENVIRONMENT_KEY: ClassVar[str] = "SONATA_DLT_SETTINGS_JSON"

    def to_environment(self) -> dict[str, str]:
        """Environment that hands these exact settings to worker processes (see ``from_environment``)."""
        return {self.SERIALISED_ENVIRONMENT_KEY: self.model_dump_json()}

    @classmethod
    def from_environment(cls) -> Settings:
        """Settings a parent process handed over with ``to_environment``, else the usual sources."""
        import os

        serialised = os.environ.get(cls.SERIALISED_ENVIRONMENT_KEY)
        if serialised:
            return cls.model_validate_json(serialised)
        return cls.load(cls.config_file_from_environment())

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Build settings from an optional TOML file plus explicit overrides (which win)."""
        values: dict[str, Any] = {}
        if config_file is not None:
            try:
                values = tomllib.loads(config_file.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(f"cannot read settings file {config_file}: {exc}") from exc
        values.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return cls(**values)
        except ValueError as exc:
            raise ConfigurationError(f"invalid settings: {exc}") from exc

"""Service settings, read from ``SENDMED_*`` environment variables or ``.env``.

Nothing here is built at import time: ``worker.main()``, the API lifespan and the
local launcher construct ``Settings()`` and pass it down; tests construct it with
explicit values.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    """Every knob of the service. Defaults are the embedded ``make run`` stack."""

    model_config = SettingsConfigDict(
        env_prefix="SENDMED_",
        env_nested_delimiter="__",
        env_file=".env",
        frozen=True,
        extra="ignore",
    )

    environment: Environment = Field(
        default="development",
        description="development (make run), test, or production (placeholder secrets refused).",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Where make run keeps the Temporal store, the SQLite database and the outbox.",
    )

    # Temporal
    temporal_address: str = Field(
        default="", description="host:port of the Temporal frontend; default 127.0.0.1:<dev port>."
    )
    temporal_namespace: str = "default"
    task_queue: str = "send-referrals"
    temporal_dev_port: int = Field(default=7233, description="make run: dev server frontend port.")
    temporal_ui_port: int = Field(default=8233, description="make run: Temporal Web UI port.")
    temporal_dev_ip: str = "127.0.0.1"

    # Database
    database_url: str = Field(
        default="",
        description=(
            "SQLAlchemy async URL. Default: SQLite under data_dir. "
            "PostgreSQL: postgresql+psycopg://user:pass@host/db"
        ),
    )

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = Field(default="", description="Base URL the API is reached at.")

    # Calendar
    extra_bank_holidays: tuple[date, ...] = Field(
        default=(),
        description="Newly proclaimed England & Wales bank holidays not yet in the library.",
    )

    # Service levels and reminders (a council's provider may override them)
    dr_response_working_days: int = Field(
        default=10, ge=1, le=60, description="DR: working days a party has to say yes or no."
    )
    dr_reminder_working_days: int = Field(
        default=5, ge=1, le=60, description="DR: working days before silent parties are reminded."
    )
    action_reminder_working_days: int = Field(
        default=3, ge=1, le=30, description="Working days before an agreed action's due date."
    )

    # Secrets (placeholders refused outside development and test)
    codec_keys: SecretStr = Field(
        default=SecretStr("dev-placeholder"),
        description="Payload encryption keys (see README).",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production":
            for name in ("codec_keys",):
                value: SecretStr = getattr(self, name)
                if "placeholder" in value.get_secret_value() or not value.get_secret_value():
                    raise ValueError(f"{name} must be set to a real secret in production")
        return self

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{self.temporal_dev_ip}:{self.temporal_dev_port}"

    @property
    def database_target(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sendmed.db').as_posix()}"

    @property
    def api_base_url(self) -> str:
        return self.public_base_url or f"http://{self.api_host}:{self.api_port}"

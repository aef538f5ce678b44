"""Service settings, read from ``SENDMED_*`` environment variables or ``.env``.

Nothing here is built at import time: ``worker.main()``, the API lifespan and the
local launcher construct ``Settings()`` and pass it down; tests construct it with
explicit values.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.adapters.codec import EncryptionCodec, Keyring
from models.messages import TASK_QUEUE

Environment = Literal["development", "test", "production"]
PLACEHOLDER_MARKERS = ("placeholder", "changeme", "change-me", "dev-insecure")


def public_https_url(url: str) -> bool:
    """An ``https`` URL with a host that is not this machine (localhost, loopback, 0.0.0.0)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_unspecified)


class Settings(BaseSettings):
    """Every knob of the service. Defaults are the embedded ``make run`` stack."""

    model_config = SettingsConfigDict(
        env_prefix="SENDMED_",
        env_nested_delimiter="__",
        env_file=".env",
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,  # a validation error never prints secrets
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
    task_queue: str = TASK_QUEUE
    temporal_dev_port: int = Field(default=7233, description="make run: dev server frontend port.")
    temporal_ui_port: int = Field(default=8233, description="make run: Temporal Web UI port.")
    temporal_dev_ip: str = "127.0.0.1"
    # Temporal TLS / mTLS (docs/OPERATIONS.md): PEM files, e.g. a mounted Kubernetes Secret.
    temporal_tls: bool = Field(
        default=False, description="TLS to the frontend; on by itself when a TLS file is set."
    )
    temporal_tls_client_cert: Path | None = Field(
        default=None, description="mTLS: the client certificate (PEM) presented to Temporal."
    )
    temporal_tls_client_key: Path | None = Field(
        default=None, description="mTLS: the client certificate's private key (PEM)."
    )
    temporal_tls_server_ca: Path | None = Field(
        default=None, description="CA (PEM) of the frontend's certificate; default: system CAs."
    )
    temporal_tls_server_name: str = Field(
        default="", description="Name to verify in the frontend's certificate (SNI)."
    )

    # Worker scaling and shutdown (docs/OPERATIONS.md "Scaling workers")
    worker_max_concurrent_activities: int | None = Field(
        default=None, ge=1, le=10_000, description="Activity slots per worker; SDK default 100."
    )
    worker_max_concurrent_workflow_tasks: int | None = Field(
        default=None, ge=2, le=10_000, description="Workflow task slots per worker; SDK default."
    )
    worker_max_cached_workflows: int = Field(
        default=1000, ge=0, le=1_000_000, description="Sticky cache: workflows kept in memory."
    )
    worker_poller_autoscaling: bool = Field(
        default=False, description="Let the SDK scale task pollers to the backlog."
    )
    worker_eager_activities: bool = Field(
        default=False,
        description="Let the server hand a workflow task's new activities straight back to the "
        "worker (fewer round trips, ~15 % less CPU under load) at the cost of spurious "
        "heartbeat timeouts when the worker is saturated (docs/PERFORMANCE.md).",
    )
    worker_graceful_shutdown_seconds: float = Field(
        default=15.0, ge=0, le=3600, description="On SIGTERM, how long activities may finish."
    )
    migrate_on_start: bool = Field(
        default=True, description="The worker applies migrations on start (off where a job does)."
    )

    # Metrics (docs/OPERATIONS.md "Observability"): the Temporal SDK runtime's own Prometheus
    # endpoint, unauthenticated (no personal data), so bind it where only Prometheus reaches.
    worker_metrics_address: str = Field(
        default="", description="host:port for the worker's SDK metrics (/metrics); empty = off."
    )
    api_temporal_metrics_address: str = Field(
        default="", description="host:port for the API's Temporal client metrics; empty = off."
    )

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
    temporal_rpc_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="API: bound on a start, query or other single call to Temporal (then 503).",
    )
    temporal_update_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        le=120,
        description="API: bound on a create or command, which waits for the workflow to apply "
        "it (then 503; a retry with the same Idempotency-Key gets the answer).",
    )

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

    # ---- Documents and dispatch (email over SMTP, signed webhooks) --------------------------
    # No SMTP host: mail is written as .eml files under ``mail_outbox_dir`` (make run).
    smtp_host: str = Field(default="", description="SMTP server; empty = write .eml files.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = Field(default=True, description="STARTTLS after connecting.")
    smtp_implicit_tls: bool = Field(default=False, description="TLS from the start (port 465).")
    mail_from: str = Field(
        default="noreply@send-referrals.invalid",
        description="Envelope and From address; the provider's name is the display name.",
    )
    outbox_dir: Path | None = Field(
        default=None, description="Where .eml files go without SMTP; default <data_dir>/outbox."
    )
    escalation_email: str = Field(
        default="",
        description="Told of permanently failed deliveries when the provider has no email.",
    )
    webhook_allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="Hosts, addresses or networks (CIDR) that webhooks may reach although "
        "they are internal (loopback, private, link-local, reserved); empty: public "
        "addresses only (JSON list).",
    )
    webhook_allow_public_addresses: bool = Field(
        default=True,
        description="Webhooks may go to public addresses; off: only to the allowed hosts "
        "(the test suites run so, to stay on this machine).",
    )
    webhook_retry_hours: float = Field(
        default=72.0,
        gt=0,
        le=24 * 30,
        description="A webhook still failing this long after its first attempt is failed "
        "for good (the provider told), so no case is held open by a dead endpoint.",
    )
    webhook_disable_after_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Deliveries in a row that fail for good before a subscription is "
        "disabled (the provider told).",
    )
    party_link_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Personal links in emails: how long one works when its decision has no "
        "deadline of its own (the family's mediation decision, a document's web page).",
    )
    page_requests_per_minute: int = Field(
        default=120,
        ge=1,
        le=10_000,
        description="Link pages: requests per client address and minute, counted in the "
        "database so every API process shares the limit (then 429).",
    )
    send_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Bound on one email or webhook send."
    )
    delivery_lease_seconds: float = Field(
        default=45.0,
        gt=0,
        le=3600,
        description="A send claimed longer ago than this (crashed worker) may be retried.",
    )

    # ---- Security and data protection (README "Security and data protection") -------------
    # Secrets (placeholders refused outside development and test)
    codec_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Payload encryption keys, JSON {"key id": "base64 of 32 random bytes"}. '
        "Empty in development/test: the public development key. Keep old keys when rotating.",
    )
    codec_active_key_id: str = Field(
        default="", description="The key that encrypts new payloads (optional with one key)."
    )
    ui_origin: tuple[str, ...] = Field(
        default=(),
        description="Origins of the Temporal Web UI allowed to call /codec (CORS); default "
        "http://127.0.0.1:<ui port> and http://localhost:<ui port>.",
    )
    codec_ui_token: SecretStr = Field(
        default=SecretStr(""),
        description="Development only: the dev Web UI reaches /codec at /codec/<this token>/… "
        "without an API key; make run sets a fresh one each run. Refused in production.",
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long an API process trusts a key it has verified before looking it up "
        "again, so a revocation takes effect within this; 0 = look it up on every request.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=67_108_864, description="Larger request bodies get a 413."
    )
    body_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="A request body not received within this many seconds gets a 408.",
    )
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="Default: json in production, console otherwise."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    retention_days: int = Field(
        default=2190,
        ge=1,
        le=36500,
        description="Days after closure until a referral's personal data is erased (6 years).",
    )
    retention_schedule: bool = Field(
        default=True, description="The worker ensures the daily retention schedule in Temporal."
    )
    idempotency_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Idempotency records (they hold responses) kept."
    )
    reconcile_schedule: bool = Field(
        default=True,
        description="The worker ensures the reconciler schedule in Temporal: referrals whose "
        "workflow was terminated, failed or timed out while open are marked stopped.",
    )
    reconcile_interval_minutes: int = Field(
        default=15, ge=1, le=1440, description="How often the reconciler runs."
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        """Production refuses missing or development codec keys, placeholder secrets and the
        development Web UI's token: the one place these rules are written."""
        keyring = self.codec_keyring()  # a malformed key is refused in every environment
        if self.environment == "production":
            if not self.codec_keys:
                raise ValueError("codec_keys must be set to real keys in production")
            keys = [v.get_secret_value() for v in self.codec_keys.values()]
            secrets = [*keys, self.smtp_password.get_secret_value()]
            if any(m in v.lower() for v in secrets for m in PLACEHOLDER_MARKERS):
                raise ValueError("placeholder secrets are refused in production")
            if keyring.insecure:
                raise ValueError("the public development codec key is refused in production")
            if self.codec_ui_token.get_secret_value():
                raise ValueError("codec_ui_token is for development only")
        return self

    @model_validator(mode="after")
    def _public_links_reachable(self) -> Settings:
        """Production: every link in documents, emails and webhooks must reach the API from
        outside, over TLS."""
        if self.environment == "production" and not public_https_url(self.public_base_url):
            raise ValueError(
                "public_base_url must be the https URL people reach the API at in production "
                "(not http, not localhost or a loopback address)"
            )
        return self

    @model_validator(mode="after")
    def _temporal_tls_coherent(self) -> Settings:
        if (self.temporal_tls_client_cert is None) != (self.temporal_tls_client_key is None):
            raise ValueError("temporal_tls_client_cert and temporal_tls_client_key go together")
        return self

    @model_validator(mode="after")
    def _dispatch_settings_coherent(self) -> Settings:
        if self.delivery_lease_seconds <= self.send_timeout_seconds:
            raise ValueError("delivery_lease_seconds must be longer than send_timeout_seconds")
        if self.environment == "production" and not self.smtp_host:
            raise ValueError("smtp_host must be set in production (else mail goes to files)")
        return self

    def codec_keyring(self) -> Keyring:
        """The payload codec's keys: those configured, or with none (development and test
        only: production is refused above) the public development key."""
        keys = {key_id: value.get_secret_value() for key_id, value in self.codec_keys.items()}
        if not keys:
            return Keyring.development()
        return Keyring.from_config(keys, self.codec_active_key_id)

    def payload_codec(self) -> EncryptionCodec:
        """The codec that encrypts every payload this service hands to Temporal."""
        return EncryptionCodec(self.codec_keyring())

    @property
    def ui_origins(self) -> tuple[str, ...]:
        port = self.temporal_ui_port
        return self.ui_origin or (f"http://127.0.0.1:{port}", f"http://localhost:{port}")

    @property
    def ui_codec_token(self) -> str:
        """The dev Web UI's codec path token ('' = none; never outside development)."""
        token = self.codec_ui_token.get_secret_value()
        return token if self.environment == "development" and len(token) >= 32 else ""

    @property
    def mail_outbox_dir(self) -> Path:
        return self.outbox_dir if self.outbox_dir is not None else self.data_dir / "outbox"

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

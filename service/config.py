"""Settings: the only place environment variables are read (prefix OPS_)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from service.domain.jobs import JOBS
from service.domain.tasks import Queue

DEFAULT_CONCURRENCY = {Queue.URGENT.value: 4, Queue.DEFAULT.value: 16, Queue.BULK.value: 2}
DEV_TOKEN = "dev-service-token"
DEFAULT_MAX_BODY_BYTES = 1024**2
DEFAULT_PARAMS_MAX_BYTES = 64 * 1024
DEFAULT_PARAMS_MAX_DEPTH = 32
DEFAULT_CRON = {job.name: job.cron for job in JOBS}
DEFAULT_JOB_SLOTS = {job.name: job.slot_seconds for job in JOBS}
#: JWT algorithms a JWKS of public keys can verify (never "none", never a shared secret)
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class TaskTypeSettings(BaseModel):
    """An operator's limits for one task type (OPS_TASK_TYPES), over the catalog's own."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    execution_timeout_seconds: float | None = Field(None, gt=0, le=7 * 24 * 3600)
    heartbeat_timeout_seconds: float | None = Field(None, gt=0, le=3600)
    max_retries: int | None = Field(None, ge=0, le=100)


class Settings(BaseSettings):
    """Configuration of both apps; see README for each variable."""

    model_config = SettingsConfigDict(env_prefix="OPS_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    data_dir: Path = Path(".data")
    database_url: str = ""
    db_pool_size: int = 10

    lease_seconds: float = Field(30.0, gt=0)
    heartbeat_seconds: float = Field(0.0, ge=0)  # 0 = a third of the lease
    retry_base_seconds: float = Field(1.0, ge=0)
    retry_cap_seconds: float = Field(60.0, ge=0)
    default_max_retries: int = Field(3, ge=0, le=100)
    #: how long a run may take unless its type says otherwise (the original's task_timeout)
    task_timeout_seconds: float = Field(3600.0, gt=0, le=7 * 24 * 3600)
    #: per task type: {"import": {"executionTimeoutSeconds": 7200, "maxRetries": 5}, …}
    task_types: dict[str, TaskTypeSettings] = Field(default_factory=dict)
    worker_concurrency: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_CONCURRENCY))
    claim_batch_size: int = Field(500, ge=1, le=1000)
    worker_id: str = ""
    progress_interval_seconds: float = Field(1.0, ge=0)
    #: Server-Sent Event streams: a keep-alive comment this often, at most this many open
    #: streams per API process (503 beyond), and a read of what changed at least this often
    #: while streams are open (the safety net under notifications)
    stream_keepalive_seconds: float = Field(15.0, gt=0, le=3600)
    #: a stream ends after this long; its client reconnects with Last-Event-ID and misses
    #: nothing (proxies and load balancers cut long connections anyway)
    stream_max_seconds: float = Field(3600.0, gt=0, le=86_400)
    stream_max_clients: int = Field(1000, ge=0, le=100_000)
    stream_poll_seconds: float = Field(5.0, gt=0, le=3600)
    #: changes committed within this long reach each stream in one write: a write per client
    #: per change made 200 streams cost 30,000 socket writes a second at 50 tasks/s
    stream_batch_seconds: float = Field(0.05, ge=0, le=1.0)
    poll_fast_seconds: float = Field(1.0, gt=0)
    poll_slow_seconds: float = Field(15.0, gt=0)
    retention_days: int = Field(30, ge=1)
    cron: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CRON))
    #: Dapr cron ticks of one job within this many seconds are one tick (see worker/bindings.py)
    job_slot_seconds: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_JOB_SLOTS))
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    #: a schedule's fire time later than this when a tick sees it was missed (downtime): the
    #: schedule's catchUp decides whether it still makes a task
    schedule_grace_seconds: float = Field(60.0, gt=0, le=24 * 3600)
    #: the most schedules one tick of fire-schedules fires (the rest go next tick)
    schedule_batch: int = Field(500, ge=1, le=10_000)
    migrate_on_start: bool | None = None  # None: yes for SQLite (embedded), no for PostgreSQL

    service_token: str = DEV_TOKEN
    publisher: Literal["inprocess", "dapr"] = "inprocess"
    scheduler: Literal["inprocess", "dapr"] = "inprocess"
    dapr_http_endpoint: str = ""  # default: http://127.0.0.1:$DAPR_HTTP_PORT, else :3500
    dapr_http_port: int = Field(3500, validation_alias="DAPR_HTTP_PORT")
    dapr_api_token: str = ""
    dapr_app_token: str = ""
    pubsub_name: str = "pubsub"
    topic_prefix: str = ""
    #: the API's pub/sub component for `settings.changed`: one that gives every replica its own
    #: copy (Redis: consumerID "{uuid}"); empty: the API subscribes to nothing
    settings_pubsub_name: str = Field("broadcast", max_length=64)
    #: how long a replica serves stored settings from memory (a change drops them at once)
    settings_cache_seconds: float = Field(300.0, ge=0, le=86400)

    storage: Literal["local", "s3"] = "local"
    files_dir: Path | None = None  # local store root; default: <data_dir>/files
    #: HMAC key of the local store's URLs; unset outside production: derived (see signing_secret)
    files_signing_key: SecretStr = SecretStr("")
    files_public_url: str = ""  # prefix of local file URLs, e.g. https://ops.example.com
    files_url_seconds: int = Field(900, ge=1, le=7 * 24 * 3600)  # S3 caps presigning at 7 days
    files_max_bytes: int = Field(5 * 1024**3, ge=1)
    #: how long a task created with a fileName waits for its upload before it fails
    upload_wait_seconds: int = Field(3600, ge=60)
    s3_bucket: str = "common-operations"
    s3_endpoint_url: str = ""  # empty: AWS; e.g. http://127.0.0.1:9000 for MinIO
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""  # empty: boto3's own credential chain (env, profile, IAM role)
    s3_secret_access_key: SecretStr = SecretStr("")
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    s3_connect_timeout_seconds: float = Field(5.0, gt=0)
    s3_read_timeout_seconds: float = Field(60.0, gt=0)
    s3_max_attempts: int = Field(5, ge=1, le=20)  # the first try included

    #: largest request body; the upload routes (PUT /files/content/…, multipart /bulk/import)
    #: take up to files_max_bytes instead
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024, le=64 * 1024**2)
    #: a task's params: largest as compact JSON, and deepest nesting (the body parser stops
    #: at service.api.json_body.MAX_DEPTH levels, so this stays below it)
    params_max_bytes: int = Field(DEFAULT_PARAMS_MAX_BYTES, ge=1024, le=1024**2)
    params_max_depth: int = Field(DEFAULT_PARAMS_MAX_DEPTH, ge=1, le=48)
    #: task lists leave out params longer than this as JSON text (GET /tasks/{id} has them)
    list_params_max_bytes: int = Field(4 * 1024, ge=0, le=1024**2)
    #: an import fails once its file's blank lines and empty rows pass this many times the
    #: compressed bytes read (plus an Excel sheet's worth): see service/bulk/blanks.py
    #: blank input an import may read per compressed byte (service/bulk/limits.py says why)
    import_max_blank_ratio: int = Field(100, ge=1)

    #: webhooks (notificationSettings.webhookUrl): the hosts that may be called, comma-separated
    #: or a JSON list: exact names, "*.example.com", "*" for any public host
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    #: allow loopback, private, link-local addresses (checked on every resolved address)
    webhook_allow_private: bool = False
    #: signs the webhooks of users who made no secret of their own (POST /webhooks/secret)
    webhook_signing_secret: SecretStr = SecretStr("")
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120)
    #: tries of one delivery, the first included; then it is failed with its last error
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(5.0, ge=0)
    webhook_retry_cap_seconds: float = Field(3600.0, ge=0)
    #: a larger notification body is not sent (failed at once)
    webhook_max_body_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024**2)
    #: how often the worker looks for due deliveries
    webhook_poll_seconds: float = Field(1.0, gt=0, le=60)
    #: auto: through the Dapr sidecar when OPS_PUBLISHER=dapr, else directly
    webhook_delivery: Literal["auto", "direct", "dapr"] = "auto"
    #: check the gateway's JWT (Authorization: Bearer) instead of trusting X-User-ID/-Roles
    jwt_enabled: bool = False
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""  # the gateway's JWKS, fetched and cached …
    jwt_jwks_file: Path | None = None  # … or read from a file (one of the two)
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    jwt_user_claim: str = "sub"  # the claim holding the user id (dotted path for nested ones)
    jwt_roles_claim: str = "roles"  # a list, or a space- or comma-separated string
    jwt_leeway_seconds: float = Field(30.0, ge=0, le=600)  # clock skew allowed on exp/nbf/iat
    jwt_jwks_cache_seconds: float = Field(300.0, ge=1, le=86400)
    #: an unknown kid refetches the JWKS at most this often (a flood of kids is no flood of fetches)
    jwt_jwks_min_refresh_seconds: float = Field(30.0, ge=0, le=3600)

    host: str = "127.0.0.1"
    port: int = 8000
    #: the API process's gRPC OperationsService (on `host`); 0 serves none
    grpc_port: int = Field(9000, ge=0, le=65535)
    #: set by `common-ops api --workers N`: its processes share the gRPC port (SO_REUSEPORT, the
    #: kernel spreads connections); otherwise a port another process holds is an error at start
    grpc_reuse_port: bool = False
    #: how long a stopping gRPC server lets calls in flight finish before it cancels them
    grpc_grace_seconds: float = Field(5.0, ge=0, le=600)
    log_level: str = "info"
    #: `json`: one JSON object per line (with trace id, task id, route, status, duration_ms)
    log_format: Literal["text", "json"] = "text"

    #: the database gauges of /metrics (queue depth, outbox backlog) are sampled at most this
    #: often per process, and counted up to the cap (bounded cost at any table size)
    metrics_sample_seconds: float = Field(15.0, ge=0, le=3600)
    metrics_depth_cap: int = Field(100_000, ge=1, le=10_000_000)
    #: OpenTelemetry tracing through an OTLP/HTTP exporter (off by default)
    otel_enabled: bool = False
    #: the collector's traces URL; empty: the exporter's own default (OTEL_EXPORTER_OTLP_* env)
    otel_endpoint: str = ""
    otel_service_name: str = "common-operations"
    #: the dashboard (/ui) lets a visitor pick who they are (a cookie read as X-User-ID and
    #: X-User-Roles): for local use only; `common-ops dev` turns it on, production refuses it
    ui_dev_login: bool = False

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'operations.db'}"
        if not self.dapr_http_endpoint:
            self.dapr_http_endpoint = f"http://127.0.0.1:{self.dapr_http_port}"
        if not self.heartbeat_seconds:
            self.heartbeat_seconds = self.lease_seconds / 3
        if not self.worker_id:
            self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        if self.migrate_on_start is None:
            self.migrate_on_start = self.is_sqlite
        for job, expression in DEFAULT_CRON.items():
            self.cron.setdefault(job, expression)
        for job, seconds in DEFAULT_JOB_SLOTS.items():
            self.job_slot_seconds.setdefault(job, seconds)
        for queue in Queue:
            self.worker_concurrency.setdefault(queue.value, DEFAULT_CONCURRENCY[queue.value])
        if self.environment == "production" and (
            self.service_token == DEV_TOKEN or len(self.service_token) < 16
        ):
            raise ValueError("OPS_SERVICE_TOKEN must be set (16+ characters) in production")
        return self

    @model_validator(mode="after")
    def _upload_outlives_its_url(self) -> Settings:
        if self.upload_wait_seconds < self.files_url_seconds:
            raise ValueError(
                "OPS_UPLOAD_WAIT_SECONDS must be at least OPS_FILES_URL_SECONDS: a task must not "
                "expire while its upload URL is still valid"
            )
        return self

    @model_validator(mode="after")
    def _no_dev_login_in_production(self) -> Settings:
        if self.environment == "production" and self.ui_dev_login:
            raise ValueError("OPS_UI_DEV_LOGIN is for local use: it must be off in production")
        return self

    @model_validator(mode="after")
    def _production_signing_key(self) -> Settings:
        """Local file URLs signed with the derived dev key would be forgeable by anyone."""
        weak = len(self.files_signing_key.get_secret_value()) < 32
        if self.environment == "production" and self.storage == "local" and weak:
            raise ValueError("OPS_FILES_SIGNING_KEY must be set (32+ characters) in production")
        return self

    @model_validator(mode="after")
    def _jwt_complete(self) -> Settings:
        """A JWT check without an issuer, audience or keys would accept too much, or nothing."""
        if not self.jwt_enabled:
            return self
        if not self.jwt_issuer or not self.jwt_audience:
            raise ValueError("OPS_JWT_ENABLED needs OPS_JWT_ISSUER and OPS_JWT_AUDIENCE")
        if bool(self.jwt_jwks_url) == (self.jwt_jwks_file is not None):
            raise ValueError("OPS_JWT_ENABLED needs one of OPS_JWT_JWKS_URL, OPS_JWT_JWKS_FILE")
        unsafe = set(self.jwt_algorithms) - ASYMMETRIC
        if unsafe or not self.jwt_algorithms:
            raise ValueError(f"OPS_JWT_ALGORITHMS must be public-key algorithms of {ASYMMETRIC}")
        return self

    @property
    def files_root(self) -> Path:
        return self.files_dir or self.data_dir / "files"

    @property
    def signing_secret(self) -> bytes:
        """HMAC key of local file URLs: the setting, or outside production one derived from the
        service token, so the API and worker processes of a dev setup agree without setup."""
        configured = self.files_signing_key.get_secret_value()
        if configured:
            return configured.encode()
        return hashlib.sha256(b"common-operations/files/" + self.service_token.encode()).digest()

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for logs."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

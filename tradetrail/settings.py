"""The one settings object. Every value can come from the environment with the ``TRADETRAIL_`` prefix.

Defaults are the embedded deployment: SQLite and a local artifact folder under ``TRADETRAIL_HOME``
(``./var``), the bundled sample market, the simulated broker and the rules analyst. Setting
``TRADETRAIL_LLM_BASE_URL`` (and a model) makes strategies whose analyst is ``auto`` ask that model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration (read once; tests build their own instances)."""

    model_config = SettingsConfigDict(env_prefix="TRADETRAIL_", extra="ignore")

    home: Path = Field(default=Path("./var"), description="folder for the SQLite file and artifacts")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in home")
    artifacts_dir: Path | None = Field(default=None, description="local artifact folder; default home/artifacts")

    artifact_store: Literal["local", "s3"] = "local"
    s3_endpoint: str | None = Field(default=None, description="e.g. http://127.0.0.1:8333; empty means AWS")
    s3_bucket: str = Field(default="tradetrail", min_length=3, max_length=63)
    s3_prefix: str = "artifacts/"
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None

    market_data: Literal["sample", "files"] = "sample"
    market_data_dir: Path | None = Field(default=None, description="folder for the 'files' market data")

    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    llm_max_attempts: int = Field(default=3, ge=1, le=3)
    llm_backoff_s: float = Field(default=1.0, ge=0, le=30)

    allow_live_trading: bool = False
    ibkr_allowed_questions: str = Field(
        default="", description="comma-separated confirmation message ids answered 'yes' (e.g. o163,o354); "
                                "any other question cancels the submission")
    order_resubmit_window_s: float = Field(
        default=900, ge=0, description="reconciliation resends an intent the broker never received only if it is "
                                       "younger than this; older ones are cancelled with the reason")

    reconcile_interval_s: float = Field(default=300, ge=0, description="tradetrail serve reconciles every "
                                                                       "account this often (0: only at start-up)")

    executor: Literal["embedded", "celery"] = Field(
        default="embedded", description="embedded: serve runs the schedule itself; celery: beat and workers do")
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_visibility_timeout_s: int = Field(default=3600, ge=1, description="an unacknowledged task (its worker "
                                                                             "died) is delivered again after this")
    worker_concurrency: int = Field(default=2, ge=1, le=64)

    scheduler_enabled: bool = Field(default=True, description="tradetrail serve runs scheduled strategies")
    scheduler_interval_s: float = Field(default=5.0, gt=0, le=60, description="how often due slots are claimed")
    schedule_grace_s: float = Field(default=600, ge=0, description="a missed slot still runs if at most this late")
    embedded_workers: int = Field(default=2, ge=1, le=64, description="executions at once in embedded mode")

    sim_initial_cash: float = Field(default=100_000.0, gt=0)
    sim_commission: Literal["fixed", "tiered", "none"] = "fixed"
    sim_slippage_bps: float = Field(default=5.0, ge=0, le=500)
    sim_questions: str = Field(default="", description="simulator: confirmation message ids it asks on every order")
    sim_faults: str = Field(default="", description="simulator failure drills, e.g. place_timeout_after_accept")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"

    @field_validator("llm_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'tradetrail.db').resolve()}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return (self.artifacts_dir or self.home / "artifacts").resolve()

    @property
    def allowed_questions(self) -> frozenset[str]:
        return frozenset(q.strip() for q in self.ibkr_allowed_questions.split(",") if q.strip())

    @property
    def llm_configured(self) -> bool:
        return self.llm_base_url is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()

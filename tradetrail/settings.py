"""The one settings object. Every value can come from the environment with the ``TRADETRAIL_`` prefix.

Defaults are the embedded deployment: SQLite and a local artifact folder under ``TRADETRAIL_HOME``
(``./var``), the bundled sample market, the simulated broker and the rules analyst. Setting
``TRADETRAIL_LLM_BASE_URL`` (and a model) makes strategies whose analyst is ``auto`` ask that model.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Celery's queues (distributed mode): runs, and beat's dispatch and sweep, which must never wait behind runs.
RUNS_QUEUE = "tradetrail"
CONTROL_QUEUE = "tradetrail.control"


# The adapter names a setting or a strategy may give, as types (validation and the OpenAPI enums need them
# here, below everything). The composition root's registries (``runtime/registries.py``) map each name to its
# factory and a test keeps both lists equal; a new adapter is one name here and one entry there.
BrokerName = Literal["simulated", "ibkr_web", "ibkr_tws"]
MarketDataName = Literal["sample", "files", "ibkr", "ibkr_tws"]
ArtifactStoreName = Literal["local", "s3"]
SIMULATED: BrokerName = "simulated"  # where a replay-clock strategy trades: a replayed market trades nowhere else
# Adapters that talk through one IBKR gateway (Client Portal or TWS / IB Gateway): strategies using them run in
# the serving process only (embedded mode), and the demo trades SPY on their live bars.
GATEWAY_BROKERS: frozenset[str] = frozenset({"ibkr_web", "ibkr_tws"})
GATEWAY_MARKET_DATA: frozenset[str] = frozenset({"ibkr", "ibkr_tws"})
TWS_ADAPTERS: frozenset[str] = frozenset({"ibkr_tws"})  # of those, the ones on the TWS socket API (the rest: Web API)
# How the model analyst asks a server for JSON (tradetrail/analyst/response_format.py); auto falls back in order.
LlmResponseFormat = Literal["auto", "json_schema", "json_object", "prompt"]
LLM_RESPONSE_FORMATS: tuple[str, ...] = get_args(LlmResponseFormat)


class Settings(BaseSettings):
    """Process-wide configuration (read once; tests build their own instances)."""

    model_config = SettingsConfigDict(env_prefix="TRADETRAIL_", extra="ignore")

    home: Path = Field(default=Path("./var"), description="folder for the SQLite file and artifacts")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in home")
    artifacts_dir: Path | None = Field(default=None, description="local artifact folder; default home/artifacts")

    artifact_store: ArtifactStoreName = "local"
    s3_endpoint: str | None = Field(default=None, description="e.g. http://127.0.0.1:8333; empty means AWS")
    s3_bucket: str = Field(default="tradetrail", min_length=3, max_length=63)
    s3_prefix: str = "artifacts/"
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None

    market_data: MarketDataName = "sample"
    market_data_dir: Path | None = Field(default=None, description="folder for the 'files' market data")

    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    llm_max_attempts: int = Field(default=3, ge=1, le=3)
    llm_backoff_s: float = Field(default=1.0, ge=0, le=30)
    # How the model analyst asks for JSON (issue #15, docs/running.md "Model servers and response_format"): one
    # mode for every model, or per model as ``model=mode`` pairs, comma-separated (``*=mode`` for the others).
    llm_response_format: str = Field(
        default="auto", description="auto, json_schema, json_object or prompt; or per model, e.g. "
                                    "'llava:13b=json_object,*=auto'")
    analyst_plugins: Annotated[list[str], NoDecode] = Field(
        default=["tradetrail.analyst.examples"],
        description="the modules whose analyst plug-ins a strategy may name (analyst kind plugin): dotted module "
                    "names, each allowing itself and the modules under it; comma-separated or a JSON list; empty "
                    "allows none")

    allow_live_trading: bool = False
    ibkr_allowed_questions: str = Field(
        default="", description="comma-separated confirmation message ids answered 'yes' (e.g. o163,o354); "
                                "any other question cancels the submission")
    order_resubmit_window_s: float = Field(
        default=900, ge=0, description="reconciliation resends an intent the broker never received only if it is "
                                       "younger than this; older ones are cancelled with the reason")

    # --- IBKR Client Portal Web API (issue #4; README "IBKR (Client Portal Web API)") -------------------
    broker: BrokerName = Field(
        default=SIMULATED, description="the default broker; a strategy may name another (its `broker` field)")
    ibkr_url: str = Field(default="https://localhost:5000/v1/api", description="CP Gateway (or OAuth) REST base URL")
    ibkr_account: str | None = Field(default=None, description="account id; default: the first one IBKR lists")
    ibkr_verify_tls: str = Field(default="true", description="true, false, or the path of a CA bundle")
    ibkr_timeout_s: float = Field(default=15.0, gt=0, le=300, description="per request; a timed-out order is UNKNOWN")
    ibkr_compete: bool = Field(default=False, description="ssodh/init may take over a competing session")
    ibkr_keepalive_s: float = Field(default=60.0, ge=5, le=600, description="tickle interval while serving")
    ibkr_pacing_scale: float = Field(
        default=1.0, gt=0, le=1, description="multiplies IBKR's documented pacing intervals; keep 1 against a real "
                                             "gateway (tests use a smaller value against the fake gateway)")
    ibkr_cancel_wait_s: float = Field(default=30.0, ge=0, le=600,
                                      description="how long an exit waits for the broker to confirm cancellations")
    ibkr_oauth: bool = Field(default=False, description="OAuth 1.0a (no gateway) through ibind instead of a gateway")
    ibkr_oauth_consumer_key: SecretStr | None = None
    ibkr_oauth_access_token: SecretStr | None = None
    ibkr_oauth_access_token_secret: SecretStr | None = None
    ibkr_oauth_dh_prime: SecretStr | None = None
    ibkr_oauth_encryption_key_fp: Path | None = Field(default=None, description="private encryption key (PEM file)")
    ibkr_oauth_signature_key_fp: Path | None = Field(default=None, description="private signature key (PEM file)")
    ibkr_oauth_realm: str = "limited_poa"
    ibkr_oauth_rest_url: str = "https://api.ibkr.com/v1/api/"

    @field_validator("ibkr_url", "ibkr_oauth_rest_url")
    @classmethod
    def _ibkr_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("ibkr_verify_tls")
    @classmethod
    def _ibkr_tls(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in ("true", "false", "1", "0", "yes", "no") or Path(value).is_file():
            return value
        raise ValueError("must be true, false or the path of an existing CA bundle file")

    @property
    def ibkr_tls(self) -> bool | str:
        """What to verify the gateway's certificate with: True (system CAs), False, or a CA bundle path."""
        low = self.ibkr_verify_tls.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        return self.ibkr_verify_tls

    # One IBKR pacing budget across processes (issue #15; docs/ibkr.md "One budget across processes").
    ibkr_budget: Literal["auto", "redis", "process"] = Field(
        default="auto", description="auto: one budget in Redis (TRADETRAIL_REDIS_URL) shared by every process when "
                                    "the executor is celery, else this process's own; redis: always in Redis; "
                                    "process: each process keeps to a fixed share (unsafe with several workers)")
    # --- end of the IBKR block ------------------------------------------------------------------------------

    # --- IBKR through TWS / IB Gateway, the socket API (issue #16; docs/tws.md) -------------------------------
    tws_host: str = Field(default="127.0.0.1", description="TWS / IB Gateway host")
    tws_port: int = Field(default=4002, ge=1, le=65535, description="API port: 4002 IB Gateway paper, 4001 live; "
                                                                   "7497 TWS paper, 7496 live")
    tws_client_id: int = Field(
        default=1, ge=0, le=999_000, description="the first API clientId this deployment uses: a process takes the "
                                                 "first of client_id .. client_id + span - 1 no other connection holds")
    tws_client_id_span: int = Field(default=8, ge=1, le=64, description="how many clientIds the processes of this "
                                                                         "deployment may hold at once")
    tws_account: str | None = Field(default=None, description="account id; default: the only (or first) managed one")
    tws_market_data_type: Literal["live", "frozen", "delayed", "delayed_frozen"] = Field(
        default="live", description="reqMarketDataType after each connect: delayed needs no subscription")
    tws_connect_timeout_s: float = Field(default=10.0, gt=0, le=120, description="to connect and synchronise")
    tws_timeout_s: float = Field(default=15.0, gt=0, le=300, description="per request; an order TWS has not "
                                                                          "acknowledged by then is UNKNOWN")
    tws_reconnect_max_s: float = Field(default=60.0, gt=0, le=3600, description="longest wait between two "
                                                                                 "reconnection attempts")
    tws_pacing_scale: float = Field(
        default=1.0, gt=0, le=1, description="multiplies the historical-data pacing intervals; keep 1 against a real "
                                             "gateway (tests use a smaller value against the fake TWS)")
    tws_wire_log: bool = Field(default=False, description="log the TWS wire at DEBUG (logger ib_async.client): a "
                                                          "capture for checking the layouts; it names the account")
    tws_timezone: str = Field(default="America/New_York", description="the time zone TWS / IB Gateway is set to "
                              "(its login's time zone): an execution time TWS sends without a zone is read in it")

    @field_validator("tws_timezone")
    @classmethod
    def _tws_timezone_known(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: this block is the TWS adapter's own

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"TRADETRAIL_TWS_TIMEZONE={value!r} is not a known time zone (e.g. "
                             "America/New_York)") from None
        return value
    # --- end of the TWS block ----------------------------------------------------------------------------------

    reconcile_interval_s: float = Field(default=300, ge=0, description="tradetrail serve reconciles every "
                                                                       "account this often (0: only at start-up)")

    executor: Literal["embedded", "celery"] = Field(
        default="embedded", description="embedded: serve runs the schedule itself; celery: beat and workers do")
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_visibility_timeout_s: int = Field(default=3600, ge=1, description="an unacknowledged task (its worker "
                                                                             "died) is delivered again after this")
    worker_concurrency: int = Field(default=2, ge=1, le=64, description="processes of a worker that run "
                                                                         "executions (tradetrail worker)")
    worker_queues: str = Field(
        default="runs,control", description="what tradetrail worker consumes: runs (the executions), control "
                                            "(beat's dispatch and sweep, in a process of their own so they never "
                                            "wait behind runs), or both")
    worker_name: str | None = Field(
        default=None, max_length=80, description="the worker's Celery node name (NAME or NAME@host; default "
                                                 "tradetrail-<pid>@<host>, unique per process on a host)")
    slot_start_attempts: int = Field(
        default=4, ge=1, le=20, description="a slot task that fails before its run starts (nothing has run) is "
                                            "tried this many times in all, 2, 4, 8... s apart; then the slot is "
                                            "recorded failed with the reason")

    scheduler_enabled: bool = Field(default=True, description="tradetrail serve runs scheduled strategies")
    scheduler_interval_s: float = Field(default=5.0, gt=0, le=60, description="how often due slots are claimed")
    schedule_grace_s: float = Field(default=600, ge=0, description="a missed slot still runs if at most this late")
    embedded_workers: int = Field(
        default=64, ge=1, le=256, description="executions at once in embedded mode: threads that mostly wait on "
                                             "the model, so many (1,000 runs a minute at 2 s a model answer need ~100)")
    run_now_workers: int = Field(
        default=4, ge=1, le=64, description="runs started from the API (run now) at once in this process; "
                                           "more are refused with 503, never queued")
    embedded_processes: int = Field(
        default=1, ge=1, le=32, description="processes that run scheduled executions in embedded mode, each "
                                            "with its own pool of embedded_workers threads: one Python "
                                            "process computes on one core at a time, so one per core uses them all")
    embedded_cpu_slots: int = Field(
        default=2, ge=1, le=256, description="of those, how many do CPU work at once (one GIL): a run leaves its "
                                            "slot only while it waits on the model")
    sweep_interval_s: float = Field(
        default=60, gt=0, le=3600, description="how often executions left running by a dead process are marked "
                                               "failed (embedded dispatcher and Celery beat)")

    # --- notifications (issue #15; docs/notifications.md) ------------------------------------------------
    notify_key: SecretStr | None = Field(
        default=None, description="Fernet key channel URLs are encrypted with (Fernet.generate_key()); without it "
                                  "no channel can be added or read")
    notify_base_url: str | None = Field(
        default=None, description="what links in messages start with (default http://HOST:PORT of serve)")
    notify_enabled: bool = Field(default=True, description="serve (or beat's task) delivers notifications")
    notify_interval_s: float = Field(default=2.0, gt=0, le=300, description="how often the sender looks for work")
    notify_lease_s: float = Field(default=120.0, ge=1, le=3600, description="a claimed delivery whose sender died "
                                                                            "is sent again after this")
    notify_timeout_s: float = Field(default=15.0, gt=0, le=120, description="per delivery attempt")
    notify_max_attempts: int = Field(default=8, ge=1, le=50, description="attempts before a delivery is failed")
    notify_backoff_s: float = Field(default=5.0, ge=0, le=3600, description="wait after the first failed attempt; "
                                                                            "doubles after each, to an hour at most")
    notify_retention_days: float = Field(default=30, gt=0, le=3650, description="delivered, failed and undeliverable "
                                                                               "events older than this are pruned")
    notify_daily_summary: bool = Field(default=True, description="a summary per user after the 16:00 close")
    # --- end of the notifications block ------------------------------------------------------------------

    # --- Observability (issue #15; docs/running.md "Metrics, logs and health") ---------------------------
    metrics: Literal["off", "token", "open"] = Field(
        default="token", description="/metrics: off (404), token (an API token or a signed-in session, like the "
                                     "API) or open (anyone who reaches the port: bind it to a private network)")
    metrics_dir: Path | None = Field(
        default=None, description="where processes write their metric values when several record (Celery "
                                  "workers, embedded helper processes); default home/metrics; "
                                  "PROMETHEUS_MULTIPROC_DIR, when set, wins")
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, with the execution id and step")
    health_missed_ticks: int = Field(
        default=3, ge=1, le=100, description="/health: the dispatcher (Celery beat's dispatch, or the embedded "
                                             "dispatcher's pass) is down after this many intervals without one "
                                             "(at least 10 s)")
    health_overdue_s: float = Field(
        default=120, gt=0, description="/health: a schedule slot due this long and not claimed is overdue")
    health_running_max_s: float = Field(
        default=1800, gt=0, description="/health: an execution running longer than this is stuck")
    worker_heartbeat_s: float = Field(
        default=10, ge=1, le=300, description="how often a runs worker stamps its liveness in Redis")
    # --- end of the observability block -------------------------------------------------------------------

    sim_initial_cash: float = Field(default=100_000.0, gt=0)
    sim_commission: Literal["fixed", "tiered", "none"] = "fixed"
    sim_slippage_bps: float = Field(default=5.0, ge=0, le=500)
    sim_questions: str = Field(default="", description="simulator: confirmation message ids it asks on every order")
    sim_faults: str = Field(default="", description="simulator failure drills, e.g. place_timeout_after_accept")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600, description="browser session lifetime")
    cookie_secure: bool = Field(default=False, description="mark session cookies Secure (set it behind HTTPS)")
    trusted_proxies: str = Field(
        default="", description="comma-separated addresses whose X-Forwarded-For / X-Forwarded-Proto headers are "
                                "believed (a reverse proxy in front of serve); empty: none, the peer address counts")
    max_request_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000,
                                   description="largest request body the API accepts (413 above)")
    max_json_depth: int = Field(default=32, ge=4, le=256, description="deepest JSON nesting the API accepts (422)")

    @field_validator("analyst_plugins", mode="before")
    @classmethod
    def _plugin_prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        if isinstance(value, list):
            for name in value:
                if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
                    raise ValueError(f"{name!r} is not a dotted module name (such as tradetrail.analyst.examples)")
        return value

    @field_validator("worker_queues")
    @classmethod
    def _queues(cls, value: str) -> str:
        return worker_queues(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or "
                                     "10.0.0.0/24)") from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The addresses whose forwarded headers ``serve`` believes (empty: none)."""
        return [e.strip() for e in self.trusted_proxies.split(",") if e.strip()]

    @field_validator("llm_response_format")
    @classmethod
    def _response_format(cls, value: str) -> str:
        response_formats(value)
        return value

    def llm_response_format_for(self, model: str) -> LlmResponseFormat:
        """The response_format mode set for ``model`` (``auto`` unless the setting forces one)."""
        modes = response_formats(self.llm_response_format)
        return modes.get(model, modes.get("*", "auto"))

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
    def processes_sharing_gateway(self) -> int:
        """Our processes that may call the IBKR gateway at once: in embedded mode only the serving one
        (helpers leave IBKR strategies to it); with Celery a worker's processes plus the serving one
        (workers on other hosts are not counted)."""
        return 1 if self.executor == "embedded" else self.worker_concurrency + 1

    @model_validator(mode="after")
    def _processes_fit(self) -> Settings:
        if self.embedded_processes > 1 and ":memory:" in self.resolved_database_url:
            raise ValueError("embedded_processes > 1 needs a database file or server: an in-memory SQLite "
                             "database is private to each process")
        ibkr = (self.broker in GATEWAY_BROKERS - TWS_ADAPTERS
                or self.market_data in GATEWAY_MARKET_DATA - TWS_ADAPTERS)
        if ibkr and self.executor == "celery" and self.processes_sharing_gateway > 5:
            raise ValueError(f"worker_concurrency {self.worker_concurrency} is too many for one IBKR gateway: "
                             "it serves at most 5 history requests at once, so at most 4 worker processes "
                             "(plus the serving one) may share it")
        tws = self.broker in TWS_ADAPTERS or self.market_data in TWS_ADAPTERS
        if tws and self.executor == "celery" and self.processes_sharing_gateway > self.tws_client_id_span:
            raise ValueError(f"worker_concurrency {self.worker_concurrency} needs more TWS clientIds than "
                             f"tws_client_id_span ({self.tws_client_id_span}) gives: every worker process and the "
                             "serving one hold a connection of their own")
        return self

    @property
    def llm_configured(self) -> bool:
        return self.llm_base_url is not None


def response_formats(value: str) -> dict[str, LlmResponseFormat]:
    """``TRADETRAIL_LLM_RESPONSE_FORMAT`` as {model or "*": mode}: a lone mode is every model's."""
    out: dict[str, LlmResponseFormat] = {}
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        model, _, mode = entry.rpartition("=")
        model, mode = model.strip() or "*", mode.strip()
        if mode not in LLM_RESPONSE_FORMATS:
            raise ValueError(f"{mode!r} is not a response_format mode ({', '.join(LLM_RESPONSE_FORMATS)})")
        if model in out:
            raise ValueError(f"response_format given twice for {'every model' if model == '*' else model!r}")
        out[model] = mode  # type: ignore[assignment]
    return out


def worker_queues(value: str) -> str:
    """``runs``, ``control`` or ``runs,control`` (in that order) from what an operator wrote."""
    names = {q.strip() for q in value.split(",") if q.strip()}
    if not names or names - {"runs", "control"}:
        raise ValueError(f"must name runs, control or both (comma-separated), not {value!r}")
    return ",".join(q for q in ("runs", "control") if q in names)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()

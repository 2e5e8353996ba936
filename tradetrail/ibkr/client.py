"""The IBKR session every adapter shares: ibind for the HTTP, our pacing and session rules on top.

Why a wrapper rather than ibind's high-level calls alone:
- ibind retries timeouts and dropped connections by itself; an order must never be sent twice, so the
  ibind client here is built with ``max_retries=0`` and only idempotent reads are retried, by us, once,
  after reopening the session (401, "no bridge") or after a 429 back-off or a 503.
- ibind raises one error type with the body folded into the message; the adapters need the status and the
  JSON body (a duplicate client order id, ``reply id not found``), so non-2xx answers raise
  :class:`IbkrHttpError` with both.
- ibind's Tickler only tickles; ours also reopens the brokerage session and records what it saw.
- The pacing budget and the session epoch are the gateway's, not one process's: in the Celery mode they live
  in Redis (``redis_budget.py``), so a reopen by one process is seen by all before their next request, and a
  process that met a 401 after another already reopened the session asks again instead of reopening twice.
ibind does the rest: the requests session, TLS options, OAuth 1.0a signing and the live session token.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ibind import ExternalBrokerError, IbkrClient

from tradetrail.ibkr import metrics
from tradetrail.ibkr.errors import (
    BadReply,
    GatewayUnavailable,
    IbkrError,
    IbkrHttpError,
    NotAuthenticated,
    RateLimited,
    Unreachable,
)
from tradetrail.ibkr.pacing import endpoint_of, make_limiter, retry_after_s

log = logging.getLogger(__name__)

NO_SESSION_MARKERS = ("no bridge", "init session first", "not authenticated")
MAX_429_WAIT_S = 60.0  # an idempotent read waits out a back-off up to this long, then fails


class _Client(IbkrClient):
    """ibind's client with status-preserving errors (see the module docstring)."""

    def _process_response(self, response, result):
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise IbkrHttpError(response.status_code, body, response.text or "",
                                retry_after_s(response.headers.get("Retry-After")))
        try:
            result.data = response.json()
        except ValueError as exc:
            raise IbkrHttpError(response.status_code, None, f"not JSON: {response.text[:200]!r}") from exc
        return result


def _now() -> str:
    return datetime.now(UTC).isoformat()


class IbkrSession:
    """One per process (per App): the client, the pacing budget (this process's, or the one all processes
    share in Redis) and what we know of the session."""

    def __init__(self, settings):
        self.settings = settings
        self.url = settings.ibkr_oauth_rest_url if settings.ibkr_oauth else settings.ibkr_url
        self.limiter = make_limiter(settings)
        self._client: _Client | None = None
        self._build_lock = threading.Lock()
        self._reopen_lock = threading.Lock()
        self._sent = threading.local()  # the epoch this thread's last request was sent in
        self.info: dict[str, Any] = {"last_tickle": None, "last_tickle_error": None, "sso_expires_ms": None,
                                     "reopened": 0, "last_reopen": None, "last_reopen_error": None,
                                     "reopened_elsewhere": 0}
        self._question_pending_until = 0.0

    @property
    def epoch(self) -> int:
        """Increases whenever the brokerage session is (re)opened, by this process or (shared budget) any
        other: state valid for one brokerage session only is keyed by it."""
        return self.limiter.epoch()

    @property
    def sent_epoch(self) -> int | None:
        """The epoch this thread's last request was sent in (None before any)."""
        return getattr(self._sent, "epoch", None)

    # -- the ibind client --------------------------------------------------------------------------------
    def client(self) -> _Client:
        with self._build_lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def _build(self) -> _Client:
        s = self.settings
        common = dict(url=self.url + "/", timeout=s.ibkr_timeout_s, max_retries=0, use_session=True,
                      auto_register_shutdown=False, log_responses=False)
        if not s.ibkr_oauth:
            return _Client(cacert=s.ibkr_tls, use_oauth=False, **common)
        from ibind.oauth.oauth1a import OAuth1aConfig

        def secret(value):
            return value.get_secret_value() if value is not None else None

        config = OAuth1aConfig(
            oauth_rest_url=self.url + "/", access_token=secret(s.ibkr_oauth_access_token),
            access_token_secret=secret(s.ibkr_oauth_access_token_secret),
            consumer_key=secret(s.ibkr_oauth_consumer_key), dh_prime=secret(s.ibkr_oauth_dh_prime),
            encryption_key_fp=str(s.ibkr_oauth_encryption_key_fp) if s.ibkr_oauth_encryption_key_fp else None,
            signature_key_fp=str(s.ibkr_oauth_signature_key_fp) if s.ibkr_oauth_signature_key_fp else None,
            realm=s.ibkr_oauth_realm, init_oauth=True, init_brokerage_session=False, maintain_oauth=False,
            shutdown_oauth=False)
        try:
            return _Client(use_oauth=True, oauth_config=config, **common)
        except (ValueError, ImportError, RuntimeError, ExternalBrokerError) as exc:
            raise NotAuthenticated(f"IBKR OAuth 1.0a set-up failed: {type(exc).__name__}: {exc}") from None

    # -- requests ----------------------------------------------------------------------------------------
    def call(self, method: str, path: str, params: dict | None = None, body: Any = None, *,
             retry: bool = True) -> Any:
        """One request through the limiter. ``retry`` only for requests that change nothing at IBKR."""
        endpoint = endpoint_of(method, path)
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                with self.limiter.slot(endpoint) as epoch:
                    self._sent.epoch = sent = epoch
                    metrics.REQUESTS.labels(endpoint).inc()
                    result = self.client().request(method, path, params=params, json=body, log=False)
                self.limiter.succeeded()
                return result.data
            except IbkrHttpError as exc:
                if exc.status == 429:
                    metrics.RATE_LIMITED.labels(endpoint).inc()
                    backoff = self.limiter.penalize(endpoint, exc.retry_after)
                    if last or backoff > MAX_429_WAIT_S:
                        raise RateLimited(f"IBKR rate limit (429) on {method} /{path}; holding requests back "
                                          f"for {backoff:.1f} s") from None
                    continue
                if exc.status == 401 or (exc.status in (400, 403) and any(
                        m in exc.error_text.lower() for m in NO_SESSION_MARKERS)):
                    if last:
                        raise NotAuthenticated(f"IBKR {method} /{path}: not authenticated ({exc.status} "
                                               f"{exc.error_text or 'unauthorized'}); log in to the gateway "
                                               "(or check the OAuth settings)") from None
                    self.reopen(f"{exc.status} on {method} /{path}", seen_epoch=sent)
                    continue
                if exc.status == 503:
                    if last:
                        raise GatewayUnavailable(f"IBKR {method} /{path}: 503 service unavailable "
                                                 f"{exc.error_text}".rstrip()) from None
                    time.sleep(1.0 * self.limiter.scale)
                    continue
                raise
            except TimeoutError as exc:
                raise Unreachable(f"IBKR {method} /{path}: no answer within {self.settings.ibkr_timeout_s:g} s") \
                    from exc
            except ExternalBrokerError as exc:  # connection refused or dropped (ibind's wrapper)
                raise Unreachable(f"IBKR {method} /{path}: {_connection_reason(exc)}") from exc
        raise IbkrError(f"IBKR {method} /{path}: gave up")  # not reached

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.call("GET", path, params=params)

    # -- the brokerage session ---------------------------------------------------------------------------
    def auth_status(self) -> dict:
        data = self.call("POST", "iserver/auth/status", retry=False)
        if not isinstance(data, dict) or "authenticated" not in data:
            raise BadReply(f"IBKR auth status: unexpected answer {str(data)[:200]}")
        return data

    def reopen(self, why: str, seen_epoch: int | None = None) -> dict:
        """``ssodh/init``: open (again) the brokerage session behind ``/iserver``; with OAuth, first a new
        live session token. Serialised across threads and (shared budget) processes: concurrent callers wait
        for one reopen. ``seen_epoch``: the epoch in which the caller saw the session gone; if the session
        was reopened since (by another thread or process), nothing is sent and the caller asks again."""
        with self._reopen_lock, self.limiter.reopen_guard():
            if seen_epoch is not None and (current := self.limiter.epoch()) != seen_epoch:
                log.info("IBKR brokerage session: already reopened elsewhere (epoch %d, was %d); not again (%s)",
                         current, seen_epoch, why)
                self.info["reopened_elsewhere"] += 1
                return {}
            log.warning("IBKR brokerage session: reopening (%s)", why)
            # The epoch turns odd before the request: the gateway switches sessions when it handles it, not when
            # we read its answer, so a live-orders read in between must not count as a read of a settled session.
            self.limiter.begin_reopen()
            try:
                if self.settings.ibkr_oauth:
                    self.client().oauth_init(maintain_oauth=False, init_brokerage_session=False)
                data = self.call("POST", "iserver/auth/ssodh/init",
                                 body={"publish": True, "compete": self.settings.ibkr_compete}, retry=False)
            except IbkrHttpError as exc:
                self.info["last_reopen_error"] = f"{exc.status} {exc.error_text}".strip()
                raise NotAuthenticated(f"IBKR: cannot reopen the brokerage session ({exc.status} "
                                       f"{exc.error_text or 'unauthorized'}); log in to the gateway") from None
            except IbkrError as exc:
                self.info["last_reopen_error"] = str(exc)
                raise
            finally:  # succeeded or not, a new session may be in place: a new even epoch
                self.limiter.end_reopen()
            self.info.update(reopened=self.info["reopened"] + 1, last_reopen=_now(), last_reopen_error=None,
                             reopen_reason=why)
            return data if isinstance(data, dict) else {}

    def tickle(self) -> dict:
        """Keep the session alive; reopen the brokerage session if the tickle says it is gone."""
        try:
            data = self.call("POST", "tickle", retry=False)
        except IbkrError as exc:
            self.info["last_tickle_error"] = f"{_now()} {exc}"
            raise
        status = (data.get("iserver") or {}).get("authStatus") or {} if isinstance(data, dict) else {}
        self.info.update(last_tickle=_now(), last_tickle_error=None,
                         sso_expires_ms=data.get("ssoExpires") if isinstance(data, dict) else None)
        if status and not status.get("authenticated"):
            self.reopen("tickle: brokerage session not authenticated", seen_epoch=self.sent_epoch)
        return data

    def hold_for_question(self, seconds: float = 30.0) -> None:
        """A confirmation question is open: the keep-alive stays quiet (another request may void it)."""
        self._question_pending_until = time.monotonic() + seconds

    def question_done(self) -> None:
        self._question_pending_until = 0.0

    @property
    def question_pending(self) -> bool:
        return time.monotonic() < self._question_pending_until

    def describe(self) -> dict:
        """What the session looks like, for status pages; never a secret."""
        return {"url": self.url, "oauth": self.settings.ibkr_oauth, "tls_verify": self.settings.ibkr_tls
                if isinstance(self.settings.ibkr_tls, bool) else "CA bundle", "epoch": self.limiter.last_epoch,
                **self.info, "pacing": self.limiter.report()}


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    for marker, reason in (("Connection refused", "connection refused (is the gateway running?)"),
                           ("RemoteDisconnected", "the connection was dropped before an answer"),
                           ("Connection aborted", "the connection was dropped before an answer"),
                           ("Read timed out", "no answer in time")):
        if marker in text:
            return reason
    return f"connection failed: {text[:200]}"


class SessionKeeper:
    """Tickles every ``interval`` seconds while the service runs (IBKR drops idle sessions after a few
    minutes) and reopens the brokerage session when a tickle finds it gone. Quiet while a confirmation
    question is open."""

    def __init__(self, session: IbkrSession, interval: float):
        self.session, self.interval = session, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ibkr-keepalive", daemon=True)

    def start(self) -> SessionKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.session.question_pending:
                continue
            try:
                self.session.tickle()
            except Exception as exc:  # noqa: BLE001 - recorded in the session info; the next tick tries again
                log.warning("IBKR keep-alive: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

"""Sending one message through Apprise, with the channel's secrets kept out of every log line.

Apprise logs the full URL (tokens, webhook paths) at DEBUG, and urllib3 logs request paths: a filter on the
``apprise`` logger drops its DEBUG lines, and on it and the urllib3 loggers removes the secret parts of every
URL being checked or sent at that moment (what Apprise says about a failure also comes back through
``log_callback``, scrubbed, as the attempt's error). ``send`` returns only after the receiver answered
(Apprise's notify is synchronous), so ``ok`` means the receiver acknowledged the message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import apprise

from tradetrail.notify.secrets import scheme_of, scrub, secret_parts

_GUARDED = ("apprise", "urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")


class _InFlight(logging.Filter):
    """Drops Apprise's DEBUG records and removes the secret parts of the URLs in use from the others."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.urls: dict[int, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "apprise" and record.levelno < logging.INFO:
            return False
        with self.lock:
            urls = list(self.urls.values())
        if urls:
            text = record.getMessage()
            for url in urls:
                text = scrub(text, url)
            record.msg, record.args = text, None
        return True


_FILTER = _InFlight()
for _name in _GUARDED:
    logging.getLogger(_name).addFilter(_FILTER)


@contextmanager
def _guard(url: str) -> Iterator[None]:
    """While inside, log records of Apprise and urllib3 have ``url``'s secret parts removed."""
    token = object()
    with _FILTER.lock:
        _FILTER.urls[id(token)] = url
    try:
        yield
    finally:
        with _FILTER.lock:
            _FILTER.urls.pop(id(token), None)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None


class InvalidChannel(ValueError):
    """Apprise does not understand this URL (unknown scheme or a malformed one)."""


def check_url(url: str) -> None:
    """Raise :class:`InvalidChannel` unless Apprise can build a notifier from ``url`` (nothing is sent)."""
    if not isinstance(url, str) or not url.strip() or len(url) > 2000 or any(ord(c) < 32 for c in url):
        raise InvalidChannel("a channel is an Apprise URL of at most 2000 characters, e.g. json://host:port/path "
                             "or mailto://user:pass@host")
    with _guard(url):
        usable = apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None
    if not usable:
        raise InvalidChannel(f"Apprise cannot use this URL (scheme {scheme_of(url)!r}); see "
                             "https://github.com/caronc/apprise/wiki for the URL forms")


def send(url: str, title: str, body: str, *, timeout_s: float) -> SendResult:
    """Send ``title``/``body`` to ``url``; ok only when the receiver accepted it. Never raises."""
    lines: list[str] = []
    with _guard(url):
        return _send(url, title, body, timeout_s, lines)


def _send(url: str, title: str, body: str, timeout_s: float, lines: list[str]) -> SendResult:
    try:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return SendResult(False, "Apprise cannot use this channel's URL")
        result = notifier.notify(body, title=title, timeout=timeout_s, log_level=logging.WARNING,
                                 log_callback=lambda entry, _plugin: lines.append(entry.message))
        if bool(result):
            return SendResult(True)
        return SendResult(False, scrub("; ".join(lines) or "the receiver did not accept the message", url)[:1000])
    except Exception as exc:  # noqa: BLE001 - a sender must survive any plug-in failure and record it
        return SendResult(False, scrub(f"{type(exc).__name__}: {exc}", url)[:1000])


__all__ = ["SendResult", "InvalidChannel", "check_url", "send", "secret_parts"]

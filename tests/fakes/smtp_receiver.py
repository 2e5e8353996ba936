"""A real SMTP server for tests (aiosmtpd) on 127.0.0.1: plain SMTP, no TLS, AUTH LOGIN/PLAIN over the
plain connection with one user, recording every message it accepts."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    def __init__(self, owner: SmtpReceiver):
        self.owner = owner

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        with self.owner.lock:
            self.owner.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                        message_from_bytes(envelope.original_content or envelope.content)))
        return "250 OK"


class SmtpReceiver:
    """``with SmtpReceiver(user, password) as smtp:`` gives ``smtp.port`` and ``smtp.messages``."""

    def __init__(self, user: str = "alerts", password: str = "s3cret-pass"):
        self.user, self.password = user, password
        self.lock = threading.Lock()
        self.messages: list[tuple[str, list[str], Message]] = []
        self.port = _free_port()
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user \
            and auth_data.password.decode() == self.password
        return AuthResult(success=ok)

    def __enter__(self) -> SmtpReceiver:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      authenticator=self._authenticate, auth_require_tls=False)
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._controller is not None:
            self._controller.stop()

    def url(self, to: str = "trader@example.com") -> str:
        """Apprise's mailto:// for this server: plain SMTP (mode=insecure), the given login."""
        return (f"mailto://{self.user}:{self.password}@127.0.0.1:{self.port}"
                f"?mode=insecure&from=tradetrail@example.com&to={to}")

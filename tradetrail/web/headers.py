"""Security headers on every response: a strict Content-Security-Policy and its companions.

Scripts and styles come only from this server's own files (no inline script or style, no eval, nothing from
another origin), so an injected ``<script>`` or ``style=`` does nothing even if escaping ever failed. Images
may be ``data:`` URIs (Swagger UI's icons); pages are never framed. One inline stylesheet is allowed by its
hash: the one Lightweight Charts adds to place TradingView's attribution logo (its licence asks for the
logo; a new version with other text shows up as a CSP violation in the browser tests).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ATTRIBUTION_STYLE = "sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY="  # lightweight-charts 5.2.1
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    f"style-src 'self' '{ATTRIBUTION_STYLE}'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """Pure ASGI (no buffering): adds each header a response does not set itself."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in HEADERS if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

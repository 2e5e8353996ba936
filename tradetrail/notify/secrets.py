"""Channel URLs hold secrets (bot tokens, webhook paths, mail passwords): stored encrypted with Fernet under
``TRADETRAIL_NOTIFY_KEY``, shown only as scheme and host (the host only where it names a server).

Without a key nothing is stored: adding a channel fails with :class:`NotifyKeyMissing` saying how to make
one. A key that cannot decrypt a stored channel (it was changed) fails that channel's deliveries with a
clear error, never a plaintext fallback.

Rotation: the setting may list several keys, comma-separated, newest first (cryptography's ``MultiFernet``):
the first encrypts, any of them decrypts, and ``tradetrail notify rekey`` re-encrypts every channel under the
first, after which the old keys can be dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_HELP = ("set TRADETRAIL_NOTIFY_KEY to a Fernet key, e.g. the output of "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`")
MAX_URL = 2000


class NotifyKeyMissing(RuntimeError):
    """No usable key: channels cannot be stored or read."""


class ChannelUnreadable(RuntimeError):
    """A stored channel does not decrypt with the current key (the key was changed)."""


def keys_of(key: str | None) -> list[str]:
    """The keys the setting lists, newest first."""
    return [k.strip() for k in (key or "").split(",") if k.strip()]


def vault(key: str | None) -> MultiFernet:
    keys = keys_of(key)
    if not keys:
        raise NotifyKeyMissing(f"notification channels are stored encrypted and no key is configured: {KEY_HELP}")
    fernets = []
    for number, one in enumerate(keys, 1):
        try:
            fernets.append(Fernet(one.encode()))
        except (ValueError, TypeError):
            which = f"key {number} of TRADETRAIL_NOTIFY_KEY" if len(keys) > 1 else "TRADETRAIL_NOTIFY_KEY"
            raise NotifyKeyMissing(f"{which} is not a Fernet key (32 url-safe base64 bytes): {KEY_HELP}") from None
    return MultiFernet(fernets)


def rotate(key: str | None, token: str) -> str:
    """``token`` re-encrypted under the first key (ChannelUnreadable when none of the keys opens it)."""
    try:
        return vault(key).rotate(token.encode()).decode()
    except InvalidToken:
        raise ChannelUnreadable("this channel was stored under a key TRADETRAIL_NOTIFY_KEY does not list") from None


def encrypt(key: str | None, url: str) -> str:
    return vault(key).encrypt(url.encode()).decode()


def decrypt(key: str | None, token: str) -> str:
    try:
        return vault(key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ChannelUnreadable("this channel was stored under another TRADETRAIL_NOTIFY_KEY: remove it and add "
                                "it again") from None


# Schemes whose host is a server's name. For most other Apprise schemes the host IS the secret (pbul://TOKEN,
# pover://user@APPTOKEN, prowl://APIKEY, join://APIKEY/...), so it is never shown.
HOST_SCHEMES = {"json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos"}
TOPIC_SCHEMES = {"ntfy", "ntfys"}  # ntfy://topic is ntfy.sh's topic (a secret); ntfy://host/topic a server's


def scheme_of(url: str) -> str:
    """A channel URL's scheme, lowercased, when it looks like one (a letter, then letters, digits or +; 16 at
    most), else ``other``: the only part of a URL fit for a message or a metrics label."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme if re.fullmatch(r"[a-z][a-z0-9+]{0,15}", scheme) else "other"


def redact(url: str, key: str | None = None) -> str:
    """What a channel is shown as: ``json://127.0.0.1:…`` (scheme and host, no user, password, port, path or
    query) where the host names a server, else the scheme and, with ``key``, a fingerprint telling two
    channels of one scheme apart (``pbul://… #1a2b3c4d``: an HMAC under the key, so a short token cannot be
    guessed from it; without the key no fingerprint at all)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "(unreadable URL)"
    scheme = (parts.scheme or "?").lower()
    server = scheme in HOST_SCHEMES or (scheme in TOPIC_SCHEMES and parts.path.strip("/") != "")
    if host and server:
        return f"{scheme}://{host}:…"
    return f"{scheme}://…" + (f" #{fingerprint(key, url)}" if key else "")


def fingerprint(key: str, url: str) -> str:
    """The first 8 hex digits of HMAC-SHA256 of ``url`` under the (first) key."""
    first = (keys_of(key) or [key])[0]
    return hmac.new(first.encode(), url.encode(), hashlib.sha256).hexdigest()[:8]


def secret_parts(url: str) -> list[str]:
    """Every piece of ``url`` that may be secret, longest first, for scrubbing text that might echo it."""
    try:
        parts = urlsplit(url)
        pieces = [url, parts.netloc, parts.password or "", parts.username or "", parts.path, parts.query]
        pieces += [p for p in parts.path.split("/") if len(p) >= 4]
        pieces += [v.split("=", 1)[-1] for v in parts.query.split("&") if len(v.split("=", 1)[-1]) >= 4]
    except ValueError:
        pieces = [url]
    return sorted({p for p in pieces if p and len(p) >= 4}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    for piece in secret_parts(url):
        text = text.replace(piece, "…")
    return text

"""Channel URLs: redaction keeps scheme and host only, scrubbing removes every secret part, encryption needs
a key and refuses a token made under another."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from tradetrail.notify.secrets import ChannelUnreadable, NotifyKeyMissing, decrypt, encrypt, redact, scrub

URL = "tgram://123456:AAH-secret-bot-token/987654321?format=markdown"


def test_redaction_is_scheme_and_host_only():
    assert redact(URL) == "tgram://123456:…"  # Apprise puts the bot id where a host goes; the token is gone
    assert redact("mailto://user:pa55word@smtp.example.com:587?to=me@example.com") == "mailto://smtp.example.com:…"
    assert redact("json://127.0.0.1:8080/hooks/abc") == "json://127.0.0.1:…"
    assert redact("not a url") == "?://…"


def test_scrub_removes_the_password_the_path_and_the_query_values():
    url = "json://bot:pa55word-xyz@127.0.0.1:9/hooks/tok-123456?key=qwerty-9"
    text = f"failed POST {url} (pa55word-xyz) /hooks/tok-123456 qwerty-9 tok-123456"
    cleaned = scrub(text, url)
    for secret in ("pa55word-xyz", "tok-123456", "qwerty-9"):
        assert secret not in cleaned


def test_encryption_needs_a_key_and_the_same_key():
    key, other = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = encrypt(key, URL)
    assert "secret" not in token and decrypt(key, token) == URL
    with pytest.raises(ChannelUnreadable):
        decrypt(other, token)
    with pytest.raises(NotifyKeyMissing, match="TRADETRAIL_NOTIFY_KEY"):
        encrypt(None, URL)
    with pytest.raises(NotifyKeyMissing, match="not a Fernet key"):
        encrypt("short", URL)

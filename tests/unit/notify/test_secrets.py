"""Channel URLs: redaction keeps the scheme and a server's host only (a host that is a token is never shown),
scrubbing removes every secret part, encryption needs a key and refuses a token made under another."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from tradetrail.notify.secrets import ChannelUnreadable, NotifyKeyMissing, decrypt, encrypt, fingerprint, redact, scrub

URL = "tgram://123456:AAH-secret-bot-token/987654321?format=markdown"


KEY = Fernet.generate_key().decode()


def test_redaction_is_scheme_and_host_only():
    assert redact(URL) == "tgram://…"  # Apprise puts the bot id where a host goes: part of the token, not shown
    assert redact("mailto://user:pa55word@smtp.example.com:587?to=me@example.com") == "mailto://smtp.example.com:…"
    assert redact("json://127.0.0.1:8080/hooks/abc") == "json://127.0.0.1:…"
    assert redact("not a url") == "?://…"
    assert redact("JSONS://hooks.example.com/x") == "jsons://hooks.example.com:…"
    assert redact("forms://user:pw@hooks.example.com/x") == "forms://hooks.example.com:…"


@pytest.mark.parametrize("url", [
    "pbul://o.PLANTEDpushbullettoken1234", "pover://userkey123@PLANTEDappToken5678", "ntfys://planted-secret-topic",
    "ntfy://planted-secret-topic/", "join://PLANTEDjoinApiKey99/device1", "prowl://PLANTEDprowlApiKey00",
    "opsgenie://PLANTEDopsgenieKey11", URL])
def test_a_host_that_is_a_token_is_never_shown(url):
    secret_bits = [p for p in url.split("://", 1)[1].replace("@", "/").split("/") if p]
    for shown in (redact(url), redact(url, KEY)):
        assert shown.startswith(url.split("://")[0].lower() + "://…"), shown
        for bit in secret_bits:
            assert bit.lower() not in shown.lower(), (bit, shown)


def test_without_the_key_no_fingerprint_with_it_one_that_tells_channels_apart():
    one, two = "pbul://tokenA", "pbul://tokenB"
    assert redact(one) == "pbul://…"  # a hash of the URL alone would let a short token be guessed
    assert redact(one, KEY) == f"pbul://… #{fingerprint(KEY, one)}" and len(fingerprint(KEY, one)) == 8
    assert redact(one, KEY) != redact(two, KEY)
    assert redact(one, KEY) == redact(one, KEY)  # stable: the same channel, the same fingerprint
    assert redact(one, Fernet.generate_key().decode()) != redact(one, KEY)  # not computable without the key


def test_ntfy_shows_a_self_hosted_server_not_a_topic():
    assert redact("ntfys://ntfy.example.com/alerts") == "ntfys://ntfy.example.com:…"
    assert redact("ntfy://user:pw@10.0.0.5:8080/alerts?priority=high") == "ntfy://10.0.0.5:…"
    assert redact("ntfys://planted-topic", KEY).startswith("ntfys://… #")


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


def test_only_a_plain_scheme_is_shown_or_labelled():
    from tradetrail.notify.secrets import scheme_of

    assert scheme_of("JSON://127.0.0.1:9/x") == "json" and scheme_of("mailtos://a:b@h") == "mailtos"
    assert scheme_of("no scheme at all") == scheme_of("s3cr3t-token-with-dashes://x") == "other"
    assert scheme_of("a" * 17 + "://x") == "other"  # too long to be a scheme: maybe a token

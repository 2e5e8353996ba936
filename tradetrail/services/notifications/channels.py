"""A user's notification channels, for the command line, the API and the settings page alike.

The URL is checked by Apprise, encrypted, and from then on only its redacted form (see ``secrets.redact``) is ever
returned. ``test`` sends one message at once and says whether the receiver accepted it.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from tradetrail.db.notify_models import NotifyChannel
from tradetrail.db.types import utcnow
from tradetrail.domain.errors import NotFound
from tradetrail.notify import secrets, sending
from tradetrail.notify.outbox import KINDS
from tradetrail.notify.secrets import ChannelUnreadable, NotifyKeyMissing
from tradetrail.notify.sending import InvalidChannel

MAX_CHANNELS = 20
__all__ = ["ChannelError", "NotifyKeyMissing", "ChannelUnreadable", "add_channel", "list_channels",
           "remove_channel", "test_channel", "rekey_channels", "parse_events", "KINDS"]


class ChannelError(ValueError):
    """Bad channel input (URL Apprise cannot use, unknown event kind, too many channels): the message says why."""


def _key(app) -> str | None:
    key = app.settings.notify_key
    return key.get_secret_value() if key is not None else None


def parse_events(events) -> list[str]:
    """``None``/empty/"*" -> all; else a comma-separated string or a list of known kinds."""
    if events is None:
        return ["*"]
    items = [e.strip() for e in (events.split(",") if isinstance(events, str) else events) if str(e).strip()]
    if not items or "*" in items or "all" in items:
        return ["*"]
    unknown = sorted(set(items) - set(KINDS))
    if unknown:
        raise ChannelError(f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)} (or all)")
    return sorted(set(items), key=KINDS.index)


def _row(c: NotifyChannel) -> dict:
    return {"id": c.id, "channel": c.redacted, "events": list(c.events),
            "created_at": c.created_at.isoformat() if c.created_at else None}


def add_channel(app, user_id: int, url: str, events=None) -> dict:
    wanted = parse_events(events)
    key = _key(app)
    secrets.vault(key)  # no key, no channel: refuse before anything else (never stored in plaintext)
    try:
        sending.check_url(url)
    except InvalidChannel as exc:
        raise ChannelError(str(exc)) from None
    with app.Session() as s:
        count = len(s.scalars(select(NotifyChannel.id).where(NotifyChannel.user_id == user_id)).all())
        if count >= MAX_CHANNELS:
            raise ChannelError(f"at most {MAX_CHANNELS} channels per user; remove one first")
        row = NotifyChannel(user_id=user_id, secret=secrets.encrypt(key, url), redacted=secrets.redact(url, key),
                            events=wanted, created_at=utcnow())
        s.add(row)
        s.commit()
        return _row(row)


def list_channels(app, user_id: int) -> list[dict]:
    with app.Session() as s:
        return [_row(c) for c in s.scalars(select(NotifyChannel).where(NotifyChannel.user_id == user_id)
                                           .order_by(NotifyChannel.id))]


def _mine(s, user_id: int, channel_id: int) -> NotifyChannel:
    row = s.get(NotifyChannel, channel_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"no notification channel {channel_id}")
    return row


def remove_channel(app, user_id: int, channel_id: int) -> dict:
    """Remove the channel and its whole delivery history: every delivery to it, pending or done, and their
    attempts go with it (ON DELETE CASCADE). The events stay for the user's other channels."""
    with app.Session() as s:
        row = _mine(s, user_id, channel_id)
        out = _row(row)
        s.execute(delete(NotifyChannel).where(NotifyChannel.id == channel_id))
        s.commit()
    return out


def test_channel(app, user_id: int, channel_id: int) -> dict:
    """Send one test message now; ``ok`` when the receiver accepted it, else the (redacted) error."""
    with app.Session() as s:
        row = _mine(s, user_id, channel_id)
        redacted, token = row.redacted, row.secret
    url = secrets.decrypt(_key(app), token)
    result = sending.send(url, "tradetrail: test", f"Test message from tradetrail to channel {channel_id} "
                          f"({redacted}).", timeout_s=app.settings.notify_timeout_s)
    return {"id": channel_id, "channel": redacted, "ok": result.ok, "error": result.error}


def rekey_channels(app) -> dict:
    """Every user's channels re-encrypted under the first key of TRADETRAIL_NOTIFY_KEY (any listed key opens
    them); a channel none of the keys opens is left as it is and counted (its deliveries fail until it is added
    again). Run after putting a new key first; the old ones can then be dropped from the setting."""
    key = _key(app)
    secrets.vault(key)
    done, unreadable = 0, []
    with app.Session() as s:
        for row in s.scalars(select(NotifyChannel).order_by(NotifyChannel.id)):
            try:
                row.secret = secrets.rotate(key, row.secret)
                row.redacted = secrets.redact(secrets.decrypt(key, row.secret), key)  # its fingerprint, new key
                done += 1
            except ChannelUnreadable:
                unreadable.append(row.id)
        s.commit()
    return {"rekeyed": done, "unreadable": unreadable}

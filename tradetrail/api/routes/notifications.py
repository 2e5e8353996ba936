"""Notification channels: add (the URL is never returned, only a redacted form: see notify/secrets.redact), list,
test, remove."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tradetrail.api.deps import AppDep, RowId, UserDep
from tradetrail.api.errors import ERROR_RESPONSES, ApiError
from tradetrail.services.notifications import channels as svc

router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=ERROR_RESPONSES)


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(min_length=3, max_length=2000, description="an Apprise URL (stored encrypted, never returned)")
    events: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None, max_length=20, description=f"event kinds, default all: {', '.join(svc.KINDS)}")


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, svc.NotifyKeyMissing):
        return ApiError(409, "notify_key_missing", str(exc))
    if isinstance(exc, svc.ChannelUnreadable):
        return ApiError(409, "channel_unreadable", str(exc))
    return ApiError(422, "invalid_input", str(exc))


@router.post("", response_model=dict[str, Any], status_code=201)
def add(body: ChannelIn, app: AppDep, user: UserDep) -> dict:
    """Add a channel; the answer shows it redacted, as every later one does."""
    try:
        return svc.add_channel(app, user.user_id, body.url, body.events)
    except (svc.ChannelError, svc.NotifyKeyMissing) as exc:
        raise _refused(exc) from None


@router.get("", response_model=list[dict[str, Any]])
def list_(app: AppDep, user: UserDep) -> list[dict]:
    return svc.list_channels(app, user.user_id)


@router.post("/{channel_id}/test", response_model=dict[str, Any])
def test(channel_id: RowId, app: AppDep, user: UserDep) -> dict:
    """Send a test message now: ``ok`` when the receiver accepted it, else the reason (redacted)."""
    try:
        return svc.test_channel(app, user.user_id, channel_id)
    except (svc.NotifyKeyMissing, svc.ChannelUnreadable) as exc:
        raise _refused(exc) from None


@router.delete("/{channel_id}", response_model=dict[str, Any])
def remove(channel_id: RowId, app: AppDep, user: UserDep) -> dict:
    return svc.remove_channel(app, user.user_id, channel_id)

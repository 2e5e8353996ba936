"""Artifacts (charts, bars, prompts, answers) by content hash, for the browser and scripts.

This is the URL lineage rows carry (``/api/artifacts/<sha256>``), whichever store holds the bytes (local
folder or S3), so a browser never needs the store's own credentials.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from tradetrail.api.deps import AppDep, UserDep
from tradetrail.api.errors import ERROR_RESPONSES
from tradetrail.services.runs.artifacts import load_for_user

router = APIRouter(prefix="/api/artifacts", tags=["artifacts"], responses=ERROR_RESPONSES)


@router.get("/{sha256}", response_class=Response,
            responses={200: {"description": "the artifact's bytes",
                             "content": {"image/png": {}, "application/json": {}, "text/plain": {}}}})
def artifact(sha256: Annotated[str, Path(pattern="^[0-9a-f]{64}$")], app: AppDep, user: UserDep) -> Response:
    data, content_type = load_for_user(app, user.user_id, sha256)
    return Response(content=data, media_type=content_type,
                    headers={"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable",
                             "X-Content-Type-Options": "nosniff"})

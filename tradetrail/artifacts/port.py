"""Artifact store port: content-addressed bytes (sha256 of the content is the key).

Adapters: ``local`` (a folder; the embedded default) and, later, ``s3``. Storing the same bytes twice is a
no-op, so every caller can just ``put`` and keep the hash.
"""

from __future__ import annotations

import hashlib
from typing import Protocol


class ArtifactNotFound(KeyError):
    """No artifact with that hash in the store."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_hash(sha256: str) -> str:
    """Reject anything that is not a lowercase sha256 hex digest (it becomes part of a path or key)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256[:80]!r}")
    return sha256


class ArtifactStore(Protocol):
    name: str

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes for ``sha256``; :class:`ArtifactNotFound` if absent."""
        ...

    def exists(self, sha256: str) -> bool: ...

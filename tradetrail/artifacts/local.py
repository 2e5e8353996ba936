"""The ``local`` artifact store: ``<root>/<first two hex>/<sha256>``, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tradetrail.artifacts.port import ArtifactNotFound, check_hash, sha256_hex


class LocalArtifactStore:
    name = "local"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        check_hash(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        path = self._path(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(sha256) from None

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

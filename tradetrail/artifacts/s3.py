"""The ``s3`` artifact store: any S3-compatible server (AWS, SeaweedFS, MinIO, R2, ...) via boto3, with
path-style addressing, so workers on different machines share charts and payloads.

Keys are ``<prefix><first two hex>/<sha256>``. The content is immutable, so a key that exists is never
written again. The browser gets the bytes through the API (or a presigned URL when asked for one).
"""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tradetrail.artifacts.port import ArtifactNotFound, check_hash, sha256_hex

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3ArtifactStore:
    name = "s3"

    def __init__(self, *, endpoint: str | None, bucket: str, access_key: str | None, secret_key: str | None,
                 region: str = "us-east-1", prefix: str = "artifacts/", timeout_s: float = 10.0):
        self.bucket, self.prefix = bucket, prefix
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=region, config=Config(s3={"addressing_style": "path"}, connect_timeout=timeout_s,
                                              read_timeout=timeout_s, retries={"max_attempts": 3, "mode": "standard"}))

    def _key(self, sha256: str) -> str:
        check_hash(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (idempotent)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _MISSING:
                raise
            self.client.create_bucket(Bucket=self.bucket)

    def exists(self, sha256: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        if not self.exists(digest):
            self.client.put_object(Bucket=self.bucket, Key=self._key(digest), Body=data)
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(sha256))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise ArtifactNotFound(sha256) from None
            raise

    def presigned_url(self, sha256: str, expires_s: int = 3600) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket,
                                                                        "Key": self._key(sha256)},
                                                  ExpiresIn=expires_s)

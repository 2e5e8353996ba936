"""The S3 artifact store against a real S3 server (SeaweedFS on 127.0.0.1), and a demo run that uses it."""

from __future__ import annotations

import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.fakes.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3
from tests.support.helpers import demo
from tradetrail.artifacts.port import ArtifactNotFound, sha256_hex
from tradetrail.artifacts.s3 import S3ArtifactStore
from tradetrail.runtime.build import build_app
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.settings import Settings


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


def _store(s3, bucket="tradetrail-test", secret=SECRET_KEY) -> S3ArtifactStore:
    store = S3ArtifactStore(endpoint=s3.endpoint, bucket=bucket, access_key=ACCESS_KEY, secret_key=secret)
    return store


def test_put_get_exists_and_content_addressing(s3):
    store = _store(s3)
    store.ensure_bucket()
    store.ensure_bucket()  # idempotent
    digest = store.put(b"chart bytes")
    assert digest == sha256_hex(b"chart bytes") and store.exists(digest)
    assert store.put(b"chart bytes") == digest
    assert store.get(digest) == b"chart bytes"
    with urllib.request.urlopen(store.presigned_url(digest, 60), timeout=5) as resp:
        assert resp.read() == b"chart bytes"


def test_missing_artifact_and_bad_hash(s3):
    store = _store(s3)
    store.ensure_bucket()
    absent = sha256_hex(b"never stored")
    assert store.exists(absent) is False
    with pytest.raises(ArtifactNotFound):
        store.get(absent)
    with pytest.raises(ValueError):
        store.get("../../etc/passwd")


def test_wrong_secret_is_refused_by_the_server(s3):
    _store(s3).ensure_bucket()
    with pytest.raises(ClientError) as err:
        _store(s3, secret="not-the-secret").put(b"x")
    assert err.value.response["Error"]["Code"] in {"403", "SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId"}


def test_demo_run_stores_its_charts_in_s3(s3, settings):
    configured = Settings(home=settings.home, database_url=settings.database_url, artifact_store="s3",
                          s3_endpoint=s3.endpoint, s3_bucket="tradetrail-demo", s3_access_key=ACCESS_KEY,
                          s3_secret_key=SECRET_KEY)
    app = build_app(configured, migrate=False)
    user_id, _ = demo(app)
    data = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert data["status"] == "succeeded", data["error"]
    digest = data["steps"][5]["artifacts"]["chart_daily"]
    png, ctype = app.artifacts.load(digest)
    assert ctype == "image/png" and png.startswith(b"\x89PNG") and sha256_hex(png) == digest
    assert _store(s3, bucket="tradetrail-demo").get(digest) == png
    assert not (settings.home / "artifacts").exists()  # nothing went to the local folder


def test_the_browser_url_of_an_s3_chart_is_served_by_the_api(s3, settings):
    """Lineage links to /api/artifacts/<hash>; with S3 behind it the API streams the bytes (no S3 credentials
    in the browser), and only to the owner."""
    from tests.support.api_client import api_user

    configured = Settings(home=settings.home, database_url=settings.database_url, artifact_store="s3",
                          s3_endpoint=s3.endpoint, s3_bucket="tradetrail-api", s3_access_key=ACCESS_KEY,
                          s3_secret_key=SECRET_KEY)
    app = build_app(configured, migrate=False)
    user_id, _ = demo(app)
    data = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    charts = data["steps"][5]["output"]
    assert charts["daily"]["url"] == f"/api/artifacts/{charts['daily']['sha256']}"
    alice = api_user(app, "demo")
    r = alice.get(charts["daily"]["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert sha256_hex(r.content) == charts["daily"]["sha256"]
    assert api_user(app, "bob", client=alice.client).get(charts["daily"]["url"]).status_code == 404

"""Settings from the environment, the local content-addressed store and the artifact registry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tradetrail.app_context import App
from tradetrail.artifacts.local import LocalArtifactStore
from tradetrail.artifacts.port import ArtifactNotFound
from tradetrail.artifacts.registry import ArtifactRegistry
from tradetrail.db.models import Artifact
from tradetrail.settings import Settings

# ------------------------------------------------------------------------------------------------------- settings


def test_settings_read_tradetrail_environment_variables(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADETRAIL_HOME", str(tmp_path))
    monkeypatch.setenv("TRADETRAIL_MARKET_DATA", "files")
    monkeypatch.setenv("TRADETRAIL_MARKET_DATA_DIR", str(tmp_path / "bars"))
    monkeypatch.setenv("TRADETRAIL_LLM_BASE_URL", "http://127.0.0.1:8080/v1/")
    monkeypatch.setenv("TRADETRAIL_LLM_API_KEY", "sk-test-123")
    monkeypatch.setenv("TRADETRAIL_LLM_MODEL", "local-vision")
    monkeypatch.setenv("TRADETRAIL_LLM_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("TRADETRAIL_ALLOW_LIVE_TRADING", "true")
    monkeypatch.setenv("TRADETRAIL_PORT", "9001")
    s = Settings()
    assert s.home == tmp_path
    assert s.market_data == "files"
    assert s.market_data_dir == tmp_path / "bars"
    assert s.llm_base_url == "http://127.0.0.1:8080/v1"  # trailing slash removed
    assert s.llm_configured is True
    assert s.llm_api_key.get_secret_value() == "sk-test-123"
    assert "sk-test-123" not in repr(s)
    assert (s.llm_model, s.llm_max_attempts, s.allow_live_trading, s.port) == ("local-vision", 2, True, 9001)
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'tradetrail.db'}"
    assert s.resolved_artifacts_dir == tmp_path.resolve() / "artifacts"


def test_settings_defaults_are_the_embedded_deployment() -> None:
    s = Settings()
    assert s.home == Path("./var")
    assert s.resolved_database_url == f"sqlite:///{(Path('var') / 'tradetrail.db').resolve()}"
    assert s.resolved_artifacts_dir == (Path("var") / "artifacts").resolve()
    assert (s.market_data, s.llm_base_url, s.llm_configured, s.allow_live_trading) == ("sample", None, False, False)


def test_default_sqlite_url_is_under_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/h/tradetrail.db"
    explicit = Settings(home=tmp_path, database_url="postgresql+psycopg://u@db/x", artifacts_dir=tmp_path / "a")
    assert explicit.resolved_database_url == "postgresql+psycopg://u@db/x"
    assert explicit.resolved_artifacts_dir == (tmp_path / "a").resolve()


@pytest.mark.parametrize("url", ["127.0.0.1:8080/v1", "localhost", "ftp://host/v1"])
def test_llm_base_url_without_http_scheme_is_rejected(monkeypatch, url: str) -> None:
    monkeypatch.setenv("TRADETRAIL_LLM_BASE_URL", url)
    with pytest.raises(ValidationError) as err:
        Settings()
    assert "llm_base_url" in str(err.value)
    assert "must start with http:// or https://" in str(err.value)


def test_empty_llm_base_url_means_not_configured(monkeypatch) -> None:
    monkeypatch.setenv("TRADETRAIL_LLM_BASE_URL", "")
    assert Settings().llm_configured is False


@pytest.mark.parametrize(("name", "value"), [("TRADETRAIL_PORT", "0"), ("TRADETRAIL_LLM_MAX_ATTEMPTS", "9"),
                                             ("TRADETRAIL_MARKET_DATA", "yahoo"), ("TRADETRAIL_LLM_TIMEOUT_S", "-1")])
def test_out_of_range_environment_values_are_rejected(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    assert name.removeprefix("TRADETRAIL_").lower() in str(err.value)


# ---------------------------------------------------------------------------------------------------- local store


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_local_store_put_get_exists(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    data = b"\x89PNG\r\n\x1a\n fake chart"
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.get(digest) == data
    assert store.exists(digest) is True
    assert stored_files(tmp_path / "store") == [tmp_path / "store" / digest[:2] / digest]


def test_same_bytes_twice_give_the_same_hash_and_one_file(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    first, second = store.put(b"bars"), store.put(b"bars")
    other = store.put(b"bars!")
    assert first == second != other
    assert len(stored_files(tmp_path / "store")) == 2  # no leftover temporary files either
    assert store.put(b"") == hashlib.sha256(b"").hexdigest()
    assert store.get(hashlib.sha256(b"").hexdigest()) == b""


@pytest.mark.parametrize("bad", ["../etc/passwd", "A" * 64, "ab" * 31 + "A1", "abc", "g" * 64, "a" * 65,
                                 "../" + "a" * 61, ""])
def test_invalid_hash_is_a_value_error(tmp_path: Path, bad: str) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        store.get(bad)
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        store.exists(bad)


def test_absent_hash_is_artifact_not_found(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    absent = hashlib.sha256(b"never stored").hexdigest()
    assert store.exists(absent) is False
    with pytest.raises(ArtifactNotFound) as err:
        store.get(absent)
    assert absent in str(err.value)


# ------------------------------------------------------------------------------------------------------- registry


def artifact_rows(app: App) -> list[tuple[str, str, int]]:
    with app.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Artifact.sha256, Artifact.content_type, Artifact.size)
                                               .order_by(Artifact.sha256))]


def test_registry_records_content_type_and_size(app: App) -> None:
    png, doc = b"\x89PNG fake image bytes", b'{"t":[1],"open":[1.0]}'
    png_hash = app.artifacts.save(png, "image/png")
    doc_hash = app.artifacts.save(doc, "application/json")
    assert png_hash == hashlib.sha256(png).hexdigest()
    assert sorted(artifact_rows(app)) == sorted([(png_hash, "image/png", len(png)),
                                                 (doc_hash, "application/json", len(doc))])
    assert app.artifacts.load(png_hash) == (png, "image/png")
    assert app.artifacts.load(doc_hash) == (doc, "application/json")
    assert (app.settings.resolved_artifacts_dir / png_hash[:2] / png_hash).read_bytes() == png


def test_registry_save_is_idempotent_across_instances(app: App) -> None:
    data = b"same chart"
    first = app.artifacts.save(data, "image/png")
    again = app.artifacts.save(data, "image/png")
    other = ArtifactRegistry(LocalArtifactStore(app.settings.resolved_artifacts_dir), app.engine)
    third = other.save(data, "image/png")
    assert first == again == third
    assert artifact_rows(app) == [(first, "image/png", len(data))]
    assert other.load(first) == (data, "image/png")


def test_registry_load_of_unknown_or_invalid_hash(app: App) -> None:
    absent = hashlib.sha256(b"nothing").hexdigest()
    with pytest.raises(ArtifactNotFound):
        app.artifacts.load(absent)
    app.artifacts.store.put(b"bytes without a row")  # in the store but not registered
    with pytest.raises(ArtifactNotFound):
        app.artifacts.load(hashlib.sha256(b"bytes without a row").hexdigest())
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        app.artifacts.load("../etc/passwd")


def test_the_registered_hashes_a_process_remembers_stay_bounded_and_saving_stays_correct(app: App) -> None:
    registry = ArtifactRegistry(LocalArtifactStore(app.settings.resolved_artifacts_dir), app.engine)
    registry.KNOWN_MAX = 5
    digests = [registry.save(f"prompt {i}".encode(), "text/plain") for i in range(12)]
    assert len(registry._known) <= 5
    again = [registry.save(f"prompt {i}".encode(), "text/plain") for i in range(12)]  # forgotten ones: no harm
    assert again == digests and len(registry._known) <= 5
    assert sorted(h for h, _, _ in artifact_rows(app)) == sorted(digests)

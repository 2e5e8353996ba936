"""The UI's third-party files: pinned by the committed lock file, copied by the build step, never committed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tradetrail.web import assets

pytestmark = pytest.mark.once
ROOT = Path(__file__).resolve().parents[3]


def _fake_node_modules(root: Path) -> Path:
    modules = root / "node_modules"
    for source in assets.FILES.values():
        (modules / source).parent.mkdir(parents=True, exist_ok=True)
        (modules / source).write_text(f"// {source}\n")
    return modules


def test_build_copies_every_listed_file_and_nothing_stale(tmp_path):
    modules, vendor = _fake_node_modules(tmp_path), tmp_path / "vendor"
    (vendor / "old").mkdir(parents=True)
    (vendor / "old" / "stale.js").write_text("from an older version")
    assert set(assets.missing(vendor)) == set(assets.FILES)
    assert assets.build(modules, vendor) == sorted(assets.FILES)
    assert assets.missing(vendor) == []
    for served, source in assets.FILES.items():
        assert (vendor / served).read_text() == f"// {source}\n"
    assert not (vendor / "old").exists()


def test_build_names_what_is_missing_and_copies_nothing(tmp_path):
    modules, vendor = _fake_node_modules(tmp_path), tmp_path / "vendor"
    (modules / assets.FILES["htmx/htmx.min.js"]).unlink()
    with pytest.raises(FileNotFoundError, match=r"htmx\.org/dist/htmx\.min\.js is missing: run `npm ci`"):
        assets.build(modules, vendor)
    assert not vendor.exists()


def test_every_package_is_pinned_by_the_lock_file_and_nothing_third_party_is_committed():
    manifest = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = {source.split("/")[0] if not source.startswith("@") else "/".join(source.split("/")[:2])
                for source in assets.FILES.values()}
    assert packages == set(manifest["dependencies"])  # nothing else
    for name, version in manifest["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version  # exact pins
    tracked = subprocess.run(["git", "ls-files", "tradetrail/web/static", "node_modules"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked and all(not path.startswith(("tradetrail/web/static/vendor/", "node_modules/"))
                           for path in tracked)
    ignored = subprocess.run(["git", "check-ignore", "-q", "tradetrail/web/static/vendor/htmx/htmx.min.js"],
                             cwd=ROOT)
    assert ignored.returncode == 0

"""Third-party browser assets: which files of ``node_modules`` the pages use and where they are served from.

Nothing third-party is committed: ``make install`` runs ``npm ci`` (versions pinned by the committed
``package-lock.json``) and then ``python -m tradetrail.web.assets build`` copies the files listed here into
``tradetrail/web/static/vendor/`` (git-ignored; package data, so an installed wheel serves them too). The app
warns at start-up when one is missing, because every page would then be unstyled and its charts dead.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
VENDOR = WEB / "static" / "vendor"
PROJECT = WEB.parent.parent  # the checkout (package.json, node_modules) when run from one

# served path under /static/vendor/  <-  path under node_modules/
FILES: dict[str, str] = {
    "htmx/htmx.min.js": "htmx.org/dist/htmx.min.js",
    "htmx/LICENSE": "htmx.org/LICENSE",
    "lightweight-charts/lightweight-charts.standalone.production.js":
        "lightweight-charts/dist/lightweight-charts.standalone.production.js",
    "lightweight-charts/LICENSE": "lightweight-charts/LICENSE",
    "pico/pico.min.css": "@picocss/pico/css/pico.min.css",
    "pico/LICENSE.md": "@picocss/pico/LICENSE.md",
    "swagger-ui/swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "swagger-ui/swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui/favicon-32x32.png": "swagger-ui-dist/favicon-32x32.png",
    "swagger-ui/LICENSE": "swagger-ui-dist/LICENSE",
    "swagger-ui/NOTICE": "swagger-ui-dist/NOTICE",
}


def missing(vendor: Path = VENDOR) -> list[str]:
    """The served files not in place (empty when the build ran)."""
    return [name for name in FILES if not (vendor / name).is_file()]


def build(node_modules: Path = PROJECT / "node_modules", vendor: Path = VENDOR) -> list[str]:
    """Copy every listed file from ``node_modules`` (after ``npm ci``) into ``vendor``; a clear error naming
    the first file that is not there, before anything is copied."""
    absent = [src for src in FILES.values() if not (node_modules / src).is_file()]
    if absent:
        raise FileNotFoundError(f"{node_modules / absent[0]} is missing: run `npm ci` in {node_modules.parent} "
                                f"first ({len(absent)} file(s) missing)")
    if vendor.exists():
        shutil.rmtree(vendor)  # nothing stale from an older version stays served
    for dest, src in FILES.items():
        target = vendor / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / src, target)
    return sorted(FILES)


def main(argv: list[str]) -> int:
    if argv[1:] != ["build"]:
        print("usage: python -m tradetrail.web.assets build", file=sys.stderr)
        return 2
    try:
        copied = build()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"web assets: {len(copied)} files in {VENDOR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

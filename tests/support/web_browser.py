"""Driving the web UI in a real Chromium (Debian's /usr/bin/chromium, launched by Playwright: no browser is
ever downloaded). How to test a page (docs/web.md): take the ``web`` fixture, ``web.sign_in()``, go to the
page, assert on what a person sees, ``web.shot("name")``.

Every page visit is watched: a Content-Security-Policy violation, a script error, or a request that leaves
127.0.0.1 fails the test at its end (``web.check_clean()`` runs in the fixture's teardown).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.api_client import PASSWORD
from tradetrail.web import assets

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("TRADETRAIL_TEST_SCREENSHOTS", Path(__file__).resolve().parents[2] / "var" /
                                  "screenshots"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}


def browser_or_skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    if assets.missing():
        return "web assets missing: run `make install` (npm ci + asset build)"
    return None


@dataclass
class Web:
    """One browser context (its own cookies) on one live server, with the page every test drives."""

    base: str
    context: object
    page: object
    problems: list[str] = field(default_factory=list)
    name: str = "test"

    def url(self, path: str) -> str:
        return self.base + path

    def goto(self, path: str):
        response = self.page.goto(self.url(path))
        self.page.wait_for_load_state("networkidle")
        return response

    def sign_in(self, username: str = "demo", password: str = PASSWORD, next_path: str | None = None) -> None:
        self.goto("/login" + (f"?next={next_path}" if next_path else ""))
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_load_state("networkidle")

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        """A screenshot for a reviewer, named after the test (git-ignored folder ``var/screenshots``)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}--{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def horizontal_overflow(self) -> int:
        """How many CSS pixels the document is wider than the viewport (0: no horizontal scrolling)."""
        return self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    def check_clean(self) -> None:
        assert not self.problems, "the browser reported:\n" + "\n".join(self.problems)


def _watch(web: Web, page) -> None:
    allowed = urlsplit(web.base).netloc

    def on_console(message) -> None:
        if message.type == "error":
            web.problems.append(f"console error on {page.url}: {message.text}")

    def on_request(request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != allowed:
            web.problems.append(f"request outside the server: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: web.problems.append(f"script error on {page.url}: {error}"))
    page.on("request", on_request)


@pytest.fixture(scope="module")
def chromium():
    reason = browser_or_skip_reason()
    if reason:
        pytest.fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def open_web(chromium, base: str, name: str, viewport: dict = DESKTOP) -> Web:
    context = chromium.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    web = Web(base=base, context=context, page=page, name=name)
    _watch(web, page)
    return web


@pytest.fixture
def live(app):
    """The app under test served on a real socket; its base URL."""
    from tests.support.web_live import live_server

    with live_server(app) as base:
        yield base


@pytest.fixture
def web(chromium, live, request):
    """A fresh browser context on the live server; fails the test if the browser reported a problem."""
    web = open_web(chromium, live, request.node.name)
    yield web
    web.context.close()
    web.check_clean()


def demo_user(app) -> tuple[int, object]:
    """The demo user and strategy (``tradetrail init``), with the tests' password."""
    from tests.support.helpers import demo
    from tradetrail.services.accounts.users import set_password

    user_id, strategy = demo(app)
    set_password(app, "demo", PASSWORD)
    return user_id, strategy

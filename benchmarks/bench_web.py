"""The lineage viewer's cost: server time of ``/executions/{id}`` for a 13-step execution (median of N
requests over loopback, keep-alive, signed in through the login form), beside the API's JSON of the same
execution measured in the same run, and what a browser transfers to show the page (Debian's Chromium, a
cold cache, then a revisit).

    python -m benchmarks.bench_web [--backend sqlite|postgresql] [--requests 200]

Not a timed test: it prints figures for docs/web.md and the closing note.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import uvicorn

from benchmarks.common import bench_app, reference_loop_ms
from tradetrail.server.app import create_app
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.accounts.users import set_password
from tradetrail.services.runs.executions import get_execution, run_strategy

PASSWORD = "benchmark passphrase"
CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def _serve(app):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(app, background=False), log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post("/login", data={"username": "demo", "password": PASSWORD, "next": "/",
                                         "login_token": token})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return client


def _latencies(client: httpx.Client, urls: dict[str, str], n: int) -> dict[str, dict]:
    """Interleaved requests (so drift in machine speed hits each URL alike); milliseconds and bytes."""
    times: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, int] = {}
    for _ in range(20):  # warm the connection, the caches and the template compiler
        for url in urls.values():
            client.get(url).raise_for_status()
    for _ in range(n):
        for name, url in urls.items():
            start = time.perf_counter()
            answer = client.get(url)
            times[name].append((time.perf_counter() - start) * 1000)
            answer.raise_for_status()
            sizes[name] = len(answer.content)
    return {name: {"median_ms": statistics.median(t), "p90_ms": sorted(t)[int(0.9 * len(t))], "bytes": sizes[name]}
            for name, t in times.items()}


def _transferred(base: str, path: str) -> dict[str, dict[str, int]] | None:
    """Bytes a browser receives to show the page, by resource type: a cold cache, then a revisit."""
    if not Path(CHROMIUM).exists():
        return None
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        login = browser.new_context()
        page = login.new_page()
        page.goto(base + "/login")
        page.fill("input[name=username]", "demo")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        context = browser.new_context(viewport={"width": 1280, "height": 900})  # an empty cache, signed in
        context.add_cookies(login.cookies())
        page = context.new_page()
        for visit in ("cold", "revisit"):
            seen: list = []

            def finished(request, seen=seen) -> None:
                seen.append(request)

            page.on("requestfinished", finished)
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            page.wait_for_selector("figure[data-chart-ready]")
            page.remove_listener("requestfinished", finished)
            by_type: dict[str, int] = defaultdict(int)
            for request in seen:
                sizes = request.sizes()
                by_type[request.resource_type] += sizes["responseBodySize"] + sizes["responseHeadersSize"]
            by_type["requests"] = len(seen)
            out[visit] = dict(by_type)
        browser.close()
    return out


def main(backend: str = "sqlite", requests: int = 200) -> dict:
    with bench_app(backend) as app:
        user_id = init(app)["user_id"]
        set_password(app, "demo", PASSWORD)
        execution = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
        assert len(execution["steps"]) == 13 and execution["status"] == "succeeded"
        urls = {"page /executions/{id} (HTML)": f"/executions/{execution['id']}",
                "API /api/lineage/execution/{id} (JSON)": f"/api/lineage/execution/{execution['id']}"}
        loop_ms = reference_loop_ms()
        with _serve(app) as base:
            client = _signed_in(base)
            try:
                latency = _latencies(client, urls, requests)
            finally:
                client.close()
            browser = _transferred(base, urls["page /executions/{id} (HTML)"])
    print(f"bench_web ({backend}, 13-step execution, {requests} requests each, loopback keep-alive; reference "
          f"loop {loop_ms:.1f} ms)")
    for name, row in latency.items():
        print(f"  {name:42s} median {row['median_ms']:6.2f} ms  p90 {row['p90_ms']:6.2f} ms  {row['bytes']:>9,} B")
    if browser is None:
        print(f"  (no {CHROMIUM}: transferred bytes not measured)")
    else:
        for visit, by_type in browser.items():
            total = sum(v for k, v in by_type.items() if k != "requests")
            parts = ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items()) if k != "requests")
            print(f"  browser, {visit:7s}: {total:,} B in {by_type['requests']} requests ({parts})")
    return {"latency": latency, "browser": browser, "reference_loop_ms": loop_ms}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    main(args.backend, args.requests)

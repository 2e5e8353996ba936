"""REST API under load: `tradetrail serve` (uvicorn) on loopback, driven by an open-loop generator in another
process at a fixed rate (default 200 req/s). Latency is measured from each request's *scheduled* start, so a
stalled server cannot hide its queueing (no coordinated omission).

    python -m benchmarks.bench_api [--rate 200] [--seconds 15]

Endpoints: a cached symbol search and ``/api/lineage/execution/{id}`` (13 steps), both with a bearer token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).with_name("tradetrail")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict, *args: str) -> str:
    out = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"tradetrail {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _open_loop(url: str, token: str, rate: float, seconds: float, connections: int) -> dict:
    import httpx

    total = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(20):  # warm the connections and the server's caches
            await client.get(url)
        start = time.perf_counter() + 0.05

        async def one(i: int) -> None:
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                r = await client.get(url)
                if r.status_code != 200:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
            except Exception as exc:  # noqa: BLE001 - counted, reported
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append((time.perf_counter() - scheduled) * 1000)

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"requests": total, "achieved_rps": round(total / elapsed, 1), "errors": errors,
            "p50_ms": round(_percentile(latencies, 0.50), 2), "p90_ms": round(_percentile(latencies, 0.90), 2),
            "p99_ms": round(_percentile(latencies, 0.99), 2), "max_ms": round(latencies[-1], 2)}


async def _closed_loop(url: str, token: str, seconds: float, concurrency: int) -> dict:
    import httpx

    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                r = await client.get(url)
                assert r.status_code == 200, r.text
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"concurrency": concurrency, "rps": round(done / (time.perf_counter() - t0), 1)}


def _generator(kind: str, url: str, token: str, rate: float, seconds: float, queue) -> None:
    if kind == "open":
        queue.put(asyncio.run(_open_loop(url, token, rate, seconds, connections=32)))
    else:
        queue.put(asyncio.run(_closed_loop(url, token, seconds, concurrency=8)))


def _drive(kind: str, url: str, token: str, rate: float, seconds: float) -> dict:
    """The load generator runs in its own process so it does not share the server's interpreter."""
    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_generator, args=(kind, url, token, rate, seconds, queue))
    proc.start()
    result = queue.get(timeout=seconds + 120)
    proc.join()
    return result


def main(rate: float = 200, seconds: float = 15) -> dict:
    with tempfile.TemporaryDirectory(prefix="tradetrail-bench-api-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADETRAIL_")}
        env.update(TRADETRAIL_HOME=home, TRADETRAIL_SCHEDULER_ENABLED="false", TRADETRAIL_RECONCILE_INTERVAL_S="0",
                   TRADETRAIL_LOG_LEVEL="WARNING")
        _cli(env, "init")
        execution_id = json.loads(_cli(env, "run", "demo", "--json"))["id"]
        token = _cli(env, "tokens", "create", "demo", "--label", "bench").strip()
        port = _free_port()
        server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}/health", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("server did not start") from None
                    time.sleep(0.2)
            urls = {"symbol search (cached)": f"{base}/api/symbols/search?query=SPX",
                    "lineage/execution/{id}": f"{base}/api/lineage/execution/{execution_id}"}
            figures = {}
            for name, url in urls.items():
                opened = _drive("open", url, token, rate, seconds)
                closed = _drive("closed", url, token, rate, min(seconds, 10))
                print(f"{name}: {rate:.0f} req/s open loop for {seconds:.0f} s -> achieved {opened['achieved_rps']} "
                      f"req/s, p50 {opened['p50_ms']} ms, p90 {opened['p90_ms']} ms, p99 {opened['p99_ms']} ms, "
                      f"max {opened['max_ms']} ms, errors {opened['errors'] or 'none'}; "
                      f"closed loop ({closed['concurrency']} at a time): {closed['rps']} req/s")
                figures[f"api {name} p99 ms at {rate:.0f} req/s"] = opened["p99_ms"]
                figures[f"api {name} max req/s"] = closed["rps"]
            return figures
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(args.rate, args.seconds)

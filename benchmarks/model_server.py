"""A slow OpenAI-compatible model for the benchmarks, in its own process (a real model is another machine;
in-process it would take the GIL from the executions being measured).

Each chat-completions request is validated as strictly as the test fake does (``tests/fakes``), then
answered after ``--latency`` seconds with what a careful model might say: BUY or SELL at the last close
(stop 3 %, target 6 % away) when the prompt's daily 3-of-4 confirmation is bullish or bearish, else HOLD.
The listen backlog is large so 100 simultaneous connections never wait on SYN retries.

Usage: python -m benchmarks.model_server --latency 2 (prints ``port <n>`` once listening)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.openai_server import Behaviour, RequestInvalid, completion_body, error_body, validate_chat_request

_CLOSE = re.compile(r"last daily close is ([0-9]+(?:\.[0-9]+)?)")
_DIRECTION = re.compile(r"3-of-4 confirmation \([^)]*\): (BULLISH|BEARISH|NEUTRAL)")


def answer_for(body: dict[str, Any]) -> dict[str, Any]:
    """A plausible answer read from the prompt (the benchmark measures the pipeline, not a model)."""
    system = body["messages"][0]["content"]
    texts = " ".join(p["text"] for p in body["messages"][1]["content"] if p["type"] == "text")
    close = float(_CLOSE.search(system)[1]) if _CLOSE.search(system) else None
    found = _DIRECTION.search(texts)
    direction = found[1] if found else "NEUTRAL"
    hold = {"action": "HOLD", "confidence": 55, "trend": "neutral", "entry": None, "stop_loss": None,
            "take_profit": None, "key_factors": ["no agreement between the readings"],
            "reasoning": "The daily readings do not agree; waiting."}
    if close is None or direction == "NEUTRAL":
        return hold
    sign = 1.0 if direction == "BULLISH" else -1.0
    return {"action": "BUY" if sign > 0 else "SELL", "confidence": 75,
            "trend": "bullish" if sign > 0 else "bearish", "entry": round(close, 2),
            "stop_loss": round(close * (1 - sign * 0.03), 2), "take_profit": round(close * (1 + sign * 0.06), 2),
            "key_factors": ["3-of-4 confirmation agrees", "price on the trend side of SuperTrend"],
            "reasoning": f"The daily confirmation is {direction.lower()}; trade with it."}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        started = time.monotonic()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
            validate_chat_request(body)
        except (ValueError, RequestInvalid) as err:
            self._send(400, error_body(str(err), "invalid_request_error"))
            return
        answer = json.dumps(answer_for(body))
        time.sleep(max(0.0, self.server.latency_s - (time.monotonic() - started)))
        self._send(200, completion_body(body["model"], Behaviour(content=answer)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    latency_s = 2.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = _Server(("127.0.0.1", args.port), _Handler)
    server.latency_s = args.latency
    print(f"port {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()

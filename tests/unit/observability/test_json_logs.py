"""TRADETRAIL_LOG_FORMAT=json: one JSON object per line, carrying the execution id and step the executor set."""

from __future__ import annotations

import io
import json
import logging

from tradetrail.observability.logs import EXECUTION_ID, STEP, JsonFormatter, configure
from tradetrail.settings import Settings


def _logger(stream: io.StringIO) -> logging.Logger:
    logger = logging.getLogger("tradetrail.test.json")
    logger.handlers = [logging.StreamHandler(stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_each_record_is_one_json_line_with_the_execution_and_step():
    stream = io.StringIO()
    logger = _logger(stream)
    configure(Settings(log_format="json"), logger)
    logger.info("outside any run")
    token, step = EXECUTION_ID.set("e-1"), STEP.set("analyze")
    try:
        logger.warning("model slow: %d s", 12, extra={"attempt": 2})
        try:
            raise ValueError("bad\nanswer")
        except ValueError:
            logger.exception("failed")
    finally:
        STEP.reset(step)
        EXECUTION_ID.reset(token)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # the traceback's newlines stay inside its JSON string
    outside, slow, failed = (json.loads(line) for line in lines)
    assert "execution_id" not in outside and "step" not in outside
    assert slow["execution_id"] == "e-1" and slow["step"] == "analyze"
    assert slow["message"] == "model slow: 12 s" and slow["level"] == "WARNING" and slow["attempt"] == 2
    assert slow["logger"] == "tradetrail.test.json" and slow["time"].endswith("+00:00")
    assert failed["exception"].startswith("Traceback") and "ValueError: bad" in failed["exception"]


def test_text_stays_the_default():
    stream = io.StringIO()
    logger = _logger(stream)
    configure(Settings(), logger)
    logger.info("plain")
    assert stream.getvalue() == "plain\n"
    assert not isinstance(logger.handlers[0].formatter, JsonFormatter)

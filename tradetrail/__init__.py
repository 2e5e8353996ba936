"""tradetrail: scheduled, LLM-assisted trading workflows with a replayable trail of every decision."""

__version__ = "0.1.0"

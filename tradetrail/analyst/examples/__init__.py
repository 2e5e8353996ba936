"""Analyst plug-ins bundled as examples (allowed by default in ``TRADETRAIL_ANALYST_PLUGINS``)."""

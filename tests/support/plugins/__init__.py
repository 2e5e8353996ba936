"""Analyst plug-ins that misbehave, for the tests that show the pipeline does not let them (never allowed
outside a test: a test adds ``tests.support.plugins`` to the settings' allowed modules)."""

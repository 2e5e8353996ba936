"""Notifications adapter: Apprise sending, channel URL encryption, and the outbox rows the engine writes."""

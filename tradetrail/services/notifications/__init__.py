"""Notifications: channels (add, list, test, remove) and the sender that delivers the outbox."""

"""Errors every layer may raise and every face maps the same way."""


class NotFound(LookupError):
    """The named resource does not exist (for this user)."""

"""The names a browser session travels under, shared by the API's authentication and the web UI's pages."""

SESSION_COOKIE = "tradetrail_session"
CSRF_COOKIE = "tradetrail_csrf"
CSRF_HEADER = "X-CSRF-Token"

"""The composition root: builds the :class:`~tradetrail.app_context.App` with the adapters the settings name,
and the start-up, health and background tasks around it. The only package that knows adapter names."""

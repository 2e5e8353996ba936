"""Build the application object every face (CLI, API, workers) builds once: settings, database, artifact
store, broker and the adapters chosen by configuration. Services take it as their first argument."""

from __future__ import annotations

import gc

from tradetrail.app_context import App
from tradetrail.artifacts.registry import ArtifactRegistry
from tradetrail.db.migrate import upgrade
from tradetrail.db.session import engine_for, session_factory
from tradetrail.runtime.registries import FACTORIES, make_artifact_store
from tradetrail.settings import Settings


def build_app(settings: Settings, *, migrate: bool = True) -> App:
    """Wire the embedded defaults (or what ``settings`` asks for); run migrations unless told not to."""
    engine = engine_for(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    store = make_artifact_store(settings)
    app = App(settings=settings, engine=engine, Session=session_factory(engine),
              artifacts=ArtifactRegistry(store, engine), broker=None, factories=FACTORIES)  # type: ignore[arg-type]
    app.broker = app._brokers[settings.broker] = FACTORIES.broker(app, settings.broker)
    # Everything built so far (modules, pandas/SQLAlchemy internals: ~200k objects) lives as long as the
    # process; freezing it keeps full garbage collections (~100 ms each over those objects) off every run.
    gc.freeze()
    return app

"""The TWS settings and names: defaults (IB Gateway paper on this host), the clientIds a Celery deployment needs,
and which adapters count as gateway, TWS or Client Portal ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradetrail.runtime.registries import market_data_is_live, uses_gateway_session, uses_tws, uses_web_api
from tradetrail.services.accounts.bootstrap import demo_config
from tradetrail.settings import Settings


def test_the_defaults_are_ib_gateway_paper_on_this_host():
    s = Settings()
    assert (s.tws_host, s.tws_port, s.tws_client_id, s.tws_client_id_span, s.tws_account) == \
        ("127.0.0.1", 4002, 1, 8, None)
    assert (s.tws_market_data_type, s.tws_pacing_scale) == ("live", 1.0)


def test_every_celery_process_needs_a_client_id_of_its_own():
    Settings(broker="ibkr_tws", executor="celery", worker_concurrency=7)  # 7 workers + serve = 8 ids
    with pytest.raises(ValidationError, match="needs more TWS clientIds than tws_client_id_span"):
        Settings(broker="ibkr_tws", executor="celery", worker_concurrency=8)
    Settings(market_data="ibkr_tws", executor="celery", worker_concurrency=15, tws_client_id_span=16)
    with pytest.raises(ValidationError, match="too many for one IBKR gateway"):  # the Client Portal's own rule
        Settings(broker="ibkr_web", executor="celery", worker_concurrency=5)


def test_tws_adapters_are_gateway_ones_but_not_the_client_portal():
    assert uses_gateway_session("ibkr_tws", "sample") and uses_gateway_session("simulated", "ibkr_tws")
    assert uses_tws("ibkr_tws", "sample") and uses_tws(None, "ibkr_tws") and not uses_tws("ibkr_web", "ibkr")
    assert uses_web_api("ibkr_web", "ibkr_tws") and not uses_web_api("ibkr_tws", "ibkr_tws")
    assert market_data_is_live("ibkr_tws") and demo_config("ibkr_tws").symbol == "SPY"
    with pytest.raises(ValidationError):
        Settings(tws_market_data_type="sometimes")


def test_tws_time_zone_defaults_to_new_york_and_refuses_an_unknown_zone():
    assert Settings().tws_timezone == "America/New_York"
    assert Settings(tws_timezone="Europe/Zurich").tws_timezone == "Europe/Zurich"
    with pytest.raises(ValidationError, match="not a known time zone"):
        Settings(tws_timezone="Mars/Olympus")

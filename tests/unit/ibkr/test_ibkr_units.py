"""The pieces of the IBKR adapter that need no gateway: pacing (with a fake clock), the type quirks of the
documented shapes, and the rules that pick one listing for a ticker."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tradetrail.domain.market_hours import next_close_after
from tradetrail.ibkr import shapes
from tradetrail.ibkr.client import IbkrSession
from tradetrail.ibkr.errors import BadReply
from tradetrail.ibkr.marketdata import _listing, choose
from tradetrail.ibkr.pacing import RateLimiter, endpoint_of, retry_after_s
from tradetrail.marketdata.port import MarketDataError
from tradetrail.settings import Settings


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def starts(limiter: RateLimiter, clock: Clock, endpoint: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        with limiter.slot(endpoint):
            out.append(round(clock.now - 1000.0, 6))
    return out


def test_the_limiter_keeps_eight_per_second_overall_and_one_per_five_seconds_for_live_orders():
    clock = Clock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    assert starts(limiter, clock, "other", 3) == [0.0, 0.125, 0.25]  # 8/s: a fifth under the gateway's 10/s
    assert starts(limiter, clock, "live_orders", 3) == [0.375, 5.375, 10.375]
    assert starts(limiter, clock, "trades", 2) == [10.5, 15.5]
    assert endpoint_of("GET", "iserver/account/orders") == "live_orders"
    assert endpoint_of("POST", "iserver/account/DU1/orders") == "other"  # placing is not the live list
    assert endpoint_of("GET", "iserver/account/trades") == "trades"
    assert endpoint_of("GET", "portfolio/accounts") == "portfolio_accounts"
    assert endpoint_of("GET", "iserver/marketdata/history") == "history"


def test_processes_sharing_one_gateway_each_keep_to_their_share_of_its_budget():
    clock = Clock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep, share=2)
    assert starts(limiter, clock, "other", 3) == [0.0, 0.25, 0.5]  # 4/s here: two processes keep to 8/s
    assert starts(limiter, clock, "live_orders", 2) == [0.75, 10.75]
    history = []
    for _ in range(3):  # 5 history requests at once across both processes: 2 each
        got = limiter._history.acquire(blocking=False)
        history.append(got)
    assert history == [True, True, False]
    assert limiter.penalize("other", None) == 5.0  # a 429's back-off is the gateway's, not shared
    assert limiter.report()["scale"] == 1.0 and limiter.report()["processes_sharing"] == 2
    assert Settings(executor="celery", worker_concurrency=4).processes_sharing_gateway == 5
    # embedded helpers never call IBKR (they leave those strategies to the serving process)
    assert Settings(executor="embedded", embedded_processes=3).processes_sharing_gateway == 1


def test_more_celery_processes_than_one_gateway_serves_are_refused():
    with pytest.raises(ValueError, match="at most 4 worker processes"):
        Settings(executor="celery", worker_concurrency=5, broker="ibkr_web")
    Settings(executor="celery", worker_concurrency=5, broker="simulated", market_data="sample")
    with pytest.raises(ValueError, match="in-memory SQLite"):
        Settings(embedded_processes=2, database_url="sqlite:///:memory:")


def test_a_429_holds_every_request_back_with_retry_after_or_an_exponential_backoff():
    clock = Clock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    assert limiter.penalize("history", 2.5) == 2.5
    assert starts(limiter, clock, "other", 1) == [2.5]
    assert limiter.penalize("other", None) == 10.0  # second strike in a row: 5 s doubled
    assert starts(limiter, clock, "other", 1) == [12.5]
    limiter.succeeded()
    assert limiter.penalize("other", None) == 5.0
    assert [(e["endpoint"], e["backoff_s"]) for e in limiter.report()["rate_limited"]] == \
        [("history", 2.5), ("other", 10.0), ("other", 5.0)]


def test_at_most_five_history_requests_run_at_once():
    limiter = RateLimiter(0.001)
    running, peak, lock = 0, 0, threading.Lock()

    def fetch():
        nonlocal running, peak
        with limiter.slot("history"):
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)
            with lock:
                running -= 1
    threads = [threading.Thread(target=fetch) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 5


def test_shapes_read_the_documented_type_quirks():
    assert shapes.conid_of("265598") == shapes.conid_of(265598) == 265598
    with pytest.raises(BadReply):
        shapes.conid_of("n/a")
    assert shapes.num("1,234.5") == 1234.5 and shapes.num("") is None and shapes.num(7) == 7.0
    seconds, millis = shapes.epoch(1702324800), shapes.epoch(1702324800000)
    assert seconds == millis == datetime(2023, 12, 11, 20, 0, tzinfo=UTC)  # the ledger's seconds, the rest's ms
    assert shapes.ib_time("20231211-18:00:49") == datetime(2023, 12, 11, 18, 0, 49, tzinfo=UTC)
    assert shapes.ib_time("231211180049") == datetime(2023, 12, 11, 18, 0, 49, tzinfo=UTC)
    assert [shapes.order_type(x) for x in ("Limit", "LIMIT", "Market", "STOP", "LMT")] == \
        ["LMT", "LMT", "MKT", "STP", "LMT"]
    assert [shapes.side(x) for x in ("B", "S", "BUY", "SELL")] == ["BUY", "SELL", "BUY", "SELL"]
    assert shapes.status("PreSubmitted", 0) == "SUBMITTED" and shapes.status("Submitted", 5) == "PARTIALLY_FILLED"
    assert shapes.status("PendingCancel", 0) == "SUBMITTED" and shapes.status("Inactive", 0) == "REJECTED"
    with pytest.raises(BadReply, match="unknown order status"):
        shapes.status("Teleported", 0)


def test_a_daily_bar_is_stamped_when_its_session_completes_never_earlier():
    us_open = int(datetime(2022, 12, 30, 14, 30, tzinfo=UTC).timestamp() * 1000)  # 09:30 New York
    assert shapes.daily_stamp(us_open) == datetime(2022, 12, 30, 21, 0, tzinfo=UTC)  # 16:00 New York
    tokyo_open = int(datetime(2022, 12, 30, 0, 0, tzinfo=UTC).timestamp() * 1000)  # 09:00 Tokyo
    assert shapes.daily_stamp(tokyo_open) == datetime(2022, 12, 30, 21, 0, tzinfo=UTC)  # after Tokyo's close
    friday_evening = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
    assert next_close_after(friday_evening) == datetime(2024, 3, 4, 21, 0, tzinfo=UTC)  # Monday


STK = [{"secType": "STK"}]
SEARCH = [
    {"conid": "38708077", "symbol": "AAPL", "companyName": "APPLE INC", "description": "MEXI", "sections": STK},
    {"conid": "265598", "symbol": "AAPL", "companyName": "APPLE INC", "description": "NASDAQ",
     "sections": [{"secType": "STK"}, {"secType": "OPT"}]},
    {"conid": "1001", "symbol": "TWIN", "companyName": "TWIN A", "description": "NYSE", "sections": STK},
    {"conid": "1002", "symbol": "TWIN", "companyName": "TWIN B", "description": "NASDAQ", "sections": STK},
    {"conid": "77", "symbol": "SOLO", "companyName": "SOLO PLC", "description": "LSE", "sections": STK},
    {"symbol": "BOND ISSUER", "issuers": [{"id": "e123"}]},
]


def test_the_us_primary_listing_is_chosen_and_ambiguity_is_reported_never_guessed():
    listings = [x for x in (_listing(e) for e in SEARCH) if x]
    assert len(listings) == 5  # the entry without a conid is skipped
    chosen, rule = choose(listings, "aapl")
    assert (chosen["conid"], rule) == (265598, "US primary listing (NASDAQ) of 2 listing(s)")
    assert choose(listings, "SOLO")[0]["conid"] == 77  # no US listing, only one listing
    with pytest.raises(MarketDataError, match=r"'TWIN' is ambiguous at IBKR: conid 1001 \(NYSE, STK\), "
                                              r"conid 1002 \(NASDAQ, STK\); use the conid as the symbol"):
        choose(listings, "TWIN")
    with pytest.raises(MarketDataError, match="no contract with the ticker 'MSFT'"):
        choose(listings, "MSFT")


def test_ibkr_settings_validate_and_secrets_never_show(tmp_path):
    with pytest.raises(ValidationError, match="ibkr_verify_tls"):
        Settings(home=tmp_path, ibkr_verify_tls="/no/such/bundle.pem")
    with pytest.raises(ValidationError, match="ibkr_url"):
        Settings(home=tmp_path, ibkr_url="localhost:5000")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert Settings(home=tmp_path, ibkr_verify_tls=str(bundle)).ibkr_tls == str(bundle)
    assert Settings(home=tmp_path, ibkr_verify_tls="false").ibkr_tls is False
    s = Settings(home=tmp_path, broker="ibkr_web", ibkr_oauth=True, ibkr_oauth_consumer_key="CONSUMERSECRET",
                 ibkr_oauth_access_token="TOKENSECRET", ibkr_oauth_access_token_secret="SECRETSECRET",
                 ibkr_oauth_dh_prime="PRIMESECRET")
    described = str(IbkrSession(s).describe()) + repr(s) + str(s.model_dump())
    for secret in ("CONSUMERSECRET", "TOKENSECRET", "SECRETSECRET", "PRIMESECRET"):
        assert secret not in described
    assert IbkrSession(s).url == "https://api.ibkr.com/v1/api"


@pytest.mark.parametrize(("header", "seconds"), [
    ("2.5", 2.5), ("0", 0.0), ("120", 120.0),
    ("1e12", 600.0),  # capped: a gateway asking for days holds requests back ten minutes at most
    ("inf", None), ("Infinity", None), ("nan", None), ("-3", None),  # not a wait: the exponential back-off
    ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("", None), (None, None),
])
def test_a_retry_after_header_is_a_bounded_number_of_seconds_or_none(header, seconds):
    assert retry_after_s(header) == seconds
    clock = Clock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    assert limiter.penalize("history", retry_after_s(header)) == (5.0 if seconds is None else seconds)

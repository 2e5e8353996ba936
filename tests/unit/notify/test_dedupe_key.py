"""A dedupe key longer than its column is stored as its hash, not cut: two long keys that differ only past the
column's width stay two keys (cutting made them one, and the second event was dropped)."""

from __future__ import annotations

from tradetrail.notify.outbox import MAX_KEY, fit_key


def test_a_short_key_is_kept_as_it_is():
    key = "denied:7:BUY:2026-11-27:max_position"
    assert fit_key(key) == key
    assert fit_key("k" * MAX_KEY) == "k" * MAX_KEY


def test_long_keys_differing_past_the_width_stay_apart_and_fit():
    base = "denied:7:BUY:2026-11-27:" + ",".join(f"rule_{i}" for i in range(40))
    one, two = base + ",max_exposure", base + ",max_position"
    assert one[:MAX_KEY] == two[:MAX_KEY]  # what the cut made one
    assert fit_key(one) != fit_key(two)
    assert len(fit_key(one)) <= MAX_KEY and fit_key(one) == fit_key(one)  # stable: the same key dedupes

"""The per-key throttle on the serving hot path: a sliding-window counter with O(1) work per request."""

from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory

from platform_core.api.auth import ApiPrincipal
from platform_core.api.throttles import ApiKeyRateThrottle


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_BACKEND: list[object] = [None]  # the cache the throttles of a test use (None: the default LocMemCache)


def _throttle(clock: _Clock, rate: str = "10/min") -> ApiKeyRateThrottle:
    throttle = ApiKeyRateThrottle.__new__(ApiKeyRateThrottle)
    throttle.rate = rate
    throttle.num_requests, throttle.duration = throttle.parse_rate(rate)
    throttle.timer = clock
    if _BACKEND[0] is not None:
        throttle.cache = _BACKEND[0]
    return throttle


def _request(key_id: int):
    request = APIRequestFactory().get("/api/v1/users/u/recommendations")
    request.auth = ApiPrincipal(key_id=key_id, prefix="p", tenant=None, scopes=frozenset({"read"}))  # type: ignore[arg-type]
    return request


@pytest.fixture(autouse=True, params=["in process", "shared cache"])
def _backend(request: pytest.FixtureRequest, tmp_path):  # noqa: ANN001
    """Every test twice: counts in this process (LocMemCache) and in a shared cache (files)."""
    from django.core.cache import cache
    from django.core.cache.backends.filebased import FileBasedCache

    from platform_core.api.throttles import throttle_counts_clear

    cache.clear()
    throttle_counts_clear()
    _BACKEND[0] = FileBasedCache(str(tmp_path / "cache"), {}) if request.param == "shared cache" else None
    yield
    _BACKEND[0] = None
    cache.clear()
    throttle_counts_clear()


def test_the_limit_holds_per_key_and_the_previous_window_fades() -> None:
    clock = _Clock(600.0)  # the start of a one-minute window
    allowed = [_throttle(clock).allow_request(_request(1), None) for _ in range(12)]
    assert allowed == [True] * 10 + [False] * 2
    denied = _throttle(clock)
    assert not denied.allow_request(_request(1), None)
    assert 60.0 <= denied.wait() <= 120.0  # the window must roll over, then fade
    assert _throttle(clock).allow_request(_request(2), None)  # another key has its own budget

    clock.now = 660.0 + 30.0  # half-way through the next window: the previous 10 weigh 5
    allowed = [_throttle(clock).allow_request(_request(1), None) for _ in range(7)]
    assert allowed == [True] * 5 + [False] * 2
    late = _throttle(clock)
    assert not late.allow_request(_request(1), None) and late.wait() >= 1.0

    clock.now = 780.0  # two windows later: a full budget again
    assert all(_throttle(clock).allow_request(_request(1), None) for _ in range(10))

"""aep/backoff.py: the one pure delay function behind every retry and poll."""

from __future__ import annotations

import random

import pytest

from aep_activator.aep.pipeline.backoff import PollSchedule, backoff


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 2.0), (1, 4.0), (2, 8.0), (3, 16.0), (4, 32.0), (5, 64.0), (6, 100.0), (50, 100.0)],
)
def test_the_delay_doubles_from_the_initial_value_up_to_the_cap(attempt: int, expected: float) -> None:
    assert backoff(attempt, 2.0, 2.0, 100.0) == expected


def test_fractional_factors_give_the_exact_geometric_series() -> None:
    assert [backoff(n, 30.0, 1.5, 300.0) for n in range(7)] == [
        30.0,
        45.0,
        67.5,
        101.25,
        151.875,
        227.8125,
        300.0,
    ]


def test_a_factor_of_one_keeps_the_delay_constant() -> None:
    assert [backoff(n, 15.0, 1.0, 120.0) for n in (0, 1, 10, 10_000)] == [15.0] * 4
    assert backoff(3, 500.0, 1.0, 120.0) == 120.0  # still capped


def test_the_cap_also_bounds_the_first_delay() -> None:
    assert backoff(0, 500.0, 2.0, 120.0) == 120.0


@pytest.mark.parametrize("factor", [1.01, 1.5, 2.0, 10.0, 1e6, 1e300])
def test_a_huge_attempt_number_gives_the_cap_instead_of_overflowing(factor: float) -> None:
    assert backoff(10_000, 1.0, factor, 300.0) == 300.0
    assert backoff(10**9, 2.0, factor, 60.0) == 60.0


def test_a_small_factor_still_grows_all_the_way_to_the_cap() -> None:
    # 30 * 1.01**n reaches 300 only after n = 232 polls; the delay must not plateau before that.
    assert backoff(200, 30.0, 1.01, 300.0) == pytest.approx(30.0 * 1.01**200)
    assert backoff(232, 30.0, 1.01, 300.0) == 300.0


def test_an_integer_factor_and_a_huge_attempt_stay_fast_and_capped() -> None:
    assert backoff(10**12, 1, 2, 300) == 300


def test_a_zero_initial_delay_stays_zero_however_many_attempts() -> None:
    assert backoff(10_000, 0.0, 2.0, 300.0) == 0.0
    assert backoff(3, 0.0, 2.0, 300.0) == 0.0


def test_jitter_stays_within_its_share_of_the_delay() -> None:
    rng = random.Random(1234)
    for attempt in range(12):
        full = backoff(attempt, 2.0, 2.0, 300.0)
        for _ in range(50):
            d = backoff(attempt, 2.0, 2.0, 300.0, jitter=0.5, rng=rng)
            assert full * 0.5 <= d <= full


def test_jitter_is_reproducible_with_a_seeded_random_and_actually_varies() -> None:
    a = [backoff(4, 2.0, 2.0, 300.0, jitter=0.2, rng=random.Random(7)) for _ in range(3)]
    b = [backoff(4, 2.0, 2.0, 300.0, jitter=0.2, rng=random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(7)
    spread = {backoff(4, 2.0, 2.0, 300.0, jitter=0.2, rng=rng) for _ in range(20)}
    assert len(spread) > 10
    assert min(spread) >= 32.0 * 0.8
    assert max(spread) <= 32.0


def test_the_jitter_formula_is_equal_jitter_over_the_random_draw() -> None:
    r = random.Random(99).random()
    assert backoff(3, 2.0, 2.0, 300.0, jitter=0.25, rng=random.Random(99)) == pytest.approx(
        16.0 * 0.75 + 16.0 * 0.25 * r
    )


def test_full_jitter_ranges_from_zero_to_the_delay() -> None:
    rng = random.Random(3)
    values = [backoff(2, 2.0, 2.0, 300.0, jitter=1.0, rng=rng) for _ in range(200)]
    assert all(0.0 <= v <= 8.0 for v in values)
    assert min(values) < 1.0
    assert max(values) > 7.0


def test_zero_jitter_draws_no_random_number() -> None:
    rng = random.Random(5)
    state = rng.getstate()
    assert backoff(2, 2.0, 2.0, 300.0, jitter=0.0, rng=rng) == 8.0
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((-1, 1.0, 2.0, 10.0), {}, "attempt must be >= 0"),
        ((0, -1.0, 2.0, 10.0), {}, "initial_s and cap_s must be >= 0"),
        ((0, 1.0, 2.0, -10.0), {}, "initial_s and cap_s must be >= 0"),
        ((0, 1.0, 0.5, 10.0), {}, "factor >= 1"),
        ((0, 1.0, 2.0, 10.0), {"jitter": -0.1}, "jitter must lie in"),
        ((0, 1.0, 2.0, 10.0), {"jitter": 1.5}, "jitter must lie in"),
    ],
)
def test_invalid_arguments_are_refused(
    args: tuple[float, ...], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        backoff(*args, **kwargs)  # type: ignore[arg-type]


def test_a_poll_schedule_delays_with_its_own_parameters() -> None:
    schedule = PollSchedule(initial_s=15.0, factor=2.0, cap_s=120.0, deadline_s=3 * 3600.0)
    assert [schedule.delay(n) for n in range(5)] == [15.0, 30.0, 60.0, 120.0, 120.0]
    d = schedule.delay(1, jitter=0.5, rng=random.Random(0))
    assert 15.0 <= d <= 30.0

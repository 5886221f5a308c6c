"""RetryPolicy: 1 s, 2 s, 4 s … capped, with jitter, bounded by maxRetries."""

from __future__ import annotations

import random

import pytest

from service.domain.backoff import RetryDecision, RetryPolicy


class TestDelay:
    def test_doubles_from_one_second_and_caps_at_sixty_without_jitter(self) -> None:
        policy = RetryPolicy(jitter=0.0)
        rng = random.Random(1)
        delays = [policy.delay(n, rng) for n in range(9)]
        assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]

    @pytest.mark.parametrize("retry_count", range(10))
    def test_jitter_stays_within_its_bounds_and_under_the_cap(self, retry_count: int) -> None:
        policy = RetryPolicy()  # base 1, cap 60, jitter 0.2
        raw = min(60.0, 2.0**retry_count)
        rng = random.Random(retry_count)
        for _ in range(200):
            delay = policy.delay(retry_count, rng)
            assert raw * 0.8 <= delay <= min(60.0, raw * 1.2)

    def test_jitter_spreads_the_delays(self) -> None:
        rng = random.Random(7)
        delays = {RetryPolicy().delay(3, rng) for _ in range(50)}
        assert len(delays) > 40
        assert min(delays) < 8 < max(delays)

    def test_same_seed_gives_the_same_delays(self) -> None:
        policy = RetryPolicy()
        first = [policy.delay(n, random.Random(42)) for n in range(6)]
        assert first == [policy.delay(n, random.Random(42)) for n in range(6)]

    def test_base_and_cap_come_from_the_policy(self) -> None:
        policy = RetryPolicy(base=0.05, cap=0.2, jitter=0.0)
        rng = random.Random(0)
        assert [policy.delay(n, rng) for n in range(5)] == [0.05, 0.1, 0.2, 0.2, 0.2]

    def test_a_negative_count_waits_the_base_delay(self) -> None:
        assert RetryPolicy(jitter=0.0).delay(-3, random.Random(0)) == 1.0


class TestDecide:
    @pytest.mark.parametrize(("retry_count", "max_retries"), [(0, 1), (0, 3), (2, 3), (9, 10)])
    def test_retries_while_the_budget_lasts(self, retry_count: int, max_retries: int) -> None:
        decision = RetryPolicy().decide(retry_count, max_retries, random.Random(0))
        assert decision is not None
        assert decision.retry_count == retry_count + 1
        raw = min(60.0, 2.0**retry_count)
        assert raw * 0.8 <= decision.delay <= min(60.0, raw * 1.2)

    @pytest.mark.parametrize(("retry_count", "max_retries"), [(0, 0), (3, 3), (5, 3)])
    def test_none_when_max_retries_is_used_up(self, retry_count: int, max_retries: int) -> None:
        assert RetryPolicy().decide(retry_count, max_retries, random.Random(0)) is None

    def test_the_whole_budget_is_spent_one_retry_at_a_time(self) -> None:
        policy, rng, count, decisions = RetryPolicy(jitter=0.0), random.Random(0), 0, []
        while (decision := policy.decide(count, 4, rng)) is not None:
            decisions.append(decision)
            count = decision.retry_count
        assert decisions == [
            RetryDecision(delay=1.0, retry_count=1),
            RetryDecision(delay=2.0, retry_count=2),
            RetryDecision(delay=4.0, retry_count=3),
            RetryDecision(delay=8.0, retry_count=4),
        ]

    @pytest.mark.parametrize("requested", [0.0, 0.5, 5.0, 300.0])
    def test_a_requested_delay_is_honoured_exactly(self, requested: float) -> None:
        decision = RetryPolicy().decide(1, 3, random.Random(0), requested_delay=requested)
        assert decision == RetryDecision(delay=requested, retry_count=2)

    def test_a_negative_requested_delay_means_now(self) -> None:
        decision = RetryPolicy().decide(0, 3, random.Random(0), requested_delay=-5.0)
        assert decision == RetryDecision(delay=0.0, retry_count=1)

    def test_a_requested_delay_does_not_extend_the_budget(self) -> None:
        assert RetryPolicy().decide(3, 3, random.Random(0), requested_delay=1.0) is None

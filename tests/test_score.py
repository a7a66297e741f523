from __future__ import annotations

import math

import pytest

from envs.score import crafter_score, success_rates, summarize

ACH = [f"a{i}" for i in range(22)]


def test_equal_rates_score_that_rate():
    for s in (0.0, 1.6, 50.0, 100.0):
        assert crafter_score({a: s for a in ACH}) == pytest.approx(s)


def test_one_achievement_always_unlocked():
    rates = {a: 0.0 for a in ACH} | {"a0": 100.0}
    assert crafter_score(rates) == pytest.approx(101 ** (1 / 22) - 1)  # 0.2335...


def test_geometric_mean_rewards_breadth():
    narrow = {a: 0.0 for a in ACH} | {"a0": 100.0, "a1": 100.0}
    broad = {a: 0.0 for a in ACH} | {f"a{i}": 50.0 for i in range(4)}
    assert crafter_score(broad) > crafter_score(narrow)
    assert crafter_score(narrow) == pytest.approx(math.exp(2 * math.log(101) / 22) - 1)


def test_success_rates_count_episodes_not_unlocks():
    rates = success_rates([["a0", "a1"], ["a0"], [], ["a0"]], ACH)
    assert rates["a0"] == 75.0 and rates["a1"] == 25.0 and rates["a2"] == 0.0


def test_summary_fields():
    eps = [{"seed": 1, "length": 10, "return": 2.0, "achievements": ["a1", "a0"]},
           {"seed": 2, "length": 30, "return": 0.0, "achievements": []}]
    s = summarize(eps, ACH)
    assert s["episodes"] == 2 and s["seeds"] == [1, 2]
    assert s["mean_length"] == 20 and s["mean_return"] == 1.0
    assert s["success_rates"]["a0"] == 50.0
    assert s["per_episode"][0]["achievements"] == ["a0", "a1"]
    assert s["crafter_score"] == pytest.approx(crafter_score(s["success_rates"]))

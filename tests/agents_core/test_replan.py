from __future__ import annotations

from agents.replan import Attempt, replan_reason

OK = Attempt("collect wood", True)


def fail(name: str, cause: str = "timeout", stagnant: bool = False) -> Attempt:
    return Attempt(name, False, cause, stagnant)


def test_no_history_no_trigger():
    assert replan_reason([]) is None
    assert replan_reason([OK, OK, OK]) is None


def test_stagnation_of_the_last_subgoal_triggers():
    assert "stagnation" in replan_reason([OK, fail("collect stone", "stagnation", stagnant=True)])
    # an earlier stagnation alone does not
    assert replan_reason([fail("a", "stagnation", stagnant=True), OK, OK, OK, OK]) is None


def test_half_of_the_last_four_failed_triggers():
    assert replan_reason([OK, OK, fail("a"), OK]) is None  # 1 of 4
    assert "2 of the last 4" in replan_reason([OK, fail("a"), OK, fail("b")])
    assert replan_reason([fail("a"), fail("b"), OK, OK, OK, OK]) is None  # outside the window


def test_recurring_cause_over_two_subgoals_triggers():
    history = [fail("a", "path_blocked"), OK, OK, fail("b", "path_blocked"), OK, OK, OK, fail("a", "path_blocked")]
    # only 1 failure in the last 4, so only the third trigger can fire
    assert "path_blocked recurred 3 times over 2 subgoals" in replan_reason(history)


def test_recurring_cause_on_one_subgoal_only_does_not_trigger():
    history = [fail("a", "path_blocked"), OK, OK, fail("a", "path_blocked"), OK, OK, OK, fail("a", "path_blocked")]
    assert replan_reason(history) is None


def test_recurring_cause_must_be_within_the_last_eight():
    history = [fail("a", "loop"), fail("b", "loop"), OK, OK, OK, OK, OK, OK, OK, fail("c", "loop")]
    assert replan_reason(history) is None

from __future__ import annotations

import dataclasses

import pytest

from agents.diagnosis import AttemptTrace, diagnose, repeating_cycle, state_diff
from agents.plan import Check, Subgoal

WOOD3 = Subgoal(name="collect wood", kind="collect", target="tree",
                check=Check(type="inventory", key="wood", value=3), budget=100)


@pytest.fixture()
def pre(crafter_env):
    obs, _ = crafter_env.reset(seed=3)
    return obs


def with_inventory(obs, **items):
    return dataclasses.replace(obs, inventory=obs.inventory | items)


def walk(n):  # distinct positions: a player that moves around
    return [(i, 0) for i in range(n)]


def test_success_has_no_cause_and_full_progress(pre):
    post = with_inventory(pre, wood=3)
    d = diagnose(WOOD3, pre, post, AttemptTrace(actions=[5] * 12, positions=walk(12), steps_used=12,
                                                budget=100, check_held=True))
    assert d.outcome == "success" and d.failure_cause is None
    assert d.indicators["progress"] == 1.0 and d.state_diff["inventory.wood"] == 3


def test_partial_progress_is_measured(pre):
    post = with_inventory(pre, wood=1)
    d = diagnose(WOOD3, pre, post, AttemptTrace(actions=[1, 2, 3, 4] * 25, positions=walk(100),
                                                steps_used=100, budget=100))
    assert d.outcome == "partial" and d.indicators["progress"] == pytest.approx(1 / 3)
    assert d.indicators["budget_used"] == 1.0


def test_standing_still_without_gain_is_stagnation(pre):
    trace = AttemptTrace(actions=[5] * 40, positions=[(32, 32)] * 40, steps_used=40, budget=100)
    d = diagnose(WOOD3, pre, pre, trace)
    assert d.stagnant and d.outcome == "failure" and d.failure_cause == "stagnation"


def test_repeating_action_cycle_is_a_loop(pre):
    assert repeating_cycle([0, 5, 1, 2, 1, 2, 1, 2, 1, 2]) == 2
    assert repeating_cycle([1, 2, 3, 4, 1, 2, 3]) == 0
    assert repeating_cycle([5] * 10) == 0  # holding one action (e.g. hitting a tree) is no loop
    trace = AttemptTrace(actions=[1, 2] * 20, positions=[(32, 32), (33, 32)] * 20, steps_used=40, budget=100)
    d = diagnose(WOOD3, pre, pre, trace)
    assert d.looping and d.failure_cause == "loop"


def test_death_and_executor_reasons_win(pre):
    died = diagnose(WOOD3, pre, pre, AttemptTrace(positions=walk(20), steps_used=20, budget=100, died=True,
                                                  episode_done=True))
    assert died.failure_cause == "died"
    missing = diagnose(WOOD3, pre, pre, AttemptTrace(positions=walk(5), steps_used=5, budget=100,
                                                     executor_reason="missing_requirement"))
    assert missing.failure_cause == "missing_requirement"


def test_moving_until_the_budget_is_a_timeout(pre):
    trace = AttemptTrace(actions=[1, 1, 3, 2, 4, 4, 2, 3] * 13, positions=walk(100), steps_used=100, budget=100)
    d = diagnose(WOOD3, pre, pre, trace)
    assert d.failure_cause == "timeout" and not d.stagnant


def test_state_diff_lists_only_changes(pre):
    post = dataclasses.replace(with_inventory(pre, sapling=1), vitals=pre.vitals | {"health": 6.0},
                               position=(30, 33), achievements=frozenset({"collect_sapling"}))
    assert state_diff(pre, post) == {"inventory.sapling": 1, "vitals.health": -3, "moved": 3, "achievements": 1}


def test_distance_to_target_uses_the_view(pre):
    d = diagnose(WOOD3, pre, pre, AttemptTrace(positions=walk(10), steps_used=10, budget=100))
    assert d.indicators["distance_to_target"] == 6  # seed 3: a tree 4 left, 2 down


def test_guardrails_only_from_distinguishing_danger(pre):
    """A death at full health in daylight writes no guardrail: its pattern would always
    match and hold the subgoal back for good (this once made learning ruin the agent)."""
    from agents.evolving.knowledge import guardrail_from_failure
    from agents.techtree import TechTree
    from memory.models import Diagnosis

    died = Diagnosis(outcome="failure", failure_cause="died")
    tree = TechTree.load("full")
    assert guardrail_from_failure(WOOD3, pre, died, "ex-1", tree, "open") is None
    weak = dataclasses.replace(pre, vitals=pre.vitals | {"health": 2.0}, daylight=0.1)
    rail = guardrail_from_failure(WOOD3, weak, died, "ex-1", tree, "open")
    assert rail.risk_pattern == ["health<3", "night"] and rail.scope == "task"
    rest = Subgoal(name="rest", kind="sleep", target="energy", check=Check(type="vital", key="energy", value=9))
    assert guardrail_from_failure(rest, weak, died, "ex-1", tree, "open") is None


def test_missing_requirement_hypotheses_only_past_what_the_tree_asks(pre):
    from agents.evolving.knowledge import guardrail_from_failure
    from agents.techtree import TechTree
    from memory.models import Diagnosis

    missing = Diagnosis(outcome="failure", failure_cause="missing_requirement")
    tree = TechTree.load("partial")  # thinks a table needs 1 wood (truth: 2)
    table = Subgoal(name="place table", kind="place", target="table",
                    check=Check(type="achievement", key="place_table"))
    # held what the prior asks: the guess is one more wood
    rail = guardrail_from_failure(table, with_inventory(pre, wood=1), missing, "ex-1", tree, "open")
    assert rail.risk_pattern == ["wood<2"] and rail.repair == "first get 2 wood"
    # held less than the prior asks: the prior explains it, no guess
    assert guardrail_from_failure(table, with_inventory(pre, wood=0), missing, "ex-1", tree, "open") is None


def next_to(obs, station, dc=1):
    view = obs.local_view.copy()
    r, c = obs.player_cell
    view[r, c + dc] = station
    return dataclasses.replace(obs, local_view=view)


def test_hypotheses_walk_from_nothing_known_towards_the_recipe(pre):
    """Under the none prior each failed craft or place guesses the next step: a station,
    then the item the name says, then another station, then another material."""
    from agents.evolving.knowledge import missing_hypothesis
    from agents.techtree import TechTree

    tree = TechTree.load("none")
    pickaxe = Subgoal(name="make wood_pickaxe", kind="craft", target="wood_pickaxe",
                      check=Check(type="inventory", key="wood_pickaxe", value=1))
    bare = with_inventory(pre, wood=0)
    assert missing_hypothesis(pickaxe, bare, tree) == (["!near:table"], ["a table nearby"])
    assert missing_hypothesis(pickaxe, next_to(bare, "table"), tree) == (["wood<1"], ["1 wood"])
    iron = Subgoal(name="make iron_pickaxe", kind="craft", target="iron_pickaxe",
                   check=Check(type="inventory", key="iron_pickaxe", value=1))
    tree.learn_requirement("iron_pickaxe", "iron", 1)
    tree.learn_station("iron_pickaxe", "table")
    at_table = next_to(with_inventory(pre, iron=1, wood=0), "table")
    assert missing_hypothesis(iron, at_table, tree) == (["!near:furnace"], ["a furnace nearby"])
    tree.learn_station("iron_pickaxe", "furnace")
    both = next_to(at_table, "furnace", dc=-1)
    assert missing_hypothesis(iron, both, tree) == (["wood<1"], ["1 wood"])  # the next material
    table = Subgoal(name="place table", kind="place", target="table", check=Check(type="achievement", key="place_table"))
    assert missing_hypothesis(table, with_inventory(pre, wood=1), tree) == (["wood<2"], ["2 wood"])  # more of it
    assert missing_hypothesis(table, with_inventory(pre, wood=0), tree) == (["wood<1"], ["1 wood"])


def test_a_skill_states_what_the_final_action_consumed(pre):
    """The recipe is read from the inventory around the action that made the thing, not
    from the tree (which under the none prior knows nothing) nor the whole attempt."""
    from agents.evolving.knowledge import skill_from_success
    from agents.techtree import TechTree
    from memory.models import Diagnosis

    craft = Subgoal(name="make stone_pickaxe", kind="craft", target="stone_pickaxe",
                    check=Check(type="inventory", key="stone_pickaxe", value=1))
    start = with_inventory(pre, wood=5, stone=6)  # placed walls on the way: stone went down
    last = next_to(with_inventory(pre, wood=3, stone=2), "table")
    post = with_inventory(pre, wood=2, stone=1, stone_pickaxe=1)
    ok = Diagnosis(outcome="success")
    skill = skill_from_success(craft, start, post, ok, "ex-1", TechTree.load("none"), ["make_stone_pickaxe"],
                               last_pre=last)
    assert sorted(skill.preconditions) == ["near:table", "stone>=1", "wood>=1"]

"""The graph planner: valid, ordered plans; survival first; experience steers it."""

from __future__ import annotations

import pytest

from agents.plan import SUBGOAL_KINDS, Plan, PlanContext, Subgoal
from agents.planners import GraphPlanner
from tests.agents.conftest import make_obs

ALL = ("collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling", "collect_stone",
       "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant", "make_iron_pickaxe",
       "make_iron_sword", "make_stone_pickaxe", "make_stone_sword", "make_wood_pickaxe", "make_wood_sword",
       "place_furnace", "place_plant", "place_stone", "place_table", "wake_up")


def names(plan: Plan) -> list[str]:
    return [s.name for s in plan.subgoals]


def test_plan_is_valid_and_ordered():
    plan = GraphPlanner(prior="full").plan(PlanContext(task="make_stone_pickaxe", obs=make_obs()))
    assert all(isinstance(s, Subgoal) and s.kind in SUBGOAL_KINDS for s in plan.subgoals)
    n = names(plan)
    order = ["collect wood", "place table", "make wood_pickaxe", "collect stone", "make stone_pickaxe"]
    assert [x for x in n if x in order] == order, n
    assert plan.subgoals[-1].check.holds(make_obs(inventory={"stone_pickaxe": 1}))


def test_diamond_plan_walks_the_tool_chain():
    inv = {"wood_pickaxe": 1, "stone_pickaxe": 1, "wood": 3}
    n = names(GraphPlanner(prior="full").plan(PlanContext(task="collect_diamond", obs=make_obs(inventory=inv))))
    for a, b in [("collect coal", "make iron_pickaxe"), ("collect iron", "make iron_pickaxe"),
                 ("place furnace", "make iron_pickaxe"), ("make iron_pickaxe", "collect diamond")]:
        assert n.index(a) < n.index(b), n


def test_open_task_follows_the_curriculum_and_stops_when_all_done():
    planner = GraphPlanner(prior="full")
    first = planner.plan(PlanContext(task="open", obs=make_obs(step=1)))
    assert first.subgoals[0].name == "collect wood"
    done = planner.plan(PlanContext(task="open", obs=make_obs(achievements=ALL, step=2)))
    assert done.subgoals == []


def test_survival_comes_first_most_depleted_first():
    obs = make_obs(vitals={"drink": 2, "food": 3})
    n = names(GraphPlanner(prior="full").plan(PlanContext(task="open", obs=obs)))
    assert n[:2] == ["drink water", "eat cow"], n
    low_energy = make_obs(vitals={"energy": 1})
    assert names(GraphPlanner().plan(PlanContext(task="open", obs=low_energy)))[0] == "sleep"


def test_opportunities_jump_the_queue():
    obs = make_obs(cells={(1, 0): "water"}, achievements=("collect_wood",), step=40)
    n = names(GraphPlanner().plan(PlanContext(task="open", obs=obs)))
    assert n[0] == "drink water"


@pytest.mark.parametrize(("inventory", "cells", "first"), [
    ({"wood": 1, "stone": 1}, {(2, 0): "table"}, "make stone_pickaxe"),  # one craft away: now
    ({"wood": 1, "stone": 1}, {}, "collect sapling"),  # no table near: the curriculum's order
    ({"wood": 1}, {(2, 0): "table"}, "collect sapling"),  # the stone is still to find
])
def test_a_tool_one_craft_away_jumps_the_queue(inventory, cells, first):
    obs = make_obs(achievements=("collect_wood", "place_table", "make_wood_pickaxe", "make_wood_sword"),
                   inventory=dict(inventory, wood_pickaxe=1, wood_sword=1), cells=cells)
    assert names(GraphPlanner(prior="full").plan(PlanContext(task="open", obs=obs)))[0] == first


def test_unknown_task_is_refused():
    with pytest.raises(ValueError):
        GraphPlanner().plan(PlanContext(task="build_a_castle", obs=make_obs()))


def _wood_tier_done() -> tuple[GraphPlanner, PlanContext, Plan]:
    """A planner whose next plan, past the wood tier, starts with a sapling."""
    planner = GraphPlanner(prior="full")
    obs = make_obs(achievements=("collect_wood", "place_table", "make_wood_pickaxe", "make_wood_sword"),
                   inventory={"wood_pickaxe": 1, "wood_sword": 1})
    ctx = PlanContext(task="open", obs=obs)
    plan = planner.plan(ctx)
    assert plan.subgoals[0].name == "collect sapling"
    return planner, ctx, plan


def test_repair_keeps_the_done_part_and_holds_the_failure_back():
    planner, ctx, plan = _wood_tier_done()
    obs = ctx.obs
    repaired = planner.repair(ctx, plan, 1, "target_not_found")
    assert repaired.subgoals[:1] == plan.subgoals[:1]  # the done part is kept as it was
    fresh = planner.repair(ctx, plan, 0, "target_not_found")
    assert "collect sapling" not in names(fresh)  # held back for a while: the rest goes on
    assert "collect stone" in names(fresh)
    later = make_obs(achievements=obs.achievements, inventory=obs.inventory, step=obs.step + 1000)
    assert "collect sapling" in names(planner.plan(PlanContext(task="open", obs=later)))


def test_a_failure_noted_without_a_repair_holds_the_target_back_from_fresh_plans():
    """What the graph does after a failure that triggers no replan: note it, plan afresh."""
    planner, ctx, plan = _wood_tier_done()
    assert names(plan)[:2] == ["collect sapling", "place plant"]
    planner.note_failure(ctx, plan.subgoals[0], "target_not_found")
    assert "collect_sapling" not in planner.plan(ctx).rationale  # its own target is held back ...
    planner.note_failure(ctx, plan.subgoals[1], "target_not_found")
    assert "collect sapling" not in names(planner.plan(ctx))  # ... and with place_plant, every sapling
    planner.note_failure(ctx, next(s for s in planner.plan(ctx).subgoals if s.name == "collect stone"), "interrupted")
    assert "collect stone" in names(planner.plan(ctx))  # interrupted by a need: not its fault


def test_missing_requirement_guardrail_teaches_the_partial_prior():
    guard = {"trigger": {"subgoal_kind": "collect", "subgoal_target": "iron"},
             "failure_cause": "missing_requirement", "risk_pattern": [],
             "repair": "first get stone_pickaxe", "confidence": 0.8}
    inv = {"wood_pickaxe": 1, "wood": 2}
    blind = GraphPlanner(prior="partial")
    n = names(blind.plan(PlanContext(task="collect_iron", obs=make_obs(inventory=inv))))
    assert "make stone_pickaxe" not in n  # the prior thinks a wood pickaxe mines iron
    taught = GraphPlanner(prior="partial")
    n = names(taught.plan(PlanContext(task="collect_iron", obs=make_obs(inventory=inv), guardrails=[guard])))
    assert n.index("make stone_pickaxe") < n.index("collect iron"), n
    assert taught.tree.requirements("iron")["stone_pickaxe"] == 1
    assert taught.learned == ["iron needs 1 stone_pickaxe"]


def test_risk_pattern_and_skill_preconditions_teach_stations_and_counts():
    guard = {"trigger": {"subgoal_kind": "craft", "subgoal_target": "iron_pickaxe"},
             "failure_cause": "missing_requirement", "risk_pattern": ["!near:furnace", "coal<1"],
             "repair": "place a furnace nearby", "confidence": 0.9}
    skill = {"trigger": {"subgoal_kind": "place", "subgoal_target": "table"},
             "preconditions": ["wood>=2"], "confidence": 0.9, "name": "place table", "steps": ["place_table"]}
    planner = GraphPlanner(prior="partial")
    planner.plan(PlanContext(task="make_iron_pickaxe", obs=make_obs(), guardrails=[guard], skills=[skill]))
    assert "furnace" in planner.tree.stations_for("iron_pickaxe")
    assert planner.tree.requirements("iron_pickaxe")["coal"] == 1
    assert planner.tree.requirements("table", "place") == {"wood": 2}


def test_a_matching_guardrail_holds_a_target_back():
    guard = {"trigger": {"subgoal_kind": "fight", "subgoal_target": "zombie"}, "failure_cause": "died",
             "risk_pattern": ["health<8"], "repair": "heal first", "confidence": 0.9}
    obs = make_obs(cells={(2, 0): "zombie"}, vitals={"health": 7}, achievements=("collect_wood",), step=40)
    assert "defeat zombie" in names(GraphPlanner().plan(PlanContext(task="defeat_zombie", obs=obs)))
    n = names(GraphPlanner().plan(PlanContext(task="defeat_zombie", obs=obs, guardrails=[guard])))
    assert "defeat zombie" not in n
    healthy = make_obs(cells={(2, 0): "zombie"}, achievements=("collect_wood",), step=40)
    n = names(GraphPlanner().plan(PlanContext(task="defeat_zombie", obs=healthy, guardrails=[guard])))
    assert "defeat zombie" in n


def test_none_prior_plans_targets_directly():
    n = names(GraphPlanner(prior="none").plan(PlanContext(task="make_iron_pickaxe", obs=make_obs())))
    assert n == ["make iron_pickaxe"]  # nothing known: try it, fail, learn


def test_a_craft_skill_states_the_recipe_exactly():
    """Guesses only add requirements; the first success replaces them with what it used."""
    guess = {"trigger": {"subgoal_kind": "craft", "subgoal_target": "stone_pickaxe"},
             "failure_cause": "missing_requirement", "risk_pattern": ["coal<1", "!near:furnace"],
             "repair": "first get 1 coal", "confidence": 0.9}
    found = {"trigger": {"subgoal_kind": "craft", "subgoal_target": "stone_pickaxe"},
             "preconditions": ["wood>=1", "stone>=1", "near:table"], "confidence": 0.9,
             "name": "make stone_pickaxe", "steps": ["make_stone_pickaxe"]}
    guessed = GraphPlanner(prior="none")
    guessed.plan(PlanContext(task="make_stone_pickaxe", obs=make_obs(), guardrails=[guess]))
    assert guessed.tree.requirements("stone_pickaxe") == {"coal": 1, "furnace": 1}
    planner = GraphPlanner(prior="none")
    planner.plan(PlanContext(task="make_stone_pickaxe", obs=make_obs(), guardrails=[guess], skills=[found]))
    assert planner.tree.requirements("stone_pickaxe") == {"wood": 1, "stone": 1, "table": 1}
    # a station step that found a table consumed nothing: it does not wipe the recipe
    near = {"trigger": {"subgoal_kind": "place", "subgoal_target": "table"}, "preconditions": [],
            "confidence": 0.9, "name": "place table", "steps": ["noop"]}
    full = GraphPlanner(prior="full")
    full.plan(PlanContext(task="place_table", obs=make_obs(), skills=[near]))
    assert full.tree.requirements("table", "place") == {"wood": 2}


def test_what_placing_stone_needs_is_not_what_collecting_it_needs():
    """Stone is both collected and placed: a guess about placing it must not make the
    collect of stone need wood (it once did, and every later plan gathered wood first)."""
    guess = {"trigger": {"subgoal_kind": "place", "subgoal_target": "stone"},
             "failure_cause": "missing_requirement", "risk_pattern": ["wood<2"], "repair": "first get 2 wood",
             "confidence": 0.9}
    planner = GraphPlanner(prior="full")
    planner.plan(PlanContext(task="place_stone", obs=make_obs(), guardrails=[guess]))
    assert planner.tree.requirements("stone") == {"wood_pickaxe": 1}
    assert planner.tree.requirements("stone", "place") == {"stone": 1, "wood": 2}


def test_without_a_curriculum_the_fewest_steps_go_first():
    """The none prior gives no order: what the tree can plan goes first, cheapest by what
    it knows now; sleeping, eating and fighting come as needs and opportunities."""
    planner = GraphPlanner(prior="none")
    open_task = PlanContext(task="open", obs=make_obs())
    order = planner._remaining(open_task)
    assert order[:2] == ["collect_coal", "collect_diamond"]  # nothing known: one step each, game order
    assert set(order[-6:]) == {"collect_drink", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant",
                               "wake_up"}
    planner.tree.learn_requirement("diamond", "iron_pickaxe", 1)
    planner.tree.learn_requirement("iron_pickaxe", "iron", 1)
    order = planner._remaining(open_task)
    assert order.index("collect_diamond") > order.index("make_iron_pickaxe") > order.index("collect_wood")
    assert GraphPlanner(prior="full")._remaining(open_task)[0] == "collect_wood"  # the prior's own order

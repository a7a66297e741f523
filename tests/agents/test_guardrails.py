"""Guardrails block risky actions; the built-in one never walks into lava."""

from __future__ import annotations

from agents.executor import Executor
from agents.executor import guardrails as g
from agents.plan import Check, Subgoal
from tests.agents.conftest import make_obs

FIGHT = Subgoal(name="defeat zombie", kind="fight", target="zombie",
                check=Check(type="achievement", key="defeat_zombie"))
WALK = Subgoal(name="explore", kind="explore", target="diamond", check=Check(type="nearby", key="diamond"))


def names_of(obs):
    return {(dx, dy): obs.local_view[3 + dy, 4 + dx] for dx in range(-2, 3) for dy in range(-2, 3)
            if abs(dx) + abs(dy) <= 2}


def test_risk_pattern_matches_the_situation_of_an_action():
    obs = make_obs(cells={(1, 0): "zombie"}, vitals={"health": 3}, facing=(1, 0))
    facts = g.situation(names_of(obs), "do", obs.vitals, obs.inventory, obs.facing, daylight=0.1)
    assert facts["action:do"] == 1 and facts["front:zombie"] == 1 and facts["night"] == 1
    rail = {"trigger": {"subgoal_kind": "fight", "subgoal_target": "zombie"}, "failure_cause": "died",
            "risk_pattern": ["front:zombie", "health<4", "night"]}
    assert g.risky(names_of(obs), "do", obs.facing)
    assert g.blocking([rail], "fight", "zombie", facts) is rail
    assert g.blocking([rail], "collect", "wood", facts) is None  # trigger does not fit
    day = g.situation(names_of(obs), "do", obs.vitals, obs.inventory, obs.facing, daylight=1.0)
    assert g.blocking([rail], "fight", "zombie", day) is None  # one fact does not hold
    # "night" alone is half of every day: it holds the subgoal back when planning, it
    # does not block each strike at the zombie at the door
    dusk = rail | {"risk_pattern": ["night"]}
    assert g.blocking([dusk], "fight", "zombie", facts) is None
    assert g.blocking([dusk | {"risk_pattern": ["night", "health<4"]}], "fight", "zombie", facts) is not None
    moving_near_lava = make_obs(cells={(2, 0): "lava"})
    facts = g.situation(names_of(moving_near_lava), "move_right", {}, {}, (0, 1), 1.0)
    assert facts["near:lava"] == 1
    assert not g.risky(names_of(make_obs()), "move_right", (0, 1))


def test_executor_alters_a_blocked_action():
    ex = Executor()
    obs = make_obs(cells={(1, 0): "zombie"}, vitals={"health": 3}, facing=(1, 0))
    ex.reset(obs)
    rail = {"trigger": {"subgoal_kind": "fight", "subgoal_target": "zombie"}, "failure_cause": "died",
            "risk_pattern": ["front:zombie", "health<4"]}
    safe = ex._guard(ex.ctx, FIGHT, ex.a["do"], [rail])
    assert safe == ex.a["move_left"]  # steps back from the zombie instead of hitting it
    assert ex._guard(ex.ctx, FIGHT, ex.a["do"], []) == ex.a["do"]


def test_lava_is_never_walked_into_and_the_cell_is_avoided():
    ex = Executor()
    obs = make_obs(cells={(1, 0): "lava"})
    ex.reset(obs)
    assert ex._guard(ex.ctx, WALK, ex.a["move_right"], ()) == ex.a["noop"]
    assert ex.world.index(33, 32) in ex.world.avoid and ex.ctx.replan
    assert ex._guard(ex.ctx, WALK, ex.a["move_left"], ()) == ex.a["move_left"]


def test_a_memory_guardrail_blocks_moves_next_to_lava():
    ex = Executor()
    obs = make_obs(cells={(2, 0): "lava"})
    ex.reset(obs)
    rail = {"trigger": {"subgoal_kind": "explore"}, "failure_cause": "died", "risk_pattern": ["near:lava"]}
    assert ex._guard(ex.ctx, WALK, ex.a["move_right"], [rail]) == ex.a["noop"]
    assert ex._guard(ex.ctx, WALK, ex.a["move_left"], [rail]) == ex.a["move_left"]

"""Survival reflexes: which need interrupts a subgoal, and when it waits."""

from __future__ import annotations

import pytest

from agents.executor import Executor
from agents.executor.reflexes import Reflexes
from agents.executor.worldmap import CODE
from agents.plan import Check, Subgoal
from agents.techtree import TechTree
from tests.agents.conftest import make_obs

WOOD = Subgoal(name="collect wood", kind="collect", target="wood",
               check=Check(type="inventory", key="wood", value=5), budget=200)


def reflex_for(obs, water_at: int | None) -> str | None:
    """The reflex that starts first for ``obs``, with water ``water_at`` cells to the right."""
    ex = Executor(TechTree.load("full"))
    ex.reset(obs)
    if water_at is not None:
        x, y = obs.position
        ex.world.mat[y, x + water_at] = CODE["water"]
    reflexes = Reflexes(ex.ctx, WOOD)
    reflexes.program(0)
    return reflexes.stack[-1].name if reflexes.stack else None


@pytest.mark.parametrize(("drink", "step", "water_at", "expected"), [
    (5, 60, 20, "drink"),  # by day, below the day's threshold: drink, however far
    (7, 60, 20, None),  # by day, at the threshold: not yet
    (2, 200, 20, None),  # at night, water far: the walk in the dark waits
    (1, 200, 5, "drink"),  # at night, nearly dry with water close: drink
])
def test_a_drink_interrupts_by_the_time_of_day_and_the_distance(drink, step, water_at, expected):
    assert reflex_for(make_obs(vitals={"drink": drink}, step=step), water_at) == expected


def test_no_reflex_when_every_need_is_met():
    assert reflex_for(make_obs(step=60), 3) is None


def first_reflex_after(before, now, subgoal: Subgoal = WOOD) -> tuple[str | None, str | None]:
    """(reflex, its first action's name) for observation ``now`` seen a step after ``before``."""
    ex = Executor(TechTree.load("full"))
    ex.reset(before)
    ex.world.update(now)
    ex.ctx.obs = now
    reflexes = Reflexes(ex.ctx, subgoal)
    program = reflexes.program(0)
    if program is None:
        return None, None
    return reflexes.stack[-1].name, ex.action_names[next(program)[0]]


@pytest.mark.parametrize(("before", "now", "expected"), [
    ({(3, 0): "arrow"}, {(2, 0): "arrow"}, "dodge"),  # flying left at the player: step aside
    ({(4, 0): "skeleton"}, {(4, 0): "skeleton", (3, 0): "arrow"}, "dodge"),  # just shot
    ({(1, 0): "arrow"}, {(2, 0): "arrow"}, None),  # flying away
    ({(3, 0): "arrow"}, {(2, 0): "arrow", (1, 0): "stone"}, None),  # a wall takes it
    ({(4, 1): "arrow"}, {(3, 1): "arrow"}, None),  # not in the player's row
    ({(3, 0): "arrow"}, {(2, 0): "arrow", (0, -1): "stone", (0, 1): "water"}, None),  # nowhere to step
])
def test_an_arrow_flying_at_the_player_is_dodged(before, now, expected):
    reflex, action = first_reflex_after(make_obs(cells=before, step=60), make_obs(cells=now, step=61))
    assert reflex == expected
    if expected == "dodge":
        assert action in ("move_up", "move_down")  # out of the row it flies along


TUNNEL = {(0, -1): "stone", (0, 1): "stone"}
SKELETON = Subgoal(name="defeat skeleton", kind="fight", target="skeleton",
                   check=Check(type="achievement", key="defeat_skeleton"), budget=1500)


@pytest.mark.parametrize(("facing", "stone", "subgoal", "expected"), [
    ((1, 0), 1, WOOD, ("dodge", "place_stone")),  # in a tunnel, facing it: a stone takes it
    ((-1, 0), 1, WOOD, (None, None)),  # facing away: turning would step toward it
    ((1, 0), 0, WOOD, (None, None)),  # no stone to place
    ((1, 0), 1, SKELETON, (None, None)),  # fighting the skeleton: walls would keep it away
])
def test_in_a_tunnel_an_arrow_is_walled_off(facing, stone, subgoal, expected):
    before = make_obs(cells={**TUNNEL, (3, 0): "arrow"}, step=60, facing=facing)
    now = make_obs(cells={**TUNNEL, (2, 0): "arrow"}, step=61, facing=facing, inventory={"stone": stone})
    assert first_reflex_after(before, now, subgoal) == expected


# a plant of ours one cell right of the player, stone above and right of it, open below
PLANT = {(1, 0): "plant", (2, 0): "stone", (1, -1): "stone"}


def reflex_beside_plant(cells, inventory, age=10, step=60, plant=(33, 32),
                        achievements=()) -> tuple[str | None, str | None]:
    obs = make_obs(cells={**PLANT, **cells}, step=step, inventory=inventory, achievements=achievements)
    ex = Executor(TechTree.load("full"))
    ex.reset(obs)
    known = ex.world.mat[26:39, 26:46]
    known[known == CODE["unknown"]] = CODE["grass"]  # seen before, out of view now
    ex.world.note_plant(plant, own=True)
    ex.world.plants[plant] = age
    reflexes = Reflexes(ex.ctx, WOOD)
    program = reflexes.program(0)
    if program is None:
        return None, None
    return reflexes.stack[-1].name, ex.action_names[next(program)[0]]


@pytest.mark.parametrize(("cells", "inventory", "age", "expected"), [
    ({}, {"stone": 1}, 10, "mend"),  # its open side gets a stone
    ({}, {"stone": 0}, 10, None),  # nothing to wall it with
    ({(1, 1): "stone"}, {"stone": 1}, 10, None),  # walled all round (the player is the fourth side)
    ({}, {"stone": 1}, 300, "harvest"),  # ripe: eaten, not walled
    ({(-3, 0): "zombie"}, {"stone": 1}, 10, None),  # a zombie close: not now
])
def test_an_open_side_of_a_growing_plant_is_walled(cells, inventory, age, expected):
    reflex, action = reflex_beside_plant(cells, inventory, age)
    assert reflex == expected
    if expected == "mend":
        assert action.startswith("move_")  # on the way to a cell beside the gap, facing it
    if expected == "harvest":
        assert action == "move_right"  # it faces down: turn to the plant (then eat it)


@pytest.mark.parametrize(("cells", "expected"), [
    ({(1, 1): "stone"}, None),  # the only stone near is the plant's wall
    ({(1, 1): "stone", (-1, -1): "stone"}, "stock"),  # other stone next to the player
])
def test_stone_is_stocked_from_anything_but_a_plants_wall(cells, expected):
    reflex, _ = reflex_beside_plant(cells, {"stone": 2, "wood_pickaxe": 1})
    assert reflex == expected


@pytest.mark.parametrize(("step", "plant", "achievements", "expected"), [
    (60, (42, 32), (), "harvest"),  # by day, 10 cells away: go and eat it before a cow does
    (200, (42, 32), (), None),  # at night, 10 cells away: it waits for the morning
    (200, (33, 32), (), "harvest"),  # at night, next to the shelter: a short trip
    (60, (33, 32), ("eat_plant",), None),  # eaten once already: the curriculum has it done
])
def test_a_ripe_plant_of_ours_is_eaten_soon(step, plant, achievements, expected):
    reflex, _ = reflex_beside_plant({}, {}, age=300, step=step, plant=plant, achievements=achievements)
    assert reflex == expected

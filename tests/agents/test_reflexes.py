"""Survival reflexes: which need interrupts a subgoal, and when it waits."""

from __future__ import annotations

import pytest

from agents.executor import Executor
from agents.executor.reflexes import TOP_UP, Reflexes
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


@pytest.mark.parametrize(("drink", "water_at", "expected"), [
    (5, TOP_UP - 2, "drink"),  # not pressing, water near: topped up on the way
    (5, TOP_UP + 8, None),  # not pressing, water far: the walk waits until it is
    (3, TOP_UP + 8, "drink"),  # pressing: however far
])
def test_a_daytime_drink_waits_for_water_near_unless_pressing(drink, water_at, expected):
    assert reflex_for(make_obs(vitals={"drink": drink}, step=60), water_at) == expected


def test_no_reflex_when_every_need_is_met():
    assert reflex_for(make_obs(step=60), 3) is None


def _pocket(extra: dict) -> object:
    """The player walled in with stone above and on both sides, a lake below (7 x 9 view)."""
    from types import SimpleNamespace

    cells = {(-1, 0): "stone", (1, 0): "stone", (0, -1): "stone"}
    cells.update({(dx, dy): "water" for dx in range(-4, 5) for dy in (1, 2, 3)})
    cells.update(extra)
    return SimpleNamespace(obs=make_obs(cells=cells))


def test_a_pocket_by_a_lake_is_sealed_unless_a_skeleton_can_shoot_over_it():
    from agents.executor.shelter import sealed

    assert sealed(_pocket({}))
    assert sealed(_pocket({(-4, -3): "arrow"}))  # an arrow far off: no skeleton in range
    assert not sealed(_pocket({(2, 2): "path", (3, 2): "path"}))  # skeleton ground across the water

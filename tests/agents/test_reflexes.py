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

"""Farming on hand-made views: a sapling is walled in on every side, the player's too."""

from __future__ import annotations

from agents.executor import Executor
from agents.executor.farming import plant_sapling
from agents.techtree import TechTree
from tests.agents.conftest import make_obs

# grass right of the player, stone on its three other sides; with one stone in hand, no
# other spot near is open on one side only, so the sapling goes right there
SPOT = {(2, 0): "stone", (1, -1): "stone", (1, 1): "stone"}


def test_the_side_the_sapling_was_planted_from_is_walled_too():
    obs = make_obs(cells=SPOT, step=130, facing=(1, 0), inventory={"sapling": 1, "stone": 1})
    ex = Executor(TechTree.load("full"))
    ex.reset(obs)
    program = plant_sapling(ex.ctx, protect=True)
    assert ex.action_names[next(program)[0]] == "place_plant"
    planted = make_obs(cells={**SPOT, (1, 0): "plant"}, step=131, facing=(1, 0), inventory={"stone": 1})
    ex.ctx.obs = planted
    ex.world.update(planted)
    # the player stands on the fourth side: it steps off to wall it (the program does not end)
    assert ex.action_names[next(program)[0]].startswith("move_")
    assert ex.world.own_plants == {(33, 32)}

from __future__ import annotations

import numpy as np
import pytest

from envs import Observation

ITEMS = ("sapling", "wood", "stone", "coal", "iron", "diamond", "wood_pickaxe", "stone_pickaxe",
         "iron_pickaxe", "wood_sword", "stone_sword", "iron_sword")


def make_obs(inventory: dict | None = None, vitals: dict | None = None, cells: dict | None = None,
             achievements=(), step: int = 40, position=(32, 32), facing=(0, 1)) -> Observation:
    """A hand-made observation: grass all around, ``cells`` maps (dx, dy) to a name."""
    view = np.full((7, 9), "grass", dtype=object)
    view[3, 4] = "player"
    for (dx, dy), name in (cells or {}).items():
        view[3 + dy, 4 + dx] = name
    inv = {k: 0 for k in ITEMS}
    inv.update(inventory or {})
    vit = {"health": 9.0, "food": 9.0, "drink": 9.0, "energy": 9.0}
    vit.update(vitals or {})
    return Observation(frame=np.zeros((64, 64, 3), np.uint8), inventory=inv, vitals=vit, local_view=view,
                       position=position, facing=facing, achievements=frozenset(achievements), step=step,
                       extras={"sleeping": False})


@pytest.fixture(scope="module")
def crafter():
    import envs

    env = envs.make("crafter", max_steps=10000)
    yield env
    env.close()

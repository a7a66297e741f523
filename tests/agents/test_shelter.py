"""Survival: when a night pocket counts as sealed."""

from __future__ import annotations

from types import SimpleNamespace

from agents.executor.shelter import sealed
from tests.agents.conftest import make_obs


def _pocket(extra: dict) -> SimpleNamespace:
    """The player walled in with stone above and on both sides, a lake below (7 x 9 view)."""
    cells = {(-1, 0): "stone", (1, 0): "stone", (0, -1): "stone"}
    cells.update({(dx, dy): "water" for dx in range(-4, 5) for dy in (1, 2, 3)})
    cells.update(extra)
    return SimpleNamespace(obs=make_obs(cells=cells))


def test_a_pocket_by_a_lake_is_sealed_unless_a_skeleton_can_shoot_over_it():
    assert sealed(_pocket({}))
    assert sealed(_pocket({(-4, -3): "arrow"}))  # an arrow far off: no skeleton in range
    assert not sealed(_pocket({(2, 2): "path", (3, 2): "path"}))  # skeleton ground across the water

"""Survival: when a night pocket counts as sealed."""

from __future__ import annotations

from types import SimpleNamespace

from agents.executor.shelter import _wall_front, sealed
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


def test_an_arrow_in_the_doorway_is_waited_out_before_the_wall_goes_up():
    # sealing, the last stone goes on the entry; an arrow flying through it at that
    # moment used to leave the pocket open (and the player walked off to build another)
    front = iter(["arrow", "arrow", "path"])
    state = {"front": next(front)}
    x = SimpleNamespace(a={"place_stone": 7, "noop": 0}, front_name=lambda: state["front"])
    actions = []
    for action, _ in _wall_front(x):
        actions.append(action)
        state["front"] = next(front, "stone")
    assert actions == [0, 0, 7]  # wait, wait, wall
    state["front"] = "water"
    assert list(_wall_front(x)) == []  # water (or a wall) needs no stone

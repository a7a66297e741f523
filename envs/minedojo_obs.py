"""MineDojo's observation dict -> :class:`Observation`: pure functions, tested without
Minecraft (and without minedojo for most). Mapping:

- ``frame``: ``rgb`` (3, H, W) -> (H, W, 3) uint8.
- ``inventory``: the 36 slots summed by item name (``crafting table`` -> ``crafting_table``),
  ``air`` (empty slot) left out. Worn armour is not counted; the held item is ``extras["equipped"]``.
- ``vitals`` on Crafter's 0..9 scale, so thresholds carry over between worlds: ``health``
  from life (0..20), ``food`` from the hunger bar (0..20). Minecraft has no thirst or
  fatigue, so ``drink`` and ``energy`` stay full (9): a "drink when low" reflex never fires.
  Raw values (life, food_level, saturation, oxygen, armor, xp) are in ``extras``.
- ``local_view``: a top-down grid from the voxels around the player, rows north (-z) to
  south, cols west (-x) to east: the block at feet level, or the floor below when that is
  air; the centre cell is ``player`` (as in Crafter), the block under it ``extras["standing_on"]``.
- ``position``: (x, z) floored; ``y`` (height) is in ``extras``. ``facing``: the yaw snapped to
  the nearest axis (yaw 0 faces south = (0, 1), 90 west, -90 east, 180 north).
- ``achievements``: Minecraft's own are not observed, so they are derived from the
  inventory: ``collect_<item>`` the first time an item's count rises in an episode,
  ``craft_<item>`` when that rise came from crafting or smelting.
- ``daylight``: ``sun_brightness`` (about 0.2 at night to 1 at noon).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from envs.minedojo_actions import item_name
from envs.observation import VITAL_MAX, Observation

MC_LIFE_MAX = MC_FOOD_MAX = 20.0


# -- translation (pure) ----------------------------------------------------------------
def _scalar(x: Any) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def inventory_counts(inventory: Mapping[str, Any]) -> dict[str, int]:
    """Item name -> total count over MineDojo's slot arrays ``name`` and ``quantity``."""
    counts: dict[str, int] = {}
    for name, qty in zip(inventory["name"], np.asarray(inventory["quantity"]).reshape(-1)):
        item = item_name(name)
        if item != "air" and qty > 0:
            counts[item] = counts.get(item, 0) + int(qty)
    return counts


def vitals_from_life_stats(life: Mapping[str, Any]) -> dict[str, float]:
    """Life and hunger (0..20) on Crafter's 0..9; drink and energy full (see module doc)."""
    def rescale(value: Any, top: float) -> float:
        return float(np.clip(_scalar(value) * VITAL_MAX / top, 0.0, VITAL_MAX))

    return {"health": rescale(life["life"], MC_LIFE_MAX), "food": rescale(life["food"], MC_FOOD_MAX),
            "drink": VITAL_MAX, "energy": VITAL_MAX}


def facing_from_yaw(yaw_degrees: float) -> tuple[int, int]:
    """Minecraft yaw (0 south, 90 west) -> unit (dx, dz), snapped to the nearest axis."""
    rad = np.deg2rad(yaw_degrees)
    dx, dz = -np.sin(rad), np.cos(rad)
    return (int(np.sign(dx)), 0) if abs(dx) > abs(dz) else (0, int(np.sign(dz)) or 1)


def local_view_from_voxels(block_name: np.ndarray, feet: int = 1) -> np.ndarray:
    """Voxel names indexed (x, y, z) ascending -> (rows z, cols x) grid; see module doc."""
    names = np.vectorize(item_name, otypes=[object])(np.asarray(block_name))
    grid = names[:, feet, :].copy()
    if feet > 0:
        floor = names[:, feet - 1, :]
        grid = np.where(grid == "air", floor, grid)
    grid = grid.T.astype(object)
    grid[grid.shape[0] // 2, grid.shape[1] // 2] = "player"
    return grid


def unlocked_by_change(
    before: Mapping[str, int], after: Mapping[str, int], crafted: Iterable[str] = ()
) -> set[str]:
    """Achievement names for the items whose count rose between two inventories."""
    crafted = {item_name(c) for c in crafted}
    return {
        f"{'craft' if item in crafted else 'collect'}_{item}"
        for item, n in after.items() if n > before.get(item, 0)
    }


def observation_from_minedojo(
    raw: Mapping[str, Any], step: int, achievements: frozenset[str] = frozenset()
) -> Observation:
    """MineDojo's observation dict -> :class:`Observation` (achievements are the caller's)."""
    life, loc = raw["life_stats"], raw["location_stats"]
    pos = np.asarray(loc["pos"], dtype=np.float64).reshape(-1)
    if "voxels" in raw:
        names = np.asarray(raw["voxels"]["block_name"])
        feet = min(1, names.shape[1] - 1)  # the adapter asks for y in -1..1: floor, feet, head
        view = local_view_from_voxels(names, feet=feet)
        standing_on = item_name(names[names.shape[0] // 2, max(feet - 1, 0), names.shape[2] // 2])
    else:  # an env made without voxels: only the player is known
        view, standing_on = np.array([["player"]], dtype=object), "unknown"
    equipment = raw.get("equipment", {})
    tools = raw.get("nearby_tools", {})
    extras: dict[str, object] = {
        "y": float(pos[1]), "pitch": _scalar(loc["pitch"]), "yaw": _scalar(loc["yaw"]),
        "biome_id": int(_scalar(loc["biome_id"])), "standing_on": standing_on,
        "life": _scalar(life["life"]), "food_level": _scalar(life["food"]),
        "saturation": _scalar(life["saturation"]), "oxygen": _scalar(life["oxygen"]),
        "armor": _scalar(life["armor"]), "xp": _scalar(life["xp"]),
        "sleeping": bool(_scalar(life["is_sleeping"])),
        "light_level": _scalar(loc["light_level"]), "raining": bool(_scalar(loc["is_raining"])),
        "can_see_sky": bool(_scalar(loc["can_see_sky"])),
        "equipped": item_name(equipment["name"][0]) if "name" in equipment else "unknown",
        "near_table": bool(_scalar(tools.get("table", False))),
        "near_furnace": bool(_scalar(tools.get("furnace", False))),
    }
    return Observation(
        frame=np.ascontiguousarray(np.asarray(raw["rgb"], dtype=np.uint8).transpose(1, 2, 0)),
        inventory=inventory_counts(raw["inventory"]),
        vitals=vitals_from_life_stats(life),
        local_view=view,
        position=(int(np.floor(pos[0])), int(np.floor(pos[2]))),
        facing=facing_from_yaw(_scalar(loc["yaw"])),
        achievements=frozenset(achievements),
        step=int(step),
        daylight=float(np.clip(_scalar(loc["sun_brightness"]), 0.0, 1.0)),
        extras=extras,
    )

"""Text renderings of an observation, for prompts and for people."""

from __future__ import annotations

import numpy as np

from envs.observation import Observation

# One character per name in the drawn grid; unknown names fall back to '?'.
GLYPHS = {
    "player": "@", "grass": ".", "sand": ":", "path": "_", "water": "~", "stone": "#",
    "tree": "T", "coal": "c", "iron": "i", "diamond": "D", "lava": "L", "table": "t",
    "furnace": "f", "cow": "C", "zombie": "Z", "skeleton": "S", "arrow": "a",
    "plant": "p", "ripe_plant": "P", "fence": "|", "void": " ",
    # Minecraft (MineDojo) blocks
    "air": " ", "dirt": ".", "log": "T", "log2": "T", "leaves": "*", "leaves2": "*",
    "cobblestone": "#", "crafting_table": "t", "bedrock": "B", "gravel": ":", "snow_layer": ".",
    "coal_ore": "c", "iron_ore": "i", "diamond_ore": "D", "flowing_water": "~", "flowing_lava": "L",
}
_DIRS = {(0, 1): "down", (0, -1): "up", (1, 0): "right", (-1, 0): "left"}
_BORING = {"grass", "sand", "path", "void", "player", "air", "dirt"}


def describe_offset(dx: int, dy: int) -> str:
    parts = []
    if dx:
        parts.append(f"{abs(dx)} {'right' if dx > 0 else 'left'}")
    if dy:
        parts.append(f"{abs(dy)} {'down' if dy > 0 else 'up'}")
    return " ".join(parts) or "here"


def nearest_things(obs: Observation) -> dict[str, tuple[int, int]]:
    """For each notable name in view, the (dx, dy) offset of its nearest cell."""
    view = obs.local_view
    pr, pc = obs.player_cell
    best: dict[str, tuple[int, int]] = {}
    for r, c in np.ndindex(view.shape):
        name = view[r, c]
        if name in _BORING:
            continue
        off = (c - pc, r - pr)
        if name not in best or abs(off[0]) + abs(off[1]) < sum(map(abs, best[name])):
            best[name] = off
    return best


def render_observation(obs: Observation, grid: bool = True) -> str:
    """A few lines: time, vitals, inventory, achievements, nearby things, the view."""
    vit = " ".join(f"{k} {int(v)}" for k, v in obs.vitals.items())
    inv = ", ".join(f"{k} {v}" for k, v in obs.inventory.items() if v) or "nothing"
    ach = ", ".join(sorted(obs.achievements)) or "none"
    near = nearest_things(obs)
    near_txt = "; ".join(
        f"{name} {describe_offset(*off)}"
        for name, off in sorted(near.items(), key=lambda kv: abs(kv[1][0]) + abs(kv[1][1]))
    ) or "nothing notable"
    facing = _DIRS.get(tuple(obs.facing), str(obs.facing))
    lines = [
        f"step {obs.step} | daylight {obs.daylight:.2f} | position {obs.position} facing {facing}",
        f"vitals: {vit}",
        f"inventory: {inv}",
        f"achievements: {ach}",
        f"nearby: {near_txt}",
    ]
    if grid:
        lines.append("view (@ is you):")
        lines.extend("  " + "".join(GLYPHS.get(n, "?") for n in row) for row in obs.local_view)
    return "\n".join(lines)

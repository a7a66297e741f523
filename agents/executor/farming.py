"""Farming: a sapling walled in with stone ripens into food (and eat_plant).

A plant is eaten by any cow, zombie or skeleton next to it, and only grows while the
player is within 18 cells (the game updates nothing farther away), for 300 updates.
So it is planted near a *home* (the first plant's cell), walled on every open side, and
the player spends its nights near home until the plant has been eaten once. While it
grows its walls are neither mined nor dug through (``WorldMap.plant_walls``); the
reflexes wall a side found open (``open_side``) and eat it once ripe (``harvest``).
"""

from __future__ import annotations

import numpy as np

from agents.executor.context import Skill, SkillContext, SkillFailure, go
from agents.executor.goals import Face, Stand
from agents.executor.navigation import DIRS
from agents.executor.shelter import sleep
from agents.executor.skills import collect, place, place_stone_at
from agents.executor.survival import RIPE_AFTER, for_steps, walkable_near
from agents.executor.worldmap import OBJ, WALK_NAMES, WALKABLE


def eat_plant(x: SkillContext, wait: int = 60) -> Skill:
    """Eat a ripe plant; plant (and wall in) a sapling near home if there is none of ours.

    Fails with ``not_ready`` while ours needs more than ``wait`` more updates, so the
    planner can do other things (and the nights near home grow it); when it is that
    close, the player waits beside it walled in.
    """
    w = x.world
    while True:
        if len(w.cells_of(objects=(OBJ["ripe_plant"],))):
            yield from go(x, Face(("ripe_plant",), k=2))
            yield x.a["do"], (x.a["do"],)
            continue
        mine = [c for c in w.own_plants if c in w.plants]
        if not mine:
            if x.inv("sapling") < 1:
                yield from collect(x, "sapling")
            yield from plant_sapling(x, protect=True)
            continue
        cell = min(mine, key=lambda c: abs(c[0] - x.pos[0]) + abs(c[1] - x.pos[1]))
        age = w.plants[cell]
        if age >= RIPE_AFTER:
            # ripe by our count: open a wall (dig) and face it; the view then shows it ripe
            yield from go(x, Face(cells=np.array([cell]), k=1))
            yield x.a["do"], (x.a["do"],)
            continue
        if age < RIPE_AFTER - wait:
            raise SkillFailure("not_ready", f"plant at {cell} grew {age}/{RIPE_AFTER}")
        if abs(cell[0] - x.pos[0]) + abs(cell[1] - x.pos[1]) > 10:
            yield from go(x, Stand(lambda cx, cy, c=cell: abs(cx - c[0]) + abs(cy - c[1]) <= 8,
                                   lambda _, c=cell: walkable_near(w, c, 6)))
            continue
        yield from for_steps(x, sleep(x), wait + 20,
                             lambda c=cell: c not in w.plants or w.plants[c] >= RIPE_AFTER)


def harvest(x: SkillContext, cell: tuple[int, int]) -> Skill:
    """Eat the ripe plant at ``cell`` (digging through its wall if need be)."""
    yield from go(x, Face(cells=np.array([cell]), k=1))
    yield x.a["do"], (x.a["do"],)


def open_side(x: SkillContext, radius: int = 3) -> tuple[int, int] | None:
    """The nearest side of a growing plant of ours, within ``radius``, that a cow or a
    zombie could step on (a wall never built, or dug since)."""
    px, py = x.pos
    sides = [c for c in x.world.plant_walls() if abs(c[0] - px) + abs(c[1] - py) <= radius
             and x.world.name_at(*c) in WALK_NAMES]
    return min(sides, key=lambda c: abs(c[0] - px) + abs(c[1] - py)) if sides else None


def go_home(x: SkillContext, steps: int = 80) -> Skill:
    """Before the night, go back near home while our plant still has to ripen there."""
    w = x.world
    home = w.home
    if home is None or "eat_plant" in x.obs.achievements or not any(c in w.plants for c in w.own_plants):
        return
    if abs(home[0] - x.pos[0]) + abs(home[1] - x.pos[1]) <= 8:
        return
    goal = Stand(lambda cx, cy: abs(cx - home[0]) + abs(cy - home[1]) <= 8, lambda _: walkable_near(w, home, 7))
    x.errand = "go home"
    yield from for_steps(x, go(x, goal), steps, lambda: False)


def plant_sapling(x: SkillContext, protect: bool) -> Skill:
    """Place a sapling on grass; with ``protect``, wall its free sides with stone."""
    placed = None
    for target in (_plant_spots(x) if protect else [])[:4]:
        try:
            yield from go(x, Face(("grass",), cells=np.array([target]), k=1))
        except SkillFailure:
            x.world.fail(target, x.obs.step)
            continue
        yield x.a["place_plant"], (x.a["place_plant"],)
        if x.world.name_at(*x.front()) == "plant":
            placed = x.front()
            break
    if placed is None:
        yield from place(x, "plant")
        placed = x.front()
    x.world.note_plant(placed, own=True)
    if x.world.home is None:
        x.world.home = placed
    if not protect:
        return
    stand = x.pos
    for dx, dy in DIRS:
        cell = (placed[0] + dx, placed[1] + dy)
        if cell != stand and x.world.name_at(*cell) in WALK_NAMES and x.inv("stone") > 0:
            try:
                yield from place_stone_at(x, cell)
            except SkillFailure:
                pass  # a wall short is still better than none
    if x.inv("stone") > 0 and x.world.mat[stand[1], stand[0]] in WALKABLE:  # (its name is "player" yet)
        yield from place_stone_at(x, stand)


def _plant_spots(x: SkillContext, radius: int = 6) -> list[tuple[int, int]]:
    """Grass cells near home (or us) whose sides are mostly walls already, best first."""
    w = x.world
    px, py = x.pos
    if w.home is not None and abs(w.home[0] - px) + abs(w.home[1] - py) <= 30:
        px, py = w.home
    found = []
    for cy in range(max(1, py - radius), min(w.size - 1, py + radius + 1)):
        for cx in range(max(1, px - radius), min(w.size - 1, px + radius + 1)):
            if w.name_at(cx, cy) != "grass" or (cx, cy) == x.pos or w.failed_at((cx, cy), x.obs.step):
                continue
            sides = [w.name_at(cx + dx, cy + dy) for dx, dy in DIRS]
            if "lava" in sides or "unknown" in sides:
                continue
            open_sides = sum(s in WALK_NAMES for s in sides)
            if open_sides == 0 or open_sides > x.inv("stone"):
                continue
            found.append(((open_sides, abs(cx - x.pos[0]) + abs(cy - x.pos[1])), (cx, cy)))
    return [cell for _, cell in sorted(found)]


def plant_before_night(x: SkillContext) -> Skill:
    """At dusk, while eat_plant is still to do: wall a sapling in next to where we sleep,
    so that the night's hours (the player close by) make it grow."""
    w = x.world
    if "eat_plant" in x.obs.achievements or any(c in w.plants for c in w.own_plants):
        return
    if x.inv("stone") < 4:
        return
    if x.inv("sapling") > 0:
        x.errand = "place plant"
        yield from for_steps(x, plant_sapling(x, protect=True), 60, lambda: False)

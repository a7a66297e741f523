"""Survival skills: drink, eat, fight (shelter and farming live next door).

Crafter facts these rely on (crafter/objects.py): a zombie hits for 2 (7 when the player
sleeps) from an adjacent cell, then waits 5 steps; a cow takes 3 damage to eat; a sword
sets the damage (1, 2, 3, 5). Cows wander slowly on grass and the game refills a grassy
area with one now and then, so a cow out of sight is looked for where one was seen, then
where grass has not been looked at for longest.
"""

from __future__ import annotations

import numpy as np

from agents.executor.context import Skill, SkillContext, SkillFailure, go
from agents.executor.goals import Face, Frontier, Patrol, Stand
from agents.executor.navigation import DIRS, MOVE_NAMES
from agents.executor.skills import collect, face_any
from agents.executor.worldmap import OBJ, RIPE, WALK_NAMES, WALKABLE

RIPE_AFTER = RIPE  # a plant is ripe after this many updates (steps with the player near)
HOSTILE = ("zombie", "skeleton")


def skeleton_near(x: SkillContext, radius: int = 4) -> bool:
    """A skeleton within ``radius`` (Manhattan) in view: it shoots from up to 5 cells."""
    view = x.obs.local_view
    rows, cols = view.shape
    for r in range(max(0, rows // 2 - radius), min(rows, rows // 2 + radius + 1)):
        for c in range(max(0, cols // 2 - radius), min(cols, cols // 2 + radius + 1)):
            if view[r, c] == "skeleton" and abs(r - rows // 2) + abs(c - cols // 2) <= radius:
                return True
    return False


_ARROW_FLIES = frozenset((*WALK_NAMES, "water", "lava"))  # Arrow.walkable


def incoming_arrow(x: SkillContext, reach: int = 3) -> tuple[int, int] | None:
    """The way an arrow within ``reach`` flies at the player, or None.

    An arrow flies one cell a step along a row or column and hits the first creature in
    its way. Its way is the world map's (from where it was a step ago) or, just shot,
    away from the skeleton behind it; the cells between it and the player must be ones
    it flies over.
    """
    w = x.world
    px, py = x.pos
    for (ax, ay), way in w.arrows.items():
        dist = abs(ax - px) + abs(ay - py)
        if (ax != px and ay != py) or not 0 < dist <= reach:
            continue
        d = (int(np.sign(px - ax)), int(np.sign(py - ay)))
        if way != d and not (way is None and w.name_at(ax - d[0], ay - d[1]) == "skeleton"):
            continue
        if all(w.name_at(ax + i * d[0], ay + i * d[1]) in _ARROW_FLIES for i in range(1, dist)):
            return d
    return None


def sidestep(x: SkillContext, d: tuple[int, int]) -> int | None:
    """A move out of the line of an arrow flying ``d``: to a free cell beside the player
    with no zombie next to it; else, facing the arrow with a free cell between, a stone
    placed there (a tunnel has no side to step to); else None."""
    for side in ((d[1], d[0]), (-d[1], -d[0])):
        if x.name_at_offset(*side) not in WALK_NAMES:
            continue
        if any(x.name_at_offset(side[0] + ex, side[1] + ey) == "zombie" for ex, ey in DIRS):
            continue
        return x.a[MOVE_NAMES[DIRS.index(side)]]
    if x.obs.facing == (-d[0], -d[1]) and x.inv("stone") and x.front_name() in WALK_NAMES:
        return x.a["place_stone"]
    return None


def dodge(move: int) -> Skill:
    """One step out of an arrow's way (a reflex; :func:`sidestep` chose the action)."""
    yield move, (move,)


def drink(x: SkillContext) -> Skill:
    """Face water and drink until stopped."""
    yield from collect(x, "drink")


def hunt(x: SkillContext, creature: str) -> Skill:
    """Chase the nearest ``creature`` (cow, zombie, skeleton) and hit it until stopped.

    Out of view, it goes back to where one was seen lately (cows wander slowly), else
    it alternates between unknown land (``Frontier``) and land not looked at for a while
    (``Patrol``), both on the creature's ground.
    """
    w = x.world
    code = OBJ[creature]
    ground = {"cow": ("grass",), "zombie": ("grass",), "skeleton": ("path",)}.get(creature, ())
    legs = 0
    while True:
        if len(w.cells_of(objects=(code,))):
            yield from face_any(x, (creature,), k=3)
            yield x.a["do"], (x.a["do"],)
            continue
        seen = w.nearest(w.recently_seen(creature, 150), 1)
        if len(seen) and abs(int(seen[0][0]) - x.pos[0]) + abs(int(seen[0][1]) - x.pos[1]) <= 24:
            cell = (int(seen[0][0]), int(seen[0][1]))
            try:
                yield from go(x, Stand(lambda cx, cy, c=cell: abs(cx - c[0]) + abs(cy - c[1]) <= 2
                                       or len(w.cells_of(objects=(code,))) > 0,
                                       lambda _, c=cell: _around(w, c)))
            except SkillFailure:
                pass
            w.seen[code].pop(cell, None)  # looked there: do not come back for it
            continue
        legs += 1
        start = x.obs.step
        goal = Patrol(ground) if legs % 2 == 0 and ground else Frontier(prefer=ground, min_dist=6)
        try:
            yield from go(x, goal)
        except SkillFailure:
            pass
        if x.obs.step == start and legs > 4:
            yield from face_any(x, (creature,), k=3)  # explores until one is known, or fails


def walkable_near(w, cell: tuple[int, int], radius: int) -> np.ndarray:
    x0, y0 = max(0, cell[0] - radius), max(0, cell[1] - radius)
    sub = np.isin(w.mat[y0:cell[1] + radius + 1, x0:cell[0] + radius + 1], list(WALKABLE))
    ys, xs = np.nonzero(sub)
    cells = np.stack([xs + x0, ys + y0], 1)
    keep = np.abs(cells[:, 0] - cell[0]) + np.abs(cells[:, 1] - cell[1]) <= radius
    return w.nearest(cells[keep], 12)


def _around(w, cell: tuple[int, int]) -> np.ndarray:
    cells = [(cell[0] + dx, cell[1] + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    return np.array([c for c in cells if w.inside(*c)], np.int64)


def ripe_plant_near(x: SkillContext, radius: int = 30) -> tuple[int, int] | None:
    """A plant of ours that has grown long enough (or one seen ripe), within ``radius``."""
    w = x.world
    seen = w.cells_of(objects=(OBJ["ripe_plant"],))
    cands = [tuple(c) for c in seen.tolist()]
    cands += [c for c in w.own_plants if w.plants.get(c, 0) >= RIPE_AFTER]
    cands = [c for c in cands if abs(c[0] - x.pos[0]) + abs(c[1] - x.pos[1]) <= radius]
    return min(cands, key=lambda c: abs(c[0] - x.pos[0]) + abs(c[1] - x.pos[1])) if cands else None


def eat_food(x: SkillContext) -> Skill:
    """Eat whatever is nearer: a ripe plant of ours (+4 food) or a cow (+6)."""
    while True:
        plant = ripe_plant_near(x)
        cow = x.world.nearest(x.world.cells_of(objects=(OBJ["cow"],)), 1)
        if plant is not None and (not len(cow) or abs(plant[0] - x.pos[0]) + abs(plant[1] - x.pos[1])
                                  <= abs(int(cow[0][0]) - x.pos[0]) + abs(int(cow[0][1]) - x.pos[1]) + 6):
            yield from go(x, Face(cells=np.array([plant]), k=1))
            yield x.a["do"], (x.a["do"],)
            continue
        if not (yield from for_steps(x, hunt(x, "cow"), 30, lambda: False)):
            raise SkillFailure("target_not_found", "no cow to be found")


def strike(x: SkillContext, dx: int, dy: int) -> Skill:
    """Turn to an adjacent creature and hit it (a reflex: the caller stops it)."""
    move = x.a[MOVE_NAMES[DIRS.index((dx, dy))]]
    while True:
        if x.obs.facing != (dx, dy):
            yield move, (move,)  # the cell is occupied, so this only turns
        else:
            yield x.a["do"], (x.a["do"],)


def for_steps(x: SkillContext, program: Skill, steps: int, stop) -> Skill:
    """Run ``program`` for at most ``steps`` steps or until ``stop()``; failures end it.

    Returns how many steps it took, so a caller looping on it can tell it got nowhere.
    """
    taken = 0
    try:
        for _ in range(steps):
            if stop():
                return taken
            act = next(program)
            taken += 1
            yield act
    except (StopIteration, SkillFailure):
        pass
    finally:
        program.close()
    return taken



"""Sleeping safely: a two-cell pocket walled in with stone.

Zombies walk on grass, sand and path only and hit from an adjacent cell (7 damage to a
sleeper). Moving toward a free cell steps into it, so the player can face a free cell
only by arriving next to it with a move in its direction. A sleeping spot is therefore
a two-cell pocket ``P, Q`` entered from ``E``: walk E -> P -> Q (digging stone if need
be), wall the far end, step back to P (now facing E) and wall E. Dug into a stone mass
it needs no stone at all (digging P and Q gives two).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from agents.executor.context import Skill, SkillContext, SkillFailure, go
from agents.executor.goals import Face
from agents.executor.navigation import DIRS, MOVE_NAMES
from agents.executor.skills import collect, explore, place_stone_at
from agents.executor.survival import drink, eat_food, for_steps
from agents.executor.worldmap import CODE, WALK_NAMES, WALKABLE
from envs.observation import VITAL_MAX

DAY = 300
# Walls stop zombies and arrows. Water stops zombies but arrows fly over it, so it is a
# wall only away from paths (skeletons walk on paths); a pocket next to water is a well.
_WALL = tuple(CODE[n] for n in ("stone", "tree", "coal", "iron", "diamond", "table", "furnace"))
SKELETON_RANGE = 6  # skeletons shoot from 5 cells (Manhattan); one more for the step it takes
_SKELETON_GROUND = frozenset(("path", "skeleton"))
_OPEN = frozenset(("grass", "sand", "path", "lava", "zombie", "cow", "skeleton", "arrow", "player"))


def sealed(x: SkillContext, limit: int = 6) -> bool:
    """No zombie or arrow can reach a cell next to the player (flood fill in the view).

    Water is open only with a skeleton's ground (path) within its range: arrows fly
    over water, but an arrow seen far off over a lake does not unseal a pocket by it.
    """
    view = x.obs.local_view
    rows, cols = view.shape
    start = (rows // 2, cols // 2)
    open_ = _OPEN | {"water"} if _SKELETON_GROUND & set(view[_in_range(rows, cols)].tolist()) else _OPEN
    seen, todo = {start}, [start]
    while todo:
        r, c = todo.pop()
        for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            n = (r + dr, c + dc)
            if n in seen:
                continue
            if not (0 <= n[0] < rows and 0 <= n[1] < cols):
                return False
            name = view[n]
            if name in ("zombie", "skeleton"):
                return False
            if name in open_:
                seen.add(n)
                todo.append(n)
                if len(seen) > limit:
                    return False
    return True


@lru_cache(maxsize=4)
def _in_range(rows: int, cols: int) -> np.ndarray:
    """Cells of a ``rows x cols`` view within a skeleton's range of its centre."""
    ys, xs = np.ogrid[:rows, :cols]
    return np.abs(ys - rows // 2) + np.abs(xs - cols // 2) <= SKELETON_RANGE


def _shift(a: np.ndarray, dx: int, dy: int, fill: bool = False) -> np.ndarray:
    """``out[y, x] = a[y + dy, x + dx]`` (``fill`` off the map)."""
    out = np.full_like(a, fill)
    h, w = a.shape
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[yd, xd] = a[ys, xs]
    return out


def find_pockets(x: SkillContext, k: int = 4, radius: int = 24) -> list[tuple[tuple[int, int], int, list]]:
    """Nearest sleeping pockets: (entry cell E, direction index, side cells to wall first).

    A pocket is E -> P -> Q in a straight line with walls beside P and Q. Walls that are
    missing (open ground) may be built first when the player carries the stone for
    them, plus one for the far end and one for E.
    """
    w = x.world
    mat = w.mat
    walk = np.isin(mat, list(WALKABLE))
    dig = np.isin(mat, [CODE[m] for m in x.minable() if m in ("stone", "coal")])
    x0, y0, x1, y1 = w.view
    free = walk.copy()
    free[y0:y1, x0:x1] &= w.obj[y0:y1, x0:x1] == 0
    lava = mat == CODE["lava"]
    safe = ~(lava | _shift(lava, 1, 0) | _shift(lava, -1, 0) | _shift(lava, 0, 1) | _shift(lava, 0, -1))
    opened = (free | dig) & safe
    water = mat == CODE["water"]
    skeleton_land = _spread(mat == CODE["path"], 6)
    wall = np.isin(mat, _WALL) | (water & ~skeleton_land)
    stones = x.inv("stone")
    found = []
    for k_dir, (dx, dy) in enumerate(DIRS):
        sides = _sides(k_dir)
        need = np.zeros(mat.shape, np.int64)
        # E - d must be free too: a walkable P is faced from E only by stepping in from there
        ok = (free & _shift(free, -dx, -dy) & _shift(opened, dx, dy) & _shift(opened, 2 * dx, 2 * dy)
              & _shift(wall | free, 3 * dx, 3 * dy))
        for sx, sy in sides:
            ok &= _shift(wall | free, sx, sy)
            need += ~_shift(wall, sx, sy)
        need += ~_shift(wall, 3 * dx, 3 * dy) + 1
        dug = _shift(dig, dx, dy).astype(np.int64) + _shift(dig, 2 * dx, 2 * dy)  # digging P, Q gives stone
        ok &= need <= stones + dug
        ys, xs = np.nonzero(ok)
        for cx, cy in zip(xs.tolist(), ys.tolist()):
            if abs(cx - x.pos[0]) + abs(cy - x.pos[1]) > radius or x.world.failed_at((cx, cy), x.obs.step):
                continue
            build = [(cx + sx, cy + sy) for sx, sy in sides if not wall[cy + sy, cx + sx]]
            well = any(water[cy + sy, cx + sx] for sx, sy in sides[:2])  # water beside P: drink inside
            found.append(((cx, cy), k_dir, build, well))
    px, py = x.pos
    if x.near_pocket is not None:
        # what is close by first, walls to build or not: a pocket seen from where the turn
        # to the night is taken (a student sees no further than its view)
        r = x.near_pocket
        found.sort(key=lambda e: (max(abs(e[0][0] - px), abs(e[0][1] - py)) > r,
                                  2 * len(e[2]) + abs(e[0][0] - px) + abs(e[0][1] - py) - 4 * e[3]))
        return [(e, k_dir, build) for e, k_dir, build, _ in found[:k]]
    grass = mat == CODE["grass"]
    # fewer walls to build first (each costs a trip around), then nearer, then away from
    # grass (zombies spawn there and wait outside at dawn)
    found.sort(key=lambda e: 6 * len(e[2]) + abs(e[0][0] - px) + abs(e[0][1] - py) - 12 * e[3]
               + int(grass[max(0, e[0][1] - 6):e[0][1] + 7, max(0, e[0][0] - 6):e[0][0] + 7].sum()) // 6)
    return [(e, k_dir, build) for e, k_dir, build, _ in found[:k]]


def _sides(k: int) -> list[tuple[int, int]]:
    """Offsets from the entry E of the cells beside P, then beside Q (pocket facing ``DIRS[k]``)."""
    dx, dy = DIRS[k]
    px, py = dy, dx  # perpendicular
    return [(dx + px, dy + py), (dx - px, dy - py), (2 * dx + px, 2 * dy + py), (2 * dx - px, 2 * dy - py)]


def _spread(mask: np.ndarray, r: int) -> np.ndarray:
    """Cells within ``r`` moves (up, down, left, right: a diamond, not a square) of a ``mask`` cell."""
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def build_shelter(x: SkillContext) -> Skill:
    """Walk into the nearest pocket, building its missing side walls first, and seal it."""
    pockets = find_pockets(x)
    if not pockets:
        raise SkillFailure("target_not_found", "no pocket to sleep in")
    last = None
    for (ex, ey), k, build in pockets[:3]:
        dx, dy = DIRS[k]
        p = (ex + dx, ey + dy)
        # the pocket's walls (beside P and Q, beyond Q), built or found: no route there may dig one
        walls = [(ex + sx, ey + sy) for sx, sy in _sides(k) + [(3 * dx, 3 * dy)]]
        try:
            for cell in build:
                yield from place_stone_at(x, cell, keep=walls)
            yield from go(x, Face(cells=np.array([p]), k=1, stand_ok=lambda ax, ay, e=(ex, ey): (ax, ay) == e,
                                  keep=walls))
            yield from _seal(x, (ex, ey), k)
            return
        except SkillFailure as err:
            x.world.fail((ex, ey), x.obs.step)  # do not walk back to it for a while
            last = err
    raise last or SkillFailure("path_blocked", "no pocket reachable")


def _seal(x: SkillContext, e: tuple[int, int], k: int) -> Skill:
    dx, dy = DIRS[k]
    fwd = x.a[MOVE_NAMES[k]]
    back = x.a[("move_right", "move_left", "move_down", "move_up")[k]]
    do = x.a["do"]
    for i in (1, 2):  # dig (if needed) and walk into P, then Q
        cell = (e[0] + i * dx, e[1] + i * dy)
        if x.pos != (cell[0] - dx, cell[1] - dy) or x.obs.facing != (dx, dy):
            raise SkillFailure("stagnation", "pushed out of the pocket")
        if x.world.name_at(*cell) not in WALK_NAMES:
            yield do, (do,)
        yield fwd, (fwd,)
        if x.pos != cell:
            raise SkillFailure("path_blocked", f"cannot enter {cell}")
    yield from _wall_front(x)
    yield back, (back,)
    yield from _wall_front(x)
    if not sealed(x):
        raise SkillFailure("missing_requirement" if x.inv("stone") < 1 else "path_blocked", "pocket not sealed")


def _wall_front(x: SkillContext, waits: int = 3) -> Skill:
    """Place stone on the faced cell if it is open ground. An arrow (or a creature) in
    the way is waited out for a few steps: it flies on or hits, and the cell is free."""
    for _ in range(waits + 1):
        front = x.front_name()
        if front in WALK_NAMES:
            yield x.a["place_stone"], (x.a["place_stone"],)
            return
        if front not in ("arrow", "zombie", "cow"):
            return  # a wall already, or water
        yield x.a["noop"], (x.a["noop"],)


def sleep(x: SkillContext) -> Skill:
    """Wall in, then sleep until the energy is full (Crafter wakes the player then).

    Each part is named in ``x.errand`` as it starts: "find stone", "collect stone",
    "build shelter" (walk into a pocket and wall it), then "sleep" once sealed."""
    fails = 0
    while True:
        if x.obs.extras.get("sleeping") or sealed(x):
            x.errand = "sleep"
            well = next((d for d in DIRS if x.name_at_offset(*d) == "water"), None)
            if well is not None and x.vital("drink") < 8 and not x.obs.extras.get("sleeping"):
                turn = x.a[MOVE_NAMES[DIRS.index(well)]]
                act = x.a["do"] if x.obs.facing == well else turn  # water blocks: the move only turns
                yield act, (act,)
                continue
            if not x.obs.extras.get("sleeping") and x.vital("energy") >= VITAL_MAX:
                # rested: Crafter ignores "sleep" until the energy drops, so wait with a noop.
                # The two do the same, but a "sleep" after a "sleep" reads as asleep in the
                # episodes and is not trained on: a student would never see the wait
                yield x.a["noop"], (x.a["noop"],)
                continue
            yield x.a["sleep"], (x.a["sleep"],)
            continue
        start = x.obs.step
        try:
            low = 2 if x.near_pocket is None else 4  # a pocket close by may need its walls built
            if x.inv("stone") < low and "stone" in x.minable() and x.world.known_near("stone", 12):
                x.errand = "collect stone"
                yield from _watch(x, lambda: for_steps(x, collect(x, "stone"), 30, lambda: x.inv("stone") >= 4))
            x.errand = "build shelter"
            yield from _watch(x, lambda: build_shelter(x))
        except SkillFailure:
            fails += 1
            if x.vital("energy") < 1 and not 150 <= x.obs.step % 300 < 285 and fails >= 3:
                x.errand = "sleep"
                yield x.a["sleep"], (x.a["sleep"],)  # by day, better a risky sleep than none
            else:
                x.errand = "find stone"
                yield from _watch(x, lambda: explore(x, ("stone",)))  # pockets are found in stone
        if x.obs.step == start:  # nothing worked this round: let a step pass, do not spin
            yield x.a["noop"], (x.a["noop"],)


def _watch(x: SkillContext, make: Callable[[], Skill]) -> Skill:
    """The program ``make`` returns; with ``x.replan_when_overruled`` made again from where
    the player is each time another's action was carried out instead of its own; with
    ``x.stop_when_sealed`` its actions until the player is sealed in, by them or otherwise.
    Where the teacher labels the states a student reaches (DAgger, ``steve distill play``),
    the student may wall itself in elsewhere than the pocket the teacher walks to, or stop
    short of the one it walks to (which the teacher, pushed out of it, gives up as failed);
    committed to its own, the teacher's labels would walk it out or away."""
    program = _afresh(x, make) if x.replan_when_overruled else make()
    return _until_sealed(x, program) if x.stop_when_sealed else program


def _afresh(x: SkillContext, make: Callable[[], Skill]) -> Skill:
    """The program ``make`` returns, made again after each step ``x.overruled``; ends when
    one runs to its end (a failure raises through, as the program's own would)."""
    while True:
        program = make()
        try:
            for act in program:
                yield act
                if x.overruled:
                    break
            else:
                return
        finally:
            program.close()


def _until_sealed(x: SkillContext, program: Skill) -> Skill:
    try:
        for act in program:
            yield act
            if sealed(x):
                return
    finally:
        program.close()


def night(x: SkillContext, before: Skill | None = None) -> Skill:
    """Evening routine: drink and eat if water or food is near, ``before`` (e.g. going
    home), then wall in and sleep."""
    w = x.world
    dusk = x.obs.step % DAY < 150  # later, going out for water or food meets zombies
    if dusk and x.vital("drink") < 7 and w.known_near("water", 20):
        x.errand = "drink water"
        yield from for_steps(x, drink(x), 40, lambda: x.vital("drink") >= 9)
    if dusk and x.vital("food") < 8:
        x.errand = "eat cow"
        yield from for_steps(x, eat_food(x), 60, lambda: x.vital("food") >= 8)
    if before is not None:
        yield from before
    yield from sleep(x)



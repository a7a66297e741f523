"""Skills as parameterised programs: collect, place, craft, explore.

Each skill is a generator over a :class:`SkillContext` that yields one action (with the
equally good alternatives) per env step and loops until the executor stops it (the
subgoal's check holds, the budget is spent) or raises :class:`SkillFailure`.
Survival skills (eat, drink, fight, sleep) live in :mod:`agents.executor.survival`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from agents.executor.context import Skill, SkillContext, SkillFailure, go
from agents.executor.goals import Face, Frontier, Stand
from agents.executor.worldmap import CODE, WALK_NAMES, WALKABLE
from agents.techtree import STATIONS

# Where to look for a thing that is not on the map yet (materials near which it lies).
EXPLORE_NEAR = {
    "tree": ("tree", "grass"), "grass": ("grass",), "water": ("water", "sand"), "sand": ("sand",),
    "stone": ("stone",), "coal": ("stone", "coal"), "iron": ("path", "iron", "lava"),
    "diamond": ("lava", "diamond", "path"), "cow": ("grass",), "zombie": ("grass",),
    "skeleton": ("path",), "table": (), "furnace": (),
}
MAX_HELD = 9  # Crafter's inventory holds at most 9 of a kind: a `do` then gives nothing


def explore(x: SkillContext, near: tuple[str, ...] = (), legs: int = 1) -> Skill:
    """Walk to ``legs`` frontier cells, preferring ones close to ``near`` materials."""
    for _ in range(legs):
        try:
            yield from go(x, Frontier(prefer=near))
        except SkillFailure as err:
            if err.reason == "target_not_found":
                yield from go(x, Frontier(prefer=near, min_dist=0))  # only near frontier is left
            elif err.reason != "stagnation":
                raise


def wander(x: SkillContext) -> Skill:
    """Explore for as long as the executor lets it (nothing particular to find)."""
    while True:
        yield from explore(x)
        yield x.a["noop"], (x.a["noop"],)  # the map may be fully known: let time pass


def explore_until(x: SkillContext, names: tuple[str, ...], max_legs: int = 200) -> Skill:
    """Explore until a cell (or creature) named in ``names`` is on the map."""
    mats = tuple(CODE[n] for n in names if CODE[n] < 32)
    objs = tuple(CODE[n] - 32 for n in names if CODE[n] >= 32)
    near = tuple(dict.fromkeys(m for n in names for m in EXPLORE_NEAR.get(n, ())))
    for _ in range(max_legs):
        if len(x.world.cells_of(mats, objs)):
            return
        yield from explore(x, near)
    raise SkillFailure("target_not_found", f"no {'/'.join(names)} after exploring")


def face_any(x: SkillContext, names: tuple[str, ...], k: int = 8) -> Skill:
    """Face the nearest reachable cell named in ``names``, exploring until one is known."""
    for _ in range(60):
        start = x.obs.step
        yield from explore_until(x, names)
        try:
            yield from go(x, Face(names, k=k))
            return
        except SkillFailure as err:
            if err.reason not in ("path_blocked", "stagnation"):
                raise
            yield from explore(x, tuple(dict.fromkeys(m for n in names for m in EXPLORE_NEAR.get(n, ()))))
        if x.obs.step == start:  # neither walking nor exploring moved us: give up
            raise SkillFailure("path_blocked", f"cannot reach any {'/'.join(names)}")
    raise SkillFailure("path_blocked", f"cannot reach any {'/'.join(names)}")


def collect(x: SkillContext, item: str) -> Skill:
    """Face the item's source (``wood`` <- ``tree``) and ``do`` until stopped."""
    src = x.tree.source(item) or item
    probabilistic = src in ("grass", "water")  # saplings come 1 in 10; drink is a vital
    misses = 0
    while True:
        yield from face_any(x, (src,))
        before, step = x.inv(item), x.obs.step
        yield x.a["do"], (x.a["do"],)
        if (probabilistic or x.front_name() != src or x.inv(item) > before or before >= MAX_HELD
                or x.obs.step != step + 1):  # a reflex acted in between (a stone placed in front, ...)
            misses = 0
            continue
        misses += 1  # the source is still there and nothing came of the `do`
        if misses >= 2:
            x.unminable[src] = x.obs.step
            raise SkillFailure("missing_requirement", f"do on {src} gave no {item}")


def _stations_near(x: SkillContext, stations: tuple[str, ...]) -> np.ndarray:
    """Boolean map of cells with every station within 1 cell (Chebyshev)."""
    w = x.world
    ok = np.ones_like(w.mat, bool)
    for st in stations:
        m = w.mat == CODE[st]
        grown = m.copy()
        grown[1:, :] |= m[:-1, :]
        grown[:-1, :] |= m[1:, :]
        g2 = grown.copy()
        g2[:, 1:] |= grown[:, :-1]
        g2[:, :-1] |= grown[:, 1:]
        ok &= g2
    return ok


def go_near_stations(x: SkillContext, stations: tuple[str, ...], k: int = 10) -> Skill:
    """Stand where every station is within 1 cell (where crafting works)."""
    if not stations:
        return
    mask_cache: dict[str, np.ndarray] = {}

    def mask() -> np.ndarray:
        if "m" not in mask_cache:
            mask_cache["m"] = _stations_near(x, stations) & np.isin(x.world.mat, list(WALKABLE))
        return mask_cache["m"]

    def ok(cx: int, cy: int) -> bool:
        return all(any(x.world.name_at(cx + dx, cy + dy) == st for dx in (-1, 0, 1) for dy in (-1, 0, 1))
                   for st in stations)

    def candidates(_: SkillContext) -> np.ndarray:
        ys, xs = np.nonzero(mask())
        return x.world.nearest(np.stack([xs, ys], 1), k)

    if ok(*x.pos):
        return
    if not mask().any():
        raise SkillFailure("missing_requirement", f"no {' and '.join(stations)} known")
    yield from go(x, Stand(ok, candidates))


def craft(x: SkillContext, item: str) -> Skill:
    """Go where the item's stations are near, then ``make_<item>``."""
    action = x.a.get(f"make_{item}")
    if action is None:
        raise SkillFailure("missing_requirement", f"no action makes {item}")
    stations = x.tree.stations_for(item)
    try:
        yield from go_near_stations(x, stations)
    except SkillFailure:
        if len(stations) < 2:
            raise
        # the stations exist but not side by side: put the missing one next to the other
        for st in stations:
            r = x.tree.recipe(st, "place")
            if r is not None and all(x.inv(u) >= c for u, c in r.uses.items()):
                yield from place(x, st)
                break
        yield from go_near_stations(x, stations)
    before = x.inv(item)
    yield action, (action,)
    if x.inv(item) <= before:  # at the stations the tree names, with what it says is used
        raise SkillFailure("missing_requirement", f"make_{item} did nothing here")


def place(x: SkillContext, thing: str, reuse: bool = False) -> Skill:
    """Place ``thing`` in front of the player; ``reuse``: a known station near will do."""
    action = x.a.get(f"place_{thing}")
    if action is None:
        raise SkillFailure("missing_requirement", f"no action places {thing}")
    if reuse and thing in STATIONS and _known_near(x, thing, 14):
        try:
            yield from go_near_stations(x, (thing,))
            return
        except SkillFailure:
            pass
    r = x.tree.recipe(thing, "place")
    where = tuple(n for n in (r.where if r and r.where else WALK_NAMES) if n in WALK_NAMES) or WALK_NAMES
    stand_ok: Callable[[int, int], bool] | None = None
    cells = None
    others = [s for s in STATIONS if s != thing and thing in STATIONS]
    if others and _known_near(x, others[0], 16):
        # a furnace goes next to the table, so that one spot reaches both (iron tools)
        near = _stations_near(x, tuple(others))

        def near_both(cx: int, cy: int) -> bool:
            return bool(near[cy, cx])
        stand_ok, cells = near_both, _cells_around(x, others[0], where)
    for _ in range(4):
        if not (x.front_name() in where and (stand_ok is None or stand_ok(*x.pos))):
            yield from go(x, Face(where, cells=cells, k=12, stand_ok=stand_ok))
        fx, fy = x.front()
        facing = x.front_name()
        yield action, (action,)
        if x.world.name_at(fx, fy) == thing:
            return
        if r is not None and any(x.inv(u) < c for u, c in r.uses.items()):
            raise SkillFailure("missing_requirement", f"place_{thing} needs {dict(r.uses)}")
        if r is None or facing in where:  # the cell would take it: something else was missing
            raise SkillFailure("missing_requirement", f"place_{thing} did nothing facing {facing}")
    raise SkillFailure("stagnation", f"place_{thing} kept failing")


def _cells_around(x: SkillContext, station: str, names: tuple[str, ...], reach: int = 2,
                  radius: int = 16) -> np.ndarray:
    """Cells named ``names`` within ``reach`` cells of a known ``station`` near the player."""
    w = x.world
    mask = np.isin(w.mat, [CODE[n] for n in names])
    st = w.mat == CODE[station]
    near = np.zeros_like(st)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            near |= np.roll(np.roll(st, dy, 0), dx, 1)  # wraps at the edge: stand_ok still checks
    x0, y0, x1, y1 = w.view
    free = np.ones_like(st)
    free[y0:y1, x0:x1] = w.obj[y0:y1, x0:x1] == 0
    ys, xs = np.nonzero(mask & near & free)
    return w.nearest(np.stack([xs, ys], 1), 24)[:24] if len(xs) else np.zeros((0, 2), np.int64)


def _known_near(x: SkillContext, thing: str, radius: int) -> bool:
    cells = x.world.cells_of((CODE[thing],))
    if not len(cells):
        return False
    px, py = x.pos
    return bool((np.abs(cells[:, 0] - px) + np.abs(cells[:, 1] - py) <= radius).any())


def place_stone_at(x: SkillContext, cell: tuple[int, int], keep: Iterable[tuple[int, int]] = ()) -> Skill:
    """Put a stone on one given cell (walls around a plant or a bed), not digging ``keep``."""
    yield from go(x, Face(cells=np.array([cell]), k=1, keep=keep))
    if x.front() != cell:
        raise SkillFailure("path_blocked", f"cannot face {cell}")
    yield x.a["place_stone"], (x.a["place_stone"],)
    if x.world.name_at(*cell) != "stone":
        raise SkillFailure("missing_requirement" if x.inv("stone") < 1 else "path_blocked",
                           f"no stone placed at {cell}")


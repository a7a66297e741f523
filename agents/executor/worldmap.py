"""What this episode has seen: a grid of material codes and the creatures in view.

Updated from ``obs.local_view`` and ``obs.position`` once per step with a few numpy
operations (tens of microseconds): no per-step search, no per-cell Python loop.
Arrays are indexed ``[y, x]``; a flat cell index is ``y * size + x``.
"""

from __future__ import annotations

import numpy as np

from envs import Observation
from envs.crafter_env import PLANT_RIPE

MATERIALS = ("unknown", "void", "grass", "sand", "path", "water", "stone", "tree", "lava",
             "coal", "iron", "diamond", "table", "furnace")
OBJECTS = ("player", "cow", "zombie", "skeleton", "arrow", "plant", "ripe_plant")
OBJ_BASE = 32
DIRS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # left, right, up, down: Crafter's move order
RIPE = PLANT_RIPE  # a plant is ripe after this many updates (Plant.ripe)
# codes of objects in a local view are OBJ_BASE + index in OBJECTS
CODE: dict[str, int] = {name: i for i, name in enumerate(MATERIALS)}
CODE.update({name: OBJ_BASE + i + 1 for i, name in enumerate(OBJECTS)})
OBJ: dict[str, int] = {name: i + 1 for i, name in enumerate(OBJECTS)}  # obj layer codes
UNKNOWN, VOID = CODE["unknown"], CODE["void"]
WALK_NAMES = ("grass", "sand", "path")  # what the player (and a zombie or cow) can step on
WALKABLE = frozenset(CODE[n] for n in WALK_NAMES)
# The material under an object, when the cell was never seen bare.
_UNDER = np.zeros(OBJ_BASE + len(OBJECTS) + 1, np.int8)
_UNDER[:OBJ_BASE] = np.arange(OBJ_BASE)
for _name, _mat in (("player", "grass"), ("cow", "grass"), ("zombie", "grass"), ("skeleton", "path"),
                    ("arrow", "path"), ("plant", "grass"), ("ripe_plant", "grass")):
    _UNDER[CODE[_name]] = CODE[_mat]


def code_of(name: str) -> int:
    return CODE.get(name, UNKNOWN)


class WorldMap:
    """Materials seen so far (``mat``), objects in view (``obj``), and a few counters.

    ``sightings[c]`` counts cells that turned into code ``c`` since the episode began, so
    a navigator can tell cheaply whether something new of a kind it wants came into view.
    """

    def __init__(self, size: int = 64, forget_after: int | None = None):
        self.size = size
        self.forget_after = forget_after  # steps a cell out of view is remembered (None: always)
        self.mat = np.zeros((size, size), np.int8)
        self.obj = np.zeros((size, size), np.int8)
        self.seen_at = np.full((size, size), -(10 ** 6), np.int32)  # step each cell was last in view
        self.sightings = np.zeros(OBJ_BASE, np.int64)
        self.view = (0, 0, 0, 0)  # x0, y0, x1, y1 of the cells in view (clipped)
        self.position = (size // 2, size // 2)
        self.step = -1
        self.plants: dict[tuple[int, int], int] = {}  # plant cell -> steps it grew near us
        self.own_plants: set[tuple[int, int]] = set()
        self.home: tuple[int, int] | None = None  # where our first plant grows
        self.avoid: set[int] = set()  # cells a guardrail or a failure told us to keep out of
        # where cows and skeletons were last seen (they wander off slowly): cell -> step
        self.seen: dict[int, dict[tuple[int, int], int]] = {OBJ["cow"]: {}, OBJ["skeleton"]: {}}
        # arrows in view -> the way each flies, read from where it was a step before (None:
        # not seen then, e.g. just shot); routes and the dodge reflex both read it
        self.arrows: dict[tuple[int, int], tuple[int, int] | None] = {}
        self._failed: dict[tuple[int, int], int] = {}  # cell -> step a skill gave up on it
        self._get = CODE.get

    def reset(self) -> None:
        self.__init__(self.size, self.forget_after)

    def index(self, x: int, y: int) -> int:
        return y * self.size + x

    def inside(self, x: int, y: int) -> bool:
        return 0 <= x < self.size and 0 <= y < self.size

    def update(self, obs: Observation) -> None:
        """Write what ``obs`` shows into the map (idempotent for the same step)."""
        if obs.step == self.step and obs.position == self.position:
            return
        view = obs.local_view
        rows, cols = view.shape
        px, py = obs.position
        get = self._get
        codes = np.array([get(n, 0) for n in view.ravel().tolist()], np.int8).reshape(rows, cols)
        x0, y0 = px - cols // 2, py - rows // 2
        ax0, ay0 = max(x0, 0), max(y0, 0)
        ax1, ay1 = min(x0 + cols, self.size), min(y0 + rows, self.size)
        sub = codes[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]
        old = self.mat[ay0:ay1, ax0:ax1]
        is_obj = sub >= OBJ_BASE
        before, self.arrows = self.arrows, {}
        if is_obj.any():
            under = np.where(old > VOID, old, _UNDER[sub])
            new = np.where(is_obj, under, sub)
            objs = np.where(is_obj, sub - OBJ_BASE, 0)
            self.obj[ay0:ay1, ax0:ax1] = objs
            for code, seen in self.seen.items():
                for y, x in zip(*np.nonzero(objs == code)):
                    seen[(int(x) + ax0, int(y) + ay0)] = obs.step
            arrows = objs == OBJ["arrow"]
            if arrows.any():
                for y, x in zip(*np.nonzero(arrows)):
                    cell = (int(x) + ax0, int(y) + ay0)
                    self.arrows[cell] = next(((dx, dy) for dx, dy in DIRS
                                              if (cell[0] - dx, cell[1] - dy) in before), None)
            plants = (objs == OBJ["plant"]) | (objs == OBJ["ripe_plant"])
            if plants.any():
                for y, x in zip(*np.nonzero(plants)):
                    cell = (int(x) + ax0, int(y) + ay0)
                    age = self.plants.setdefault(cell, 0)
                    if objs[y, x] == OBJ["ripe_plant"]:
                        self.plants[cell] = max(age, RIPE)
                    elif age > RIPE + 5:  # shown unripe long after it should be: eaten, regrowing
                        self.plants[cell] = 0
        else:
            new = sub
            self.obj[ay0:ay1, ax0:ax1] = 0
        changed = new != old
        if changed.any():
            np.add.at(self.sightings, new[changed], 1)
            self.mat[ay0:ay1, ax0:ax1] = new
        self.view = (ax0, ay0, ax1, ay1)
        self.seen_at[ay0:ay1, ax0:ax1] = obs.step
        for code, seen in self.seen.items():
            if seen:
                gone = [c for c, t in seen.items() if t != obs.step and ax0 <= c[0] < ax1 and ay0 <= c[1] < ay1]
                for c in gone:
                    del seen[c]
        if self.forget_after is not None:
            self._forget(obs.step - self.forget_after)
        self.position = (px, py)
        self.step = obs.step
        if self.plants:
            self._grow_plants(px, py)

    def _forget(self, before: int) -> None:
        """Cells last in view before step ``before`` are unknown again, and so are the
        cows and skeletons last seen then (a memory as short as a student's)."""
        stale = self.seen_at < before
        self.mat[stale] = UNKNOWN
        self.obj[stale] = 0
        for seen in self.seen.values():
            for cell in [c for c, t in seen.items() if t < before]:
                del seen[cell]

    # -- plants (eat_plant needs one that ripened near us) -------------------------------
    def note_plant(self, cell: tuple[int, int], own: bool = False) -> None:
        self.plants.setdefault(cell, 0)
        if own:
            self.own_plants.add(cell)

    def _grow_plants(self, px: int, py: int) -> None:
        # A plant only updates (grows) while the player is within 18 cells (L1) of it.
        dead = []
        for (x, y), age in self.plants.items():
            if abs(x - px) + abs(y - py) < 18:
                self.plants[(x, y)] = age + 1
            if self.in_view(x, y) and self.obj[y, x] not in (OBJ["plant"], OBJ["ripe_plant"]):
                dead.append((x, y))
        for cell in dead:
            del self.plants[cell]
            self.own_plants.discard(cell)

    def plant_walls(self) -> set[tuple[int, int]]:
        """The cells beside our plants that still grow: what keeps cows and zombies off them.

        A plant dies the first update a cow, zombie or skeleton stands next to it, so a
        wall here is not mined and a route does not dig through it (once the plant is
        ripe, eating it opens one).
        """
        return {(cx + dx, cy + dy) for cx, cy in self.own_plants if self.plants.get((cx, cy), RIPE) < RIPE
                for dx, dy in DIRS}

    # -- queries -------------------------------------------------------------------------
    def in_view(self, x: int, y: int) -> bool:
        x0, y0, x1, y1 = self.view
        return x0 <= x < x1 and y0 <= y < y1

    def name_at(self, x: int, y: int) -> str:
        """The object (when in view) or the material at (x, y); ``unknown`` if never seen."""
        if not self.inside(x, y):
            return "void"
        if self.in_view(x, y) and self.obj[y, x]:
            return OBJECTS[self.obj[y, x] - 1]
        return MATERIALS[self.mat[y, x]]

    def cells_of(self, materials: tuple[int, ...] = (), objects: tuple[int, ...] = ()) -> np.ndarray:
        """``(n, 2)`` array of (x, y) holding one of the materials, or objects in view."""
        found = []
        if materials:
            mask = self.mat == materials[0] if len(materials) == 1 else np.isin(self.mat, materials)
            if objects:
                mask &= self.obj == 0
            ys, xs = np.nonzero(mask)
            found.append(np.stack([xs, ys], 1))
        if objects:
            x0, y0, x1, y1 = self.view
            win = self.obj[y0:y1, x0:x1]
            ys, xs = np.nonzero(np.isin(win, objects))
            found.append(np.stack([xs + x0, ys + y0], 1))
        if not found:
            return np.zeros((0, 2), np.int64)
        return np.concatenate(found).astype(np.int64)

    def fail(self, cell: tuple[int, int], step: int) -> None:
        """Remember that a skill gave up on ``cell`` (a pocket, a spot) at ``step``."""
        self._failed[cell] = step

    def failed_at(self, cell: tuple[int, int], step: int, forget_after: int = 300) -> bool:
        t = self._failed.get(cell)
        return t is not None and step - t < forget_after

    def recently_seen(self, name: str, max_age: int = 200) -> np.ndarray:
        """Cells (out of view now) where a ``name`` (cow, skeleton) was seen lately."""
        seen = self.seen.get(OBJ.get(name, -1), {})
        cells = [c for c, t in seen.items() if self.step - t <= max_age]
        return np.array(cells, np.int64).reshape(-1, 2)

    def known_near(self, name: str, radius: int) -> bool:
        """A cell of material ``name`` is known within ``radius`` cells (Manhattan)."""
        code = CODE.get(name)
        if code is None or code >= OBJ_BASE:
            return False
        px, py = self.position
        x0, y0 = max(px - radius, 0), max(py - radius, 0)
        ys, xs = np.nonzero(self.mat[y0:py + radius + 1, x0:px + radius + 1] == code)
        return bool((np.abs(xs + x0 - px) + np.abs(ys + y0 - py) <= radius).any())

    def nearest(self, cells: np.ndarray, k: int, min_dist: int = 0) -> np.ndarray:
        """The ``k`` cells nearest to the player (Manhattan), at least ``min_dist`` away."""
        if len(cells) == 0:
            return cells
        px, py = self.position
        d = np.abs(cells[:, 0] - px) + np.abs(cells[:, 1] - py)
        if min_dist:
            keep = d >= min_dist
            if keep.any():
                cells, d = cells[keep], d[keep]
        if len(cells) > k:
            part = np.argpartition(d, k)[:k]
            cells, d = cells[part], d[part]
        return cells[np.argsort(d, kind="stable")]

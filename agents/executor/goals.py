"""Navigation goals: where ``go`` takes the player, as seeds for the backward search.

Each goal says when it is reached (``done``), which cells (with a start cost and a
final move) the search grows from (``seeds``), and when a route to it went stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from agents.executor.context import SkillContext
from agents.executor.navigation import INF, Route
from agents.executor.worldmap import CODE, OBJ, UNKNOWN


class Goal:
    """Where ``go`` should take the player; subclasses say when it is reached."""

    max_replans = 40

    def done(self, x: SkillContext) -> bool:
        raise NotImplementedError

    def seeds(self, x: SkillContext, enter: list[int]) -> dict[int, tuple[int, int]]:
        raise NotImplementedError

    def stale(self, x: SkillContext, route: Route) -> bool:
        return False


class Face(Goal):
    """Stand next to a cell of some kind (or one of given cells), facing it."""

    def __init__(self, names: tuple[str, ...] = (), cells: np.ndarray | None = None, k: int = 8,
                 stand_ok: Callable[[int, int], bool] | None = None, keep: Iterable[tuple[int, int]] = ()):
        self.names = frozenset(names)
        self.keep = tuple(keep)  # cells the route must not dig or walk through (walls just built)
        self.mats = tuple(CODE[n] for n in names if CODE[n] < 32)
        self.objs = tuple(OBJ[n] for n in names if n in OBJ)
        self.fixed = cells
        self.k, self.stand_ok = k, stand_ok
        self.targets: list[tuple[int, int]] = []

    def done(self, x: SkillContext) -> bool:
        if self.stand_ok is not None and not self.stand_ok(*x.pos):
            return False
        if self.fixed is not None:
            return x.front() in self.targets and (not self.names or x.front_name() in self.names)
        return x.front_name() in self.names

    def seeds(self, x: SkillContext, enter: list[int]) -> dict[int, tuple[int, int]]:
        w = x.world
        if self.fixed is not None:
            cells = self.fixed
        else:
            cells = w.cells_of(self.mats, self.objs)
            walls = w.plant_walls()
            if walls and len(cells):  # mining (or cutting) a plant's wall lets the cows in
                keep = np.ones(len(cells), bool)
                for cx, cy in walls:
                    keep &= (cells[:, 0] != cx) | (cells[:, 1] != cy)
                cells = cells[keep]
            cells = w.nearest(cells, self.k)
        self.targets = [tuple(c) for c in np.asarray(cells).tolist()]
        for cx, cy in self.keep:
            if w.inside(cx, cy):
                enter[w.index(cx, cy)] = INF
        return x.nav.face_seeds(np.asarray(cells).reshape(-1, 2), enter, self.stand_ok)

    def stale(self, x: SkillContext, route: Route) -> bool:
        w = x.world
        if self.objs:
            if route.age >= 6:
                return True
            return any(w.obj[y, tx] not in self.objs for tx, y in self.targets if w.in_view(tx, y))
        if self.mats and any(w.mat[y, tx] not in self.mats for tx, y in self.targets):
            return True
        return bool(self.mats and route.age >= 3 and any(
            w.sightings[m] != route.sightings[m] for m in self.mats))


class Stand(Goal):
    """Reach any cell where ``ok(x, y)`` holds, among ``candidates`` (an (n, 2) array)."""

    def __init__(self, ok: Callable[[int, int], bool], candidates: Callable[[SkillContext], np.ndarray]):
        self.ok, self.candidates = ok, candidates

    def done(self, x: SkillContext) -> bool:
        return self.ok(*x.pos)

    def seeds(self, x: SkillContext, enter: list[int]) -> dict[int, tuple[int, int]]:
        return x.nav.stand_seeds(self.candidates(x))


class Frontier(Goal):
    """Go to the edge of the known map where the most unknown cells would come into view.

    Candidates are known, enterable cells next to unknown ones, ranked by how many
    unknown cells a view from there would reveal per step of (Manhattan) distance; the
    best ``k`` become seeds whose cost grows as their gain shrinks, so the search trades
    a longer walk for a bigger reveal. ``prefer`` materials nearby lower the cost more.
    """

    max_replans = 6

    def __init__(self, prefer: tuple[str, ...] = (), min_dist: int = 4, k: int = 12, penalty: int = 12):
        self.prefer = tuple(CODE[n] for n in prefer)
        self.min_dist, self.k, self.penalty = min_dist, k, penalty
        self.cells: set[tuple[int, int]] = set()

    def done(self, x: SkillContext) -> bool:
        return x.pos in self.cells

    def seeds(self, x: SkillContext, enter: list[int]) -> dict[int, tuple[int, int]]:
        w = x.world
        size = w.size
        standable = np.asarray(enter, np.int64).reshape(size, size) < INF
        unknown = w.mat == UNKNOWN
        edge = np.zeros_like(unknown)
        edge[1:, :] |= unknown[:-1, :]
        edge[:-1, :] |= unknown[1:, :]
        edge[:, 1:] |= unknown[:, :-1]
        edge[:, :-1] |= unknown[:, 1:]
        edge &= standable
        ys, xs = np.nonzero(edge)
        if not len(xs):
            return {}
        gain = _window_sum(unknown, 4, 3)[ys, xs]  # unknown cells in a 9 x 7 view there
        px, py = x.pos
        dist = np.abs(xs - px) + np.abs(ys - py)
        ok = dist >= self.min_dist
        if ok.any():
            xs, ys, gain, dist = xs[ok], ys[ok], gain[ok], dist[ok]
        score = gain / (dist + 6.0)
        top = np.argsort(-score, kind="stable")[:self.k]
        xs, ys, gain = xs[top], ys[top], gain[top]
        costs = (gain.max() - gain) // 4
        if self.prefer:
            near = _window_sum(np.isin(w.mat, self.prefer), 2, 2)[ys, xs] > 0
            costs = costs + np.where(near, 0, self.penalty)
        cells = np.stack([xs, ys], 1)
        self.cells = {tuple(c) for c in cells.tolist()}
        return x.nav.stand_seeds(cells, costs.tolist())

    def stale(self, x: SkillContext, route: Route) -> bool:
        return route.age >= 40


def _window_sum(mask: np.ndarray, rx: int, ry: int) -> np.ndarray:
    """For every cell, how many ``mask`` cells lie within ``rx`` columns and ``ry`` rows."""
    h, w = mask.shape
    ii = np.zeros((h + 1, w + 1), np.int32)
    ii[1:, 1:] = mask.astype(np.int32).cumsum(0).cumsum(1)
    y0 = np.clip(np.arange(h) - ry, 0, h)[:, None]
    y1 = np.clip(np.arange(h) + ry + 1, 0, h)[:, None]
    x0 = np.clip(np.arange(w) - rx, 0, w)[None, :]
    x1 = np.clip(np.arange(w) + rx + 1, 0, w)[None, :]
    return ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]


class Patrol(Goal):
    """Go to the area (a Crafter chunk, 12 x 12) most likely to hold a creature now.

    Cows live on grass and wander in and out of what the player saw; the game refills a
    grassy chunk with a cow now and then. Each chunk scores its cells of ``names``
    (grass) times how long ago it was last looked at, over the distance to it; the
    goal is that chunk's cells of ``names`` nearest its centre.
    """

    max_replans = 6

    def __init__(self, names: tuple[str, ...], stale: int = 120, chunk: int = 12, k: int = 6):
        self.mats = tuple(CODE[n] for n in names)
        self.age, self.chunk, self.k = stale, chunk, k
        self.cells: set[tuple[int, int]] = set()

    def done(self, x: SkillContext) -> bool:
        return x.pos in self.cells

    def seeds(self, x: SkillContext, enter: list[int]) -> dict[int, tuple[int, int]]:
        w = x.world
        c = self.chunk
        px, py = x.pos
        liked = np.isin(w.mat, self.mats)
        best, best_score = None, 0.0
        for cy in range(0, w.size, c):
            for cx in range(0, w.size, c):
                cells = liked[cy:cy + c, cx:cx + c]
                n = int(cells.sum())
                if n < 10:
                    continue
                age = x.obs.step - int(np.median(w.seen_at[cy:cy + c, cx:cx + c][cells]))
                if age < self.age:
                    continue
                dist = abs(cx + c // 2 - px) + abs(cy + c // 2 - py)
                score = n * min(age, 600) / (dist + 12)
                if score > best_score:
                    best, best_score = (cx, cy), score
        if best is None:
            return {}
        cx, cy = best
        ys, xs = np.nonzero(liked[cy:cy + c, cx:cx + c])
        cells = np.stack([xs + cx, ys + cy], 1)
        cells = cells[np.abs(cells[:, 0] - px) + np.abs(cells[:, 1] - py) >= 4]  # somewhere else
        if not len(cells):
            return {}
        mid = np.abs(cells[:, 0] - cx - c // 2) + np.abs(cells[:, 1] - cy - c // 2)
        cells = cells[np.argsort(mid, kind="stable")[:self.k]]
        self.cells = {tuple(v) for v in cells.tolist()}
        return x.nav.stand_seeds(cells)

    def stale(self, x: SkillContext, route: Route) -> bool:
        return route.age >= 60



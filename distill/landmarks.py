"""Landmarks: where the student last saw water, trees, stone, its table, a cow, and the
nearest pocket it could sleep in, read from its own frames.

The teacher walks back to what its map remembers (the lake, its table, a pocket for the
night); played on its view alone it scores less than half as much
(docs/distill-results.md, session 16). A map of colours (:mod:`distill.visual_memory`)
holds that too, but leaves the student to find the lake in it. Here the memory is read
for it, one token per landmark::

    frame --each cell against Crafter's textures (distill.cells.classify)--> class per view cell
    previous action a move onto free ground? (the last view's class there) --> the class map [S, S] shifts
    class map --nearest cell of each landmark--> offsets [K, 2] (dx, dy), or NONE when none is known

A cell is written to the map only when one texture fits it clearly in the step's light
(:mod:`distill.cells`): by day every cell of the view, in the dark those near the
player, asleep none.

The *pocket* is where the teacher would wall itself in for the night, found on the map
by the teacher's own rule (:func:`_pocket`, after ``agents.executor.shelter.find_pockets``):
the entry of a two-cell tunnel with walls beside it, the fewest walls to build first, then
the nearest. It is looked for only from step :data:`EVENING` of each day (it costs ~0.4 ms,
and is not looked for again while the map stays the same; the teacher turns to its
shelter from step 125). Crafter only; depends on numpy and, for
the textures, the ``crafter`` package.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from distill.cells import CLASS, PLAYER, UNKNOWN, classify
from distill.visual_memory import WORLD_COLS, WORLD_ROWS, cell_colours, shifted, view_in_map, view_moved
from envs.crafter_env import DAY_LENGTH, PLANT_RIPE

if TYPE_CHECKING:
    from distill.config import ModelConfig

# The teacher's shelter walls: what no zombie crosses and the player does not dig through
# by mistake; water is one too unless a skeleton's ground (path) is within SKELETON_REACH
# steps (up, down, left, right: as the teacher counts them), as arrows fly over it.
WALLS = frozenset(CLASS[n] for n in ("stone", "tree", "coal", "iron", "diamond", "table", "furnace"))
SKELETON_REACH = 6
EVENING = 100  # the step of each day from which the pocket is looked for
# What the student is told of, in this order; "pocket" is computed from the map (_pocket).
LANDMARKS = ("water", "tree", "stone", "coal", "iron", "diamond", "lava", "table", "furnace", "cow", "plant",
             "plant-ripe", "pocket")
_LANDMARK_CLASSES = np.array([CLASS[n] for n in LANDMARKS[:-1]])  # the class of each but the pocket
# What the landmark tokens mean, saved with each checkpoint trained on them: a student
# reads its tokens as they were computed in training, so one whose number differs from
# this is refused (distill.checkpoint). Change it whenever a landmark's rule changes (the
# pocket's, the view cells', walled's or walls_needed's).
# 1: the pocket by the teacher's rule, but a skeleton's reach over water counted in a
# 13 x 13 square where the teacher counts 6 steps. 2: counted as the teacher does.
# Checkpoints saved before the number was recorded carry none; between 9fecb8a and 3470e1e
# their pocket was a cell walled on three sides.
VERSION = 2
NONE = -128  # the offset of a landmark not known
VIEW_CELLS = WORLD_ROWS * WORLD_COLS  # with the view's cells (Reads(view=True)), one row each
COW_MEMORY = 30  # cows wander: one seen longer ago than this many steps is forgotten


@dataclasses.dataclass(frozen=True)
class Reads:
    """What a student reads off its class map: the map's cells per side, and which rows
    :meth:`LandmarkMemory.update` gives after the nearest landmarks (in this order, the
    routes last). The one place that lists them: the step table (``load_steps``), the
    dataset's check of it, the playing agent and the speed bench each take one, built from
    the model config by :meth:`of`."""

    size: int
    view: bool = False
    walled: bool = False
    walls: bool = False
    plants: bool = False
    spot: bool = False
    routes: bool = False

    @classmethod
    def given(cls, reads: Reads | int) -> Reads:
        """``reads`` itself, or for a map size alone the landmarks alone."""
        return reads if isinstance(reads, Reads) else cls(int(reads))

    @classmethod
    def of(cls, cfg: ModelConfig) -> Reads | None:
        """What a student of model config ``cfg`` reads, or None without ``model.landmarks``."""
        if not cfg.landmarks:
            return None
        return cls(int(cfg.landmarks), **{field: bool(getattr(cfg, name)) for field, name in _OPTIONS.items()})

    @property
    def rows(self) -> int:
        """The rows of :meth:`LandmarkMemory.update`'s array: the landmarks, the view's cells,
        walled in or not, the walls needed, the plant, the plant spot, the routes."""
        return (len(LANDMARKS) * (1 + self.routes) + VIEW_CELLS * self.view + self.walled + self.walls
                + self.plants + self.spot)

    def memory(self) -> LandmarkMemory:
        """An empty memory that gives these rows."""
        return LandmarkMemory(self)

    def options(self) -> str:
        """The switches as the model config names them, for errors."""
        return ", ".join(f"model.{name} {getattr(self, field)}" for field, name in _OPTIONS.items())


# Each of Reads' switches, and the model config's name for it (distill.config.ModelConfig).
_OPTIONS = {"view": "landmark_view", "walled": "walled", "walls": "walls_needed", "plants": "plant_clock",
            "spot": "plant_spot", "routes": "routes"}


class LandmarkMemory:
    """A ``reads.size`` x ``reads.size`` class map centred on the player, from its frames
    (``reads`` a :class:`Reads`, or a map size alone); :meth:`update` returns the offsets
    of the nearest cell of each of :data:`LANDMARKS`: int8 [K, 2]; with ``reads.view``,
    [K + VIEW_CELLS, 2]: then the view's cells as the map has them, row by row
    (:meth:`view_cells`); with ``walled`` one row more: (1 when the player is walled
    in on the map (:func:`walled`), else 0; 0); with ``walls`` one more: (the cells
    left to wall up, :func:`walls_needed`; 0); with ``plants`` one more: the nearest plant's
    (growth, open sides), :meth:`plant`; with ``spot`` one more: the offset of the grass cell
    the teacher would plant a sapling on (:func:`plant_spot`); with ``routes`` K more, last:
    the way to each landmark on the map (:func:`routes`)."""

    def __init__(self, reads: Reads | int):
        self.reads = Reads.given(reads)
        self.size = size = self.reads.size
        self.rows, self.cols = view_in_map(size, "model.landmarks")
        c = size // 2
        ys, xs = np.mgrid[-c:c + 1, -c:c + 1]
        self.order = np.argsort((np.abs(xs) + np.abs(ys)).ravel(), kind="stable")  # nearest first
        self.dx, self.dy = xs.ravel()[self.order], ys.ravel()[self.order]
        self.reset()

    def reset(self) -> None:
        self.classes = np.zeros((self.size, self.size), np.uint8)
        self.age = np.full((self.size, self.size), 255, np.uint8)
        self.planted = np.full((self.size, self.size), -1, np.int64)  # the step each plant was first seen, or -1
        self.last: np.ndarray | None = None  # the last frame
        self.last_seen: np.ndarray | None = None  # and its classes
        self.pocket_of: tuple[bytes, tuple[int, int] | None] = (b"", None)  # the last map _pocket read, its answer
        self.routes_of: tuple[bytes, np.ndarray | None] = (b"", None)  # and routes, with the pocket

    def moved(self, frame: np.ndarray, dx: int, dy: int) -> bool:
        """Did the move ``(dx, dy)`` move the player? Crafter moves it when the cell it
        steps to is free: ground without an object (or lava). That cell was in the last
        view; where it was not read (the dark), the frames are compared as the map does."""
        if (dx, dy) == (0, 0) or self.last is None:
            return False
        target = int(self.last_seen[WORLD_ROWS // 2 + dy, WORLD_COLS // 2 + dx])
        if target != UNKNOWN:
            return bool(_WALKABLE[target])
        return view_moved(cell_colours(self.last), cell_colours(frame), dx, dy)

    def update(self, frame: np.ndarray, move: tuple[int, int] | np.ndarray, step: int) -> np.ndarray:
        frame = np.array(frame, np.uint8, order="C")  # a copy, kept as the last frame; Crafter's are transposed
        dx, dy = int(move[0]), int(move[1])
        if self.moved(frame, dx, dy):
            self.classes = shifted(self.classes, dx, dy, 0)
            self.age = shifted(self.age, dx, dy, 255)
            self.planted = shifted(self.planted, dx, dy, -1)
        self.age[self.age < 255] += 1
        seen = classify(frame, step)
        self.last, self.last_seen = frame, seen
        view = self.classes[self.rows, self.cols]
        known = seen != UNKNOWN
        reads = self.reads
        if reads.plants:
            _plant_clock(self.planted[self.rows, self.cols], view, seen, step)
        view[known] = seen[known]
        self.age[self.rows, self.cols][known] = 0
        classes = self.remembered()
        marks = self.nearest(step, classes)
        out = [marks]
        if reads.view:
            out.append(self.view_cells())
        if reads.walled:
            out.append(np.array([[walled(self.classes), 0]], np.int8))
        if reads.walls:
            out.append(np.array([[walls_needed(self.classes), 0]], np.int8))
        if reads.plants:
            out.append(self.plant(marks[LANDMARKS.index("plant")], step))
        if reads.spot:
            out.append(plant_spot(classes)[None])
        if reads.routes:
            out.append(self._routes(classes, marks[-1]))
        return np.concatenate(out) if len(out) > 1 else out[0]

    def view_cells(self) -> np.ndarray:
        """int8 [VIEW_CELLS, 2]: each cell of the view, row by row as the image's tokens, as
        (its class on the map, 1 when remembered rather than read in this frame). In the
        dark the frame shows little beyond the player's neighbours; the map still holds the
        ground it saw by day (creatures there may since have moved; a cell the player
        stood on and has not read since is the player's class, ground it can walk)."""
        classes = self.classes[self.rows, self.cols].ravel()
        stale = (self.age[self.rows, self.cols] > 0).ravel()
        return np.stack([classes, stale & (classes != UNKNOWN)], 1).astype(np.int8)

    def plant(self, offset: np.ndarray, step: int) -> np.ndarray:
        """int8 [1, 2]: the plant (sapling) at ``offset`` on the map, as (its growth, the
        steps since it was first seen over :data:`PLANT_BIN`, at most :data:`PLANT_GROWN`;
        how many of its four sides a cow or a zombie could step on, :data:`_OPEN`); (0, 0)
        when no plant is known. Every plant in Crafter is one the player placed, so first
        seen is planted, and a plant ripens after 300 updates next to no cow, zombie or
        skeleton (each eats it), which the teacher counts and walls against
        (``agents/executor/farming.py``); a student sees a sapling, not its age, nor, from
        one frame, which sides it still has to wall."""
        if offset[0] == NONE:
            return np.zeros((1, 2), np.int8)
        c = self.size // 2
        x, y = c + int(offset[0]), c + int(offset[1])
        grown = min((step - int(self.planted[y, x])) // PLANT_BIN, PLANT_GROWN) if self.planted[y, x] >= 0 else 0
        sides = sum(not (0 <= cx < self.size and 0 <= cy < self.size) or bool(_OPEN[self.classes[cy, cx]])
                    for cx, cy in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)))  # beyond the map: nothing known
        return np.array([[grown, sides]], np.int8)

    def remembered(self) -> np.ndarray:
        """The class map as the landmarks read it: a cow seen longer ago than
        :data:`COW_MEMORY` steps is grass."""
        classes = self.classes.copy()
        classes[(classes == CLASS["cow"]) & (self.age > COW_MEMORY)] = CLASS["grass"]
        return classes

    def nearest(self, step: int, classes: np.ndarray | None = None) -> np.ndarray:
        """The offsets [K, 2] at step count ``step`` on ``classes`` (:meth:`remembered`);
        the pocket's only from step :data:`EVENING` of a day."""
        classes = self.remembered() if classes is None else classes
        flat = classes.ravel()[self.order]
        seen, first = np.unique(flat, return_index=True)  # the nearest cell of each class
        at = np.full(256, -1)
        at[seen] = first
        rank = at[_LANDMARK_CLASSES]
        out = np.full((len(LANDMARKS), 2), NONE, np.int8)
        known = rank >= 0
        out[:-1][known] = np.stack([self.dx[rank[known]], self.dy[rank[known]]], 1)
        pocket = self._pocket(classes) if step % DAY_LENGTH >= EVENING else None
        if pocket is not None:
            c = self.size // 2
            out[-1] = pocket[0] - c, pocket[1] - c
        return out

    def _routes(self, classes: np.ndarray, pocket: np.ndarray) -> np.ndarray:
        """:func:`routes` to the landmarks on ``classes``, the pocket at the offset ``pocket``;
        read again only where the map or the pocket differ from the last call's."""
        key = classes.tobytes() + pocket.tobytes()
        if key != self.routes_of[0]:
            c = self.size // 2
            entry = None if pocket[0] == NONE else (int(pocket[0]) + c, int(pocket[1]) + c)
            self.routes_of = (key, routes(classes, entry))
        return self.routes_of[1]

    def _pocket(self, classes: np.ndarray) -> tuple[int, int] | None:
        """:func:`_pocket`, read again where the map is the last one's: about half the
        evening's steps, the player standing still with nothing new in view."""
        key = classes.tobytes()
        if key != self.pocket_of[0]:
            self.pocket_of = (key, _pocket(classes))
        return self.pocket_of[1]


PLANT_BIN = 25  # steps per reading of a plant's growth
PLANT_GROWN = PLANT_RIPE // PLANT_BIN  # the most it reads (12): ripe


def _plant_clock(planted: np.ndarray, was: np.ndarray, seen: np.ndarray, step: int) -> None:
    """Update ``planted`` (the view's window of the step each plant was first seen) from
    the classes the map had there, ``was``, and those read now, ``seen``: a sapling new
    on a cell (or where a ripe plant was: eaten, it grows again) is planted now, a ripe
    one never seen growing 300 steps ago, and a cell read as anything else holds none."""
    sapling, ripe = seen == CLASS["plant"], seen == CLASS["plant-ripe"]
    planted[sapling & ((planted < 0) | (was == CLASS["plant-ripe"]))] = step
    planted[ripe & (planted < 0)] = step - PLANT_BIN * PLANT_GROWN
    planted[(seen != UNKNOWN) & ~sapling & ~ripe] = -1


_OPEN = np.zeros(256, bool)  # what a zombie may walk over to the player, and cells never read
_OPEN[[UNKNOWN, PLAYER] + [CLASS[n] for n in ("grass", "sand", "path", "cow", "zombie", "skeleton", "plant",
                                              "plant-ripe", "arrow-left", "arrow-right", "arrow-up", "arrow-down")]] = True


SPOT_REACH = 6  # how far from the player plant_spot looks, as the teacher around its home
_SIDE_OPEN = _OPEN.copy()  # a plant spot's sides: ground a cow or zombie walks on (a cell never read is no spot's)
_SIDE_OPEN[UNKNOWN] = False
_NO_SPOT = np.zeros(256, bool)  # what no spot may have beside it: lava, or a cell never read
_NO_SPOT[[UNKNOWN, CLASS["lava"]]] = True
_SPOT_STEPS = {r: np.abs(np.mgrid[-r:r + 1, -r:r + 1]).sum(0) for r in range(SPOT_REACH + 1)}  # steps from the centre


def plant_spot(classes: np.ndarray, most_open: int = 3) -> np.ndarray:
    """int8 [2]: the offset (dx, dy) from the player of the grass cell the teacher would
    plant its sapling on, or :data:`NONE` twice, on the class map [S, S]. The teacher's
    rule (``agents.executor.farming._plant_spots``): within :data:`SPOT_REACH` cells each
    way, a grass cell none of whose sides is lava or unknown, with the fewest sides open to
    a cow or zombie (at least one: the player stands there to plant), then the nearest.
    The teacher takes no spot needing more walls than the stone it carries; the map has no
    inventory, so the open sides are capped at ``most_open`` instead. Its saplings so
    planted ripen where the students' (planted on open grass) are eaten (session 49,
    ``steve distill plants``)."""
    c = classes.shape[0] // 2
    r = min(SPOT_REACH, c - 1)
    around = classes[c - r - 1:c + r + 2, c - r - 1:c + r + 2]  # the cells within reach and their sides
    n = 2 * r + 1
    sides = [around[1 + dy:1 + dy + n, 1 + dx:1 + dx + n] for dx, dy in _DIRS]
    open_ = _SIDE_OPEN[sides[0]] + _SIDE_OPEN[sides[1]].astype(np.int64) + _SIDE_OPEN[sides[2]] + _SIDE_OPEN[sides[3]]
    bad = _NO_SPOT[sides[0]] | _NO_SPOT[sides[1]] | _NO_SPOT[sides[2]] | _NO_SPOT[sides[3]]
    ok = (around[1:-1, 1:-1] == CLASS["grass"]) & ~bad & (open_ >= 1) & (open_ <= most_open)
    if not ok.any():
        return np.full(2, NONE, np.int8)
    cost = np.where(ok, open_ * 4 * n + _SPOT_STEPS[r], _NOWHERE)
    at = int(np.argmin(cost.T))  # column by column: ties go to the leftmost, then the top, as the teacher's sort
    return np.array([at // n - r, at % n - r], np.int8)


def shut_in(open_: np.ndarray, limit: int = 3) -> bool:
    """Whether the ``open_`` cells (bool [rows, cols]) reachable from the centre by
    four-neighbour steps are at most ``limit``, the centre included, and do not reach the
    edge: nothing that walks can come in from outside."""
    rows, cols = open_.shape
    start = (rows // 2, cols // 2)
    seen, todo = {start}, [start]
    while todo:
        r, c = todo.pop()
        for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if n in seen:
                continue
            if not (0 <= n[0] < rows and 0 <= n[1] < cols):
                return False
            if open_[n]:
                seen.add(n)
                todo.append(n)
                if len(seen) > limit:
                    return False
    return True


def walled(classes: np.ndarray, limit: int = 3) -> bool:
    """Whether the player is walled in on the class map [S, S]: :func:`shut_in` over the
    view's cells, open where the map has ground, the creatures and saplings on it, or
    nothing read. ``distill.nights.enclosed`` asks the same of the env's own view; on the
    map the student reads it in the dark too (a test checks the two agree)."""
    return shut_in(_open_view(classes), limit)


def _open_view(classes: np.ndarray) -> np.ndarray:
    """The view's cells of the class map [S, S] where something that walks may be (:data:`_OPEN`)."""
    c, rows, cols = classes.shape[0] // 2, WORLD_ROWS // 2, WORLD_COLS // 2
    return _OPEN[classes[c - rows:c + rows + 1, c - cols:c + cols + 1]]


WALLS_MOST = 4  # the most walls_needed says: the player's own cell has four sides


def walls_needed(classes: np.ndarray, limit: int = 3) -> int:
    """The fewest cells the player must wall up to be walled in (:func:`walled`) where it
    stands, on the class map [S, S]: over each pocket of at most ``limit`` open cells
    around it, the open cells beside the pocket (a cell beside it beyond the view counts
    as one: nothing is known there); 0 when walled in, at most :data:`WALLS_MOST`. Walling
    itself in, the teacher closes such a pocket stone by stone; the count says how far the
    player is from done, which the view shows cell by cell but a small network does not
    read off it easily."""
    return fewest_walls(_open_view(classes), limit)


def fewest_walls(open_: np.ndarray, limit: int = 3) -> int:
    """:func:`walls_needed` over the ``open_`` cells (bool [rows, cols]) around the centre."""
    rows, cols = open_.shape
    start = frozenset([(rows // 2, cols // 2)])
    pockets, grown = {start}, {start}
    for _ in range(limit - 1):  # the connected sets of open cells with the centre, one cell larger each round
        grown = {pocket | {n} for pocket in grown for cell in pocket for n in _beside(cell)
                 if n not in pocket and 0 <= n[0] < rows and 0 <= n[1] < cols and open_[n]}
        pockets |= grown
    best = WALLS_MOST
    for pocket in pockets:
        gaps = {n for cell in pocket for n in _beside(cell)
                if n not in pocket and not (0 <= n[0] < rows and 0 <= n[1] < cols and not open_[n])}
        best = min(best, len(gaps))
    return best


def _beside(cell: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    r, c = cell
    return (r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)


_CODES = {name: np.zeros(256, bool) for name in ("wall", "free", "dig", "lava", "water", "path", "grass")}
_CODES["wall"][list(WALLS)] = True
_CODES["free"][[CLASS["grass"], CLASS["sand"], CLASS["path"], PLAYER]] = True  # ground without an object
_CODES["dig"][[CLASS["stone"], CLASS["coal"]]] = True
for _name in ("lava", "water", "path", "grass"):
    _CODES[_name][CLASS[_name]] = True
_DIRS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # Crafter's move order: left, right, up, down
_WALKABLE = np.zeros(256, bool)  # what a move steps onto: ground without an object, or lava
_WALKABLE[[CLASS[n] for n in ("grass", "sand", "path", "lava")]] = True
_NOWHERE = np.iinfo(np.int64).max


def _pocket(classes: np.ndarray) -> tuple[int, int] | None:
    """(x, y) on the map [S, S] of the entry of the pocket the teacher would pick for the
    night, or None. As ``agents.executor.shelter.find_pockets``: a straight tunnel
    E -> P -> Q, E free ground (and the cell behind it: the player steps in from there),
    P and Q free or diggable (stone, coal) and not next to lava, with walls beside P and
    Q and beyond Q, each one missing (free ground) a stone to place. The fewest walls to
    build win (6 steps each), then the nearest, water beside P counting 12 steps in its
    favour (the player drinks inside), grass around (where zombies spawn) a step against it
    per 6 cells. Unlike the teacher it counts neither the stone carried nor the pockets it
    failed to enter, and the player's own cell is ground to it (to the teacher, an object
    in its view: counted so, the token pointed the teacher's moves less well, session 30).
    Otherwise both pick the same cell (a test draws maps and runs both)."""
    is_ = {name: lut[classes] for name, lut in _CODES.items()}
    s = classes.shape[0]
    wall = is_["wall"] | (is_["water"] & ~_within_steps(is_["path"], SKELETON_REACH))
    free, unsafe = is_["free"], _within_steps(is_["lava"], 1)
    free_at, opened_at = _around(free), _around((free | is_["dig"]) & ~unsafe)
    wall_at, closable_at, water_at = _around(wall), _around(wall | free), _around(is_["water"])
    c = s // 2
    ys, xs = np.mgrid[:s, :s]
    base = np.abs(xs - c) + np.abs(ys - c) + _window_sum(is_["grass"], 6) // 6
    best, where = _NOWHERE, None
    for dx, dy in _DIRS:
        px, py = dy, dx  # perpendicular
        sides = ((dx + px, dy + py), (dx - px, dy - py), (2 * dx + px, 2 * dy + py), (2 * dx - px, 2 * dy - py))
        ok = free & free_at(-dx, -dy) & opened_at(dx, dy) & opened_at(2 * dx, 2 * dy) & closable_at(3 * dx, 3 * dy)
        build = np.zeros((s, s), np.int64)
        for sx, sy in sides:
            ok &= closable_at(sx, sy)
            build += ~wall_at(sx, sy)
        if not ok.any():
            continue
        well = water_at(*sides[0]) | water_at(*sides[1])
        score = np.where(ok, 6 * build + base - 12 * well, _NOWHERE)
        i = int(score.argmin())
        if score.flat[i] < best:
            best, where = int(score.flat[i]), (i % s, i // s)
    return where


def _around(mask: np.ndarray, reach: int = 3):
    """``at(dx, dy)``: a view of ``mask`` [S, S] moved so that ``at(dx, dy)[y, x]`` is
    ``mask[y + dy, x + dx]``, False off the map, for ``|dx|, |dy| <= reach``."""
    s = mask.shape[0]
    padded = np.zeros((s + 2 * reach, s + 2 * reach), bool)
    padded[reach:reach + s, reach:reach + s] = mask
    return lambda dx, dy: padded[reach + dy:reach + dy + s, reach + dx:reach + dx + s]


def _within_steps(mask: np.ndarray, r: int) -> np.ndarray:
    """bool [S, S]: the cells at most ``r`` moves (up, down, left, right) from a ``mask`` cell."""
    out = mask.copy()
    for _ in range(r):
        near = _around(out, 1)
        out = out | near(1, 0) | near(-1, 0) | near(0, 1) | near(0, -1)
    return out


def _window_sum(mask: np.ndarray, r: int) -> np.ndarray:
    """int [S, S]: how many ``mask`` cells lie within ``r`` (Chebyshev) of each cell."""
    s = mask.shape[0]
    cum = np.zeros((s + 1, s + 1), np.int64)
    cum[1:, 1:] = mask.cumsum(0).cumsum(1)
    lo = np.clip(np.arange(s) - r, 0, s)
    hi = np.clip(np.arange(s) + r + 1, 0, s)
    return cum[hi][:, hi] - cum[lo][:, hi] - cum[hi][:, lo] + cum[lo][:, lo]


# The way to each landmark (:func:`routes`): which of the four moves start a shortest walk
# to it on the class map, as a mask (bit k: the k-th of _DIRS), and how many steps it is.
ROUTE_NONE = 0  # no walk to it is known on the map
ROUTE_THERE = 16  # the player stands there (the pocket's entry)
ROUTE_FAR = 32  # the steps of a route at least this long, or of none
_ROUTE_WALK = np.zeros(256, bool)  # what a route walks over: ground, and creatures that move off it
_ROUTE_WALK[[PLAYER] + [CLASS[n] for n in ("grass", "sand", "path", "cow", "zombie", "skeleton", "arrow-left",
                                            "arrow-right", "arrow-up", "arrow-down")]] = True


def routes(classes: np.ndarray, pocket: tuple[int, int] | None = None) -> np.ndarray:
    """int8 [K, 2]: for each of :data:`LANDMARKS` on the class map [S, S], (the moves that
    start a shortest walk to it, ``mask`` 1-15 or :data:`ROUTE_THERE`, or :data:`ROUTE_NONE`;
    the walk's steps, at most :data:`ROUTE_FAR`). The landmark offsets say where a thing
    is, not the way there: the teacher walks its map's shortest paths, around the lake
    between, which the student's view shows only near by (session 21: most of its missed
    actions are moves the teacher's paths do not take). A thing is reached standing beside
    it (the last move faces it), the pocket standing on its entry ``pocket`` (x, y).
    Walks go over ground and the creatures on it, not through unknown cells, water, lava,
    plants or what needs digging (the teacher digs when it has the tool; that it is not
    told). One breadth-first search from the player, four sets of cells a layer, one per
    first move, each kept as the bits of one Python integer (a row is ``S + 1`` bits: a
    move off the side lands in the spare bit, which no cell has)."""
    s = classes.shape[0]
    w = s + 1
    kinds = len(LANDMARKS) - 1
    padded = np.zeros((kinds + 2, s, w), bool)
    padded[:kinds, :, :s] = classes[None] == _LANDMARK_CLASSES[:, None, None]
    if pocket is not None:
        padded[kinds, pocket[1], pocket[0]] = True
    padded[kinds + 1, :, :s] = _ROUTE_WALK[classes]
    masks = [int.from_bytes(np.packbits(m.ravel(), bitorder="little").tobytes(), "little") for m in padded]
    walk = masks[-1]
    out = np.zeros((len(LANDMARKS), 2), np.int8)
    out[:, 1] = ROUTE_FAR
    todo: dict[int, tuple[int, int]] = {}  # landmark -> (cells it is reached from, the landmark's cells)
    for k, cells in enumerate(masks[:-1]):
        if cells:
            todo[k] = (cells, cells) if k == kinds else (_spread(cells, w), cells)
    start = 1 << (s // 2 * w + s // 2)
    lanes = [_move(start, k, w) & walk for k in range(4)]
    for k, (reach, cells) in list(todo.items()):  # the first move from where the player stands
        if start & reach:
            mask = ROUTE_THERE if k == kinds else sum(1 << d for d in range(4) if _move(start, d, w) & cells)
            out[k] = mask, 0
            del todo[k]
    seen = start | lanes[0] | lanes[1] | lanes[2] | lanes[3]
    layer, steps = seen ^ start, 1
    while layer and todo:
        for k, (reach, _) in list(todo.items()):
            if layer & reach:
                out[k] = sum(1 << d for d in range(4) if lanes[d] & reach), min(steps, ROUTE_FAR)
                del todo[k]
        layer = _spread(layer, w) & walk & ~seen
        lanes = [_spread(lane, w) & layer for lane in lanes]
        seen |= layer
        steps += 1
    return out


def _move(cells: int, k: int, w: int) -> int:
    """``cells`` (bits, rows of ``w``) moved by the k-th of :data:`_DIRS`: left, right, up, down."""
    return (cells >> 1, cells << 1, cells >> w, cells << w)[k]


def _spread(cells: int, w: int) -> int:
    """The cells one move from any of ``cells`` (bits, rows of ``w``)."""
    return (cells >> 1) | (cells << 1) | (cells >> w) | (cells << w)


def memory_for(cfg: ModelConfig) -> LandmarkMemory | None:
    """The memory a student of model config ``cfg`` reads its landmark rows from as it
    plays, or None without ``model.landmarks``."""
    reads = Reads.of(cfg)
    return None if reads is None else reads.memory()


def episode_landmarks(frames: np.ndarray, actions: np.ndarray, moves: np.ndarray, reads: Reads | int,
                      steps: np.ndarray | None = None) -> np.ndarray:
    """int8 [N, ``reads.rows``, 2] (see :class:`LandmarkMemory`; ``reads`` a map size alone
    for the landmarks alone): the landmarks before each step of one episode, from its frames
    [N, H, W, 3] and actions [N] (step i's frame follows action i - 1); ``moves`` from
    :func:`distill.visual_memory.move_vectors`; ``steps`` the step counts (default 0..N-1)."""
    reads = Reads.given(reads)
    memory = reads.memory()
    steps = np.arange(len(frames)) if steps is None else steps
    out = np.empty((len(frames), reads.rows, 2), np.int8)
    for i in range(len(frames)):
        out[i] = memory.update(frames[i], moves[actions[i - 1]] if i else (0, 0), int(steps[i]))
    return out

"""Paths over the known map: a bucket-queue Dijkstra *from the goals* to the player.

Searching backwards gives a distance-to-goal field, so following it is O(1) per step
and every move that keeps to a shortest path is known: that set is the teacher's action
distribution. The search stops as soon as it settles the player's cell, so a near goal
costs a near search. Walking onto grass/sand/path costs 1; stone, trees and ores the
player can mine cost 3 (turn, ``do``, move); water, lava, tables, furnaces, plants and
unknown cells cannot be entered, so a path never steps into lava. Creatures in view
cost extra (they move, or can be fought) rather than blocking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from agents.executor.worldmap import CODE, DIRS, MATERIALS, OBJ, WALKABLE, WorldMap

INF = 1 << 30
STEP, MINE, CREATURE, FIRE = 1, 3, 7, 4
GRASS_AT_NIGHT = 4  # grass costs this after dark: zombies spawn on it
MAX_COST = 30  # of one finite step, so the search's bucket list stays short
MOVE_NAMES = ("move_left", "move_right", "move_up", "move_down")  # in the order of DIRS
ARRIVED = (-1, ())
# What a pickaxe (or nothing) lets the player dig through, by the tool the tree names.
MINABLE = ("tree", "stone", "coal", "iron", "diamond")
_NEIGHBOURS: dict[int, list[tuple[int, int, int, int]]] = {}


def neighbours(size: int) -> list[tuple[int, int, int, int]]:
    """Flat index of the left, right, up, down neighbour of every cell (-1: off the map)."""
    if size not in _NEIGHBOURS:
        out = []
        for y in range(size):
            for x in range(size):
                i = y * size + x
                out.append((i - 1 if x > 0 else -1, i + 1 if x < size - 1 else -1,
                            i - size if y > 0 else -1, i + size if y < size - 1 else -1))
        _NEIGHBOURS[size] = out
    return _NEIGHBOURS[size]


def direction_index(dx: int, dy: int) -> int:
    return DIRS.index((dx, dy))


class Route:
    """A distance-to-goal field and the seeds it grew from; :meth:`step` reads a move."""

    def __init__(self, world: WorldMap, dist: list[int], enter: list[int],
                 seeds: Mapping[int, tuple[int, int]], moves: tuple[int, ...], do: int):
        self.world, self.dist, self.enter, self.seeds = world, dist, enter, seeds
        self._moves, self._do = moves, do
        self._nb = neighbours(world.size)
        self.sightings = world.sightings.copy()
        self.age = 0

    def cost(self, pos: tuple[int, int]) -> int:
        return self.dist[self.world.index(*pos)]

    def step(self, pos: tuple[int, int], facing: tuple[int, int]) -> tuple[int, tuple[int, ...]] | None:
        """(action, equally good actions) from ``pos``; ARRIVED at a plain seed; None: off route."""
        w = self.world
        i = pos[1] * w.size + pos[0]
        d = self.dist[i]
        if d >= INF:
            return None
        seed = self.seeds.get(i)
        if seed is not None and seed[0] == d:
            if not seed[1]:
                return ARRIVED
            acts = tuple(self._moves[k] for k in range(4) if seed[1] >> k & 1)
            return acts[0], acts
        dist, enter, size, mat = self.dist, self.enter, w.size, w.mat
        acts: list[int] = []
        for k, n in enumerate(self._nb[i]):
            if n < 0 or dist[n] + enter[n] != d:
                continue
            if mat[n // size, n % size] not in _WALK_CODES and DIRS[k] == facing:  # dig it first
                acts.append(self._do)
            else:
                acts.append(self._moves[k])
        if not acts:
            return None
        return acts[0], tuple(dict.fromkeys(acts))


_WALK_CODES = (CODE["grass"], CODE["sand"], CODE["path"])
_PLAYER = OBJ["player"]


class Navigator:
    """Builds :class:`Route` s over a :class:`WorldMap`; knows what can be dug through."""

    def __init__(self, world: WorldMap, action_index: Mapping[str, int]):
        self.world = world
        self.moves = tuple(action_index[n] for n in MOVE_NAMES)
        self.do = action_index["do"]
        self.limit = 600
        self.searches = 0  # how many searches ran (a cost counter for tests and benches)

    def enter_costs(self, minable: Iterable[str] = (), grass: int = STEP) -> list[int]:
        """Cost of stepping into each cell, as a flat list (read in the search loop).

        ``grass`` above 1 keeps paths off grass (where zombies spawn at night).
        """
        w = self.world
        lut = np.full(64, INF, np.int64)
        lut[list(WALKABLE)] = STEP
        lut[CODE["grass"]] = grass
        for name in minable:
            lut[CODE[name]] = MINE
        cost = lut[w.mat]
        x0, y0, x1, y1 = w.view
        win = w.obj[y0:y1, x0:x1]
        if win.any():
            sub = cost[y0:y1, x0:x1]
            creature = (win > 0) & (win != OBJ["plant"]) & (win != OBJ["ripe_plant"]) & (win != OBJ["player"])
            sub[creature] = np.minimum(sub[creature] + CREATURE - STEP, INF)
            sub[(win == OBJ["plant"]) | (win == OBJ["ripe_plant"])] = INF
        for px, py in w.plants:  # out of view too: the map keeps only the grass under it
            cost[py, px] = INF
        for cx, cy in w.plant_walls():  # a wall of a growing plant of ours is not dug
            if 0 <= cx < w.size and 0 <= cy < w.size and w.mat[cy, cx] not in WALKABLE:
                cost[cy, cx] = INF
        # a skeleton's line of fire (also one seen a moment ago, just out of view, or the
        # route flips each time it comes into view): arrows fly along rows and columns
        for (sx, sy), t in w.seen[OBJ["skeleton"]].items():
            if w.step - t <= 15:
                cost[sy, max(0, sx - 5):sx + 6] += FIRE
                cost[max(0, sy - 5):sy + 6, sx] += FIRE
        # an arrow's next cells, where its way is known: a route does not step into it from the side
        for (ax, ay), way in w.arrows.items():
            for i in range(1, 4) if way else ():
                cx, cy = ax + i * way[0], ay + i * way[1]
                if 0 <= cx < w.size and 0 <= cy < w.size:
                    cost[cy, cx] += CREATURE
        cost = np.where(cost >= INF, INF, np.minimum(cost, MAX_COST))
        flat = cost.ravel().tolist()
        for i in w.avoid:
            flat[i] = INF
        px, py = w.position
        me = w.index(px, py)
        flat[me] = min(flat[me], STEP)  # the player stands somewhere standable
        return flat

    def search(self, seeds: Mapping[int, tuple[int, int]], enter: list[int]) -> Route | None:
        """Dijkstra from ``seeds`` (cell -> (cost, final move mask)) until the player."""
        self.searches += 1
        w = self.world
        start = w.index(*w.position)
        size = w.size
        dist = [INF] * (size * size)
        limit = self.limit
        buckets: list[list[int]] = [[] for _ in range(limit + MAX_COST + 2)]
        for i, (c, _) in seeds.items():
            if c < dist[i]:
                dist[i] = c
                buckets[c].append(i)
        nb = neighbours(size)
        found = False
        for d in range(limit + 1):
            bucket = buckets[d]
            for i in bucket:
                if dist[i] != d:
                    continue
                if i == start:
                    found = True
                    break
                nd = d + enter[i]
                if nd > limit:
                    continue
                for n in nb[i]:
                    if n >= 0 and nd < dist[n] and enter[n] < INF:
                        dist[n] = nd
                        buckets[nd].append(n)
            if found:
                break
        if not found:
            return None
        return Route(w, dist, enter, seeds, self.moves, self.do)

    # -- seeds for the usual goals ---------------------------------------------------
    def face_seeds(self, cells: np.ndarray, enter: list[int], stand_ok=None) -> dict[int, tuple[int, int]]:
        """Poses facing any of ``cells``: stand next to it, last move toward it.

        A blocking target (a tree, a cow) is faced by moving into it from a neighbour (the
        move only turns). A walkable one (grass to place on) is faced by arriving at the
        neighbour with a move in its direction, from the cell behind. A route never passes
        through a blocking target (``enter`` is changed in place): dug on the way, the
        target would be walkable by the time the final move, meant as a turn, steps onto it.
        """
        w = self.world
        size = w.size
        seeds: dict[int, tuple[int, int]] = {}
        x0, y0, x1, y1 = w.view
        targets = []
        for tx, ty in cells.tolist():
            t_obj = x0 <= tx < x1 and y0 <= ty < y1 and w.obj[ty, tx] not in (0, _PLAYER)
            # a plant out of view is still there (the map keeps only its grass): faced like a tree
            blocking = t_obj or w.mat[ty, tx] not in _WALK_CODES or (tx, ty) in w.plants
            if blocking:
                enter[ty * size + tx] = INF
            targets.append((tx, ty, blocking))
        for tx, ty, blocking in targets:
            for k, (dx, dy) in enumerate(DIRS):
                ax, ay = tx - dx, ty - dy
                if not (0 <= ax < size and 0 <= ay < size):
                    continue
                a = ay * size + ax
                if enter[a] >= INF or (stand_ok is not None and not stand_ok(ax, ay)):
                    continue
                if blocking:
                    cell = a
                else:
                    bx, by = ax - dx, ay - dy
                    # arrive on plain ground, which costs exactly a step (grass at night a
                    # little more, and walls are built from it then): a cell to dig, a
                    # creature's or one in a skeleton's line of fire costs something else
                    if enter[a] not in (STEP, GRASS_AT_NIGHT) or not (0 <= bx < size and 0 <= by < size):
                        continue
                    cell = by * size + bx
                    if enter[cell] >= INF:
                        continue
                _add_seed(seeds, cell, 1, 1 << k)
        return seeds

    def stand_seeds(self, cells: np.ndarray, costs: Iterable[int] | None = None) -> dict[int, tuple[int, int]]:
        """Plain cells to reach (cost 0, or a per-cell penalty)."""
        size = self.world.size
        costs = list(costs) if costs is not None else [0] * len(cells)
        seeds: dict[int, tuple[int, int]] = {}
        for (x, y), c in zip(cells.tolist(), costs):
            _add_seed(seeds, y * size + x, int(c), 0)
        return seeds


def _add_seed(seeds: dict[int, tuple[int, int]], cell: int, cost: int, mask: int) -> None:
    old = seeds.get(cell)
    if old is None or cost < old[0]:
        seeds[cell] = (cost, mask)
    elif cost == old[0]:
        seeds[cell] = (cost, old[1] | mask)


def material_name(code: int) -> str:
    return MATERIALS[code]

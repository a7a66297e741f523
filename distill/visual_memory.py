"""What the student remembers of the world it saw: a map of cell colours, built from
its own frames alone.

The teacher walks back to tables, lakes and shelters it saw long ago; on its view alone
it scores less than half as much (docs/distill-results.md, session 16). The student sees
one frame, so it gets a memory too, made of nothing but what it saw and did::

    frame (9 x 7 world cells) --mean colour per cell--> cells [7, 9, 3]
    previous action a move?  --does the view match shifted by one cell?--> moved or not
    map [S, S, 4]: shifted with the player, the view written at its centre,
                   the channels red, green, blue and age (steps since seen, 255: never)

Crafter draws its world in square cells (7 pixels at 64 x 64), the world in the top 7
of 9 rows with the player in the middle; only the player's own moves shift the view,
by one cell, and only when the target cell was free. Whether it moved is read from the
frames: the view shifted by the move's direction against the view in place, the cells
that hold the player in either frame left out. Where both match about as well (a field
of grass looks the same shifted; the night's noise blurs both) the move is taken to have
succeeded: a blocked move faces water, stone or a tree, which do not look like the
cells around them.

One :class:`VisualMemory` serves both sides: :func:`distill.steps.load_steps` runs it
over every step of an episode (the steps the filters drop included) and the student
runs it as it plays, so training and play see the same maps. Depends on numpy only.
"""

from __future__ import annotations

import numpy as np

WORLD_ROWS, WORLD_COLS = 7, 9  # Crafter's world view in cells; the inventory is below
MOVES = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}
NEVER = 255  # the age of a cell never seen (or seen 255 steps ago and more)
_UNSEEN = np.array([0, 0, 0, NEVER], np.uint8)  # a map cell never seen: no colour, age NEVER
CHANNELS = 4
# A move counts as made when the shifted views differ by at most this times as much as
# the views in place. Crafter's night noise blurs both comparisons; 1.2 judged 98.8 % of
# the moves of a random walk right (99.8 % by day, 97.3 % by night, 99.8 % of the
# blocked ones), plain 1.0 97.4 %.
SLACK = 1.2


def cell_colours(frames: np.ndarray) -> np.ndarray:
    """The mean colour of each world cell: uint8 [..., H, W, 3] frames -> float32 [..., 7, 9, 3]."""
    unit = min(frames.shape[-3], frames.shape[-2]) // 9
    world = frames[..., : WORLD_ROWS * unit, : WORLD_COLS * unit, :].astype(np.int32)
    # Sums over runs of ``unit`` rows, then columns: a third of the time of a reshaped mean.
    sums = np.add.reduceat(world, np.arange(0, WORLD_ROWS * unit, unit), axis=-3)
    sums = np.add.reduceat(sums, np.arange(0, WORLD_COLS * unit, unit), axis=-2)
    return sums.astype(np.float32) / (unit * unit)


def move_vectors(action_names: dict[int, str] | list[str] | tuple[str, ...], n_actions: int) -> np.ndarray:
    """int8 [n_actions + 1, 2]: the (dx, dy) each action id would move the player by
    (zero for every other action and for the history's "no action" id ``n_actions``)."""
    names = dict(enumerate(action_names)) if not isinstance(action_names, dict) else action_names
    out = np.zeros((n_actions + 1, 2), np.int8)
    for i, name in names.items():
        if 0 <= int(i) < n_actions and name in MOVES:
            out[int(i)] = MOVES[name]
    return out


class VisualMemory:
    """A ``size`` x ``size`` map of cells centred on the player (``size`` odd, at least
    the view's 9). :meth:`update` takes each frame's :func:`cell_colours` and the move
    of the action before it and returns the map: uint8 [size, size, 4]."""

    def __init__(self, size: int):
        self.size = size
        self.rows, self.cols = view_in_map(size, "model.memory")
        self.reset()

    def reset(self) -> None:
        self.map = np.tile(_UNSEEN, (self.size, self.size, 1))
        self.last: np.ndarray | None = None
        self.moves = 0

    def moved(self, cells: np.ndarray, dx: int, dy: int) -> bool:
        """Does ``cells`` look like the last view shifted by the player's move ``(dx, dy)``?"""
        return self.last is not None and view_moved(self.last, cells, dx, dy)

    def update(self, cells: np.ndarray, move: tuple[int, int] | np.ndarray = (0, 0)) -> np.ndarray:
        dx, dy = int(move[0]), int(move[1])
        if self.moved(cells, dx, dy):
            self.moves += 1
            # the world moves against the player, as the view does
            self.map = shifted(self.map, dx, dy, _UNSEEN)
        age = self.map[..., 3]
        age[age < NEVER] += 1
        self.map[self.rows, self.cols, :3] = np.rint(cells).astype(np.uint8)
        self.map[self.rows, self.cols, 3] = 0
        self.last = cells
        return self.map.copy()


def view_in_map(size: int, option: str) -> tuple[slice, slice]:
    """The rows and columns of a ``size`` x ``size`` map centred on the player that the
    view covers; ``size`` must be odd and hold the view (``option`` names it in the error)."""
    if size < WORLD_COLS or size % 2 == 0:
        raise ValueError(f"{option} must be 0 (off) or an odd number of cells of at least {WORLD_COLS}, got {size}")
    c = size // 2
    return (slice(c - WORLD_ROWS // 2, c + WORLD_ROWS // 2 + 1), slice(c - WORLD_COLS // 2, c + WORLD_COLS // 2 + 1))


def shifted(a: np.ndarray, dx: int, dy: int, fill: int | np.ndarray) -> np.ndarray:
    """A map after the player moved by ``(dx, dy)``: cell (r, c) was (r + dy, c + dx),
    ``fill`` where nothing was (a value, or one per channel)."""
    out = np.full_like(a, fill)
    _window(out, dx, dy, own=False)[:] = _window(a, dx, dy, own=True)
    return out


# The view's cells but the player's own, which moves with it: left out when views are compared.
_OTHERS = np.ones((WORLD_ROWS, WORLD_COLS), bool)
_OTHERS[WORLD_ROWS // 2, WORLD_COLS // 2] = False


def view_moved(last: np.ndarray, cells: np.ndarray, dx: int, dy: int) -> bool:
    """Does the view ``cells`` look like the view ``last`` (both :func:`cell_colours`)
    shifted by the player's move ``(dx, dy)``, rather than in place?"""
    if (dx, dy) == (0, 0):
        return False
    still = np.abs(cells - last).mean(-1)[_OTHERS].mean()
    # After a move, cell (r, c) of the new view is cell (r + dy, c + dx) of the old one.
    new = _window(cells, dx, dy, own=False)
    old = _window(last, dx, dy, own=True)
    mask = _window(_OTHERS, dx, dy, own=False) & _window(_OTHERS, dx, dy, own=True)
    shifted = np.abs(new - old).mean(-1)[mask].mean()
    return bool(shifted <= SLACK * still)


def _window(a: np.ndarray, dx: int, dy: int, own: bool) -> np.ndarray:
    """The part of a view (or of the map) that overlaps the one a move ``(dx, dy)`` away:
    of the new one (``own=False``) the cells that were in the old one, of the old one
    (``own=True``) the cells still in the new one, both in the same order."""
    r, c = a.shape[0], a.shape[1]
    if own:
        return a[max(0, dy):r + min(0, dy), max(0, dx):c + min(0, dx)]
    return a[max(0, -dy):r - max(0, dy), max(0, -dx):c - max(0, dx)]


# Where a walk ends, as a class over the world view's cells (row-major, the player's own
# cell in the middle, in the order of the frame's image tokens) or one class for beyond it.
BEYOND = WORLD_ROWS * WORLD_COLS
WALK_CLASSES = BEYOND + 1
NO_WALK = -1  # a step that is not a move, or a walk the episode ends in


def walk_ends(frames: np.ndarray, actions: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """int8 [N]: for each move of one episode, where the walk it is part of ends.

    A walk is a run of moves; it ends where the player stands at the first action that
    is not a move (a ``do``, a placement, a craft, a wait), and that cell, relative to
    the player at the step, is the step's class: the world cell (row-major, the player's
    own in the middle) or :data:`BEYOND` when it is out of the view. A move that does not
    move the player (it turns it to face a tree, water, a table) moves nothing, which the
    frames tell (:func:`view_moved`). :data:`NO_WALK` for the steps that are not
    moves and for a walk the episode ends in. ``frames`` [N, H, W, 3] and ``actions`` [N]
    as in :func:`episode_memories` (step i's frame is before action i)."""
    n = len(actions)
    shift = moves[np.asarray(actions, np.int64)].astype(np.int64)  # [N, 2]
    is_move = shift.any(1)
    colours = cell_colours(frames)
    made = np.zeros(n, bool)
    for i in np.flatnonzero(is_move[: n - 1]).tolist():
        made[i] = view_moved(colours[i], colours[i + 1], *shift[i])
    out = np.full(n, NO_WALK, np.int8)
    dx = dy = 0
    ended = False
    for i in range(n - 1, -1, -1):
        if not is_move[i]:
            dx = dy = 0
            ended = True
            continue
        if not ended:
            continue
        if made[i]:
            dx, dy = dx + int(shift[i, 0]), dy + int(shift[i, 1])
        if abs(dx) <= WORLD_COLS // 2 and abs(dy) <= WORLD_ROWS // 2:
            out[i] = (WORLD_ROWS // 2 + dy) * WORLD_COLS + WORLD_COLS // 2 + dx
        else:
            out[i] = BEYOND
    return out


def episode_memories(frames: np.ndarray, actions: np.ndarray, moves: np.ndarray, size: int) -> np.ndarray:
    """The map before each step of one episode: uint8 [N, size, size, 4] from its frames
    [N, H, W, 3] and actions [N] (step i's frame follows action i - 1); ``moves`` from
    :func:`move_vectors`."""
    memory = VisualMemory(size)
    colours = cell_colours(frames)
    out = np.empty((len(frames), size, size, CHANNELS), np.uint8)
    for i in range(len(frames)):
        out[i] = memory.update(colours[i], moves[actions[i - 1]] if i else (0, 0))
    return out

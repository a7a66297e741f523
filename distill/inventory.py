"""What the player carries and how it fares, read exactly off Crafter's frame.

Below the world Crafter draws the inventory, two rows of nine 7-pixel cells: health,
food, drink, energy, then the items, one cell each in a fixed order, an item's icon with
its count over it, and nothing where the count is 0. The cells are drawn without the
day's light or the night's noise, so each is one of a few exact images: its item's icon
with the digit 1..9 (Crafter caps counts at 9; a larger one would read "unknown"), or
black. :func:`templates` renders them all with Crafter's own drawing code, and
:func:`read` names the count in each cell of a frame by an exact match (or
:data:`UNREAD`, for a frame that is not Crafter's). The teacher's choices turn on these
counts (drink below 7, stone below 7, a pickaxe or none), and a student that reads them
only through its patch embedding must learn each digit's pixels; ``model.inventory``
gives it the count as a learned vector per cell and count instead (:mod:`distill.model`).
"""

from __future__ import annotations

import functools

import numpy as np

from distill.cells import UNIT, crafter_textures
from distill.visual_memory import WORLD_COLS, WORLD_ROWS

COLS, ROWS = WORLD_COLS, 2  # the inventory's cells, below the world's
SLOTS = COLS * ROWS
TOP = WORLD_ROWS * UNIT  # the first pixel row of the inventory
MOST = 9  # Crafter draws counts 1..9 as digits
UNKNOWN = MOST + 1  # a count drawn as "unknown" (10 or more: Crafter never gets there)
UNREAD = UNKNOWN + 1  # a cell that is none of its images: not a Crafter frame
CLASSES = UNREAD + 1  # per cell: 0 (nothing), 1..9, unknown, unread


@functools.lru_cache(1)
def templates() -> np.ndarray:
    """uint8 [SLOTS, UNREAD, 7, 7, 3]: each cell as Crafter draws it for each count (0:
    black; 1..9; :data:`UNKNOWN`), rows and columns as in the frame. The last two cells,
    past Crafter's 16 items, are black whatever the count."""
    textures_ = crafter_textures("model.inventory")
    from crafter import constants, engine  # there: crafter_textures imported it

    view = engine.ItemView(textures_, [COLS, ROWS])
    items = list(constants.items)
    out = np.zeros((SLOTS, UNREAD, UNIT, UNIT, 3), np.uint8)
    for slot, item in enumerate(items):
        for count in range(1, UNREAD):
            inventory = dict.fromkeys(items, 0)
            inventory[item] = count
            canvas = view(inventory, np.array([UNIT, UNIT])).transpose(1, 0, 2)  # Crafter keeps (x, y)
            row, col = divmod(slot, COLS)
            out[slot, count] = canvas[row * UNIT:(row + 1) * UNIT, col * UNIT:(col + 1) * UNIT]
    return out


def cells(frame: np.ndarray) -> np.ndarray:
    """uint8 [SLOTS, 7, 7, 3]: the inventory's cells of a [64, 64, 3] frame."""
    rows = frame[TOP:TOP + ROWS * UNIT, :COLS * UNIT]
    return rows.reshape(ROWS, UNIT, COLS, UNIT, 3).transpose(0, 2, 1, 3, 4).reshape(SLOTS, UNIT, UNIT, 3)


def read(frame: np.ndarray) -> np.ndarray:
    """int64 [SLOTS]: the count each inventory cell of ``frame`` shows, 0..9, or
    :data:`UNKNOWN`, or :data:`UNREAD` where the cell is none of :func:`templates`."""
    same = (cells(frame)[:, None] == templates()).all(axis=(2, 3, 4))  # [SLOTS, UNREAD]
    return np.where(same.any(1), same.argmax(1), UNREAD)

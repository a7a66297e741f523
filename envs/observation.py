"""The structured observation every environment adapter produces.

A plain dataclass, not a pydantic model: one is built per env step, so it sits on the
hot path and holds numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VITALS = ("health", "food", "drink", "energy")
VITAL_MAX = 9.0  # Crafter's scale, which every env reports its vitals on


@dataclass(slots=True)
class Observation:
    """What an agent sees after a reset or a step.

    ``local_view`` is the area the player sees, as a ``(rows, cols)`` array of material
    or creature names, row 0 at the top (north), the player at the centre
    (``local_view[player_cell]``). Position is ``(x, y)`` in world cells, ``y`` growing
    southward, as in Crafter; ``facing`` is a unit ``(dx, dy)``.
    """

    frame: np.ndarray  # uint8, H x W x 3
    inventory: dict[str, int]  # items only; vitals live in ``vitals``
    vitals: dict[str, float]  # health, food, drink, energy, each 0..VITAL_MAX
    local_view: np.ndarray  # object array of names, rows x cols
    position: tuple[int, int]
    facing: tuple[int, int]
    achievements: frozenset[str]  # unlocked so far in this episode
    step: int
    daylight: float = 1.0
    extras: dict[str, object] = field(default_factory=dict)  # env-specific facts

    @property
    def player_cell(self) -> tuple[int, int]:
        """(row, col) of the player inside ``local_view``."""
        rows, cols = self.local_view.shape
        return rows // 2, cols // 2

    @property
    def asleep(self) -> bool:
        """Asleep and not yet rested: the step carries out ``sleep`` whatever action is
        given (Crafter's rule; an env that reports no sleep is never asleep)."""
        return bool(self.extras.get("sleeping")) and self.vitals.get("energy", VITAL_MAX) < VITAL_MAX

    def text(self) -> str:
        """A compact rendering for prompts and people (see :mod:`envs.text`)."""
        from envs.text import render_observation

        return render_observation(self)

"""Reading a Crafter frame's cells as textures (distill/cells.py), against the env's own view."""

from __future__ import annotations

import numpy as np

from distill import cells
from envs.crafter_env import daylight
from tests.distill.conftest import random_moves, world_name


def test_cells_are_read_as_the_world_holds_them_by_day_and_in_the_dark():
    """Against the env's own view: by day every cell is read and read right; in the dark
    (Crafter's noise covers the edges) the cells read are still right."""
    observations, _, _ = random_moves(seed=2, steps=280)
    counts = {"day": [0, 0, 0], "dark": [0, 0, 0]}  # cells, read, read right
    for obs in observations:
        got = cells.classify(obs.frame, obs.step)
        light = "dark" if daylight(obs.step) < 0.5 else "day"
        for (r, c), name in np.ndenumerate(obs.local_view):
            if (r, c) == (3, 4):
                assert got[r, c] == cells.PLAYER
                continue
            counts[light][0] += 1
            if got[r, c] != cells.UNKNOWN:
                counts[light][1] += 1
                counts[light][2] += world_name(int(got[r, c])) == name
    day, dark = counts["day"], counts["dark"]
    assert day[0] > 5000 and dark[0] > 2000  # the walk lived into the night
    assert day[1] / day[0] >= 0.99 and day[2] / day[1] >= 0.995
    assert 0.3 <= dark[1] / dark[0] < 0.95  # the edges are lost in the noise
    assert dark[2] / dark[1] >= 0.99
    grey = np.full((64, 64, 3), 90, np.uint8)  # asleep, Crafter greys the view: nothing is read
    assert cells.asleep(grey) and (cells.classify(grey, 50) == cells.UNKNOWN).sum() == 62

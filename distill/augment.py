"""Training-time transforms of a batch, in place: hiding the action history and
mirroring Crafter frames left to right. Each draws its samples from a generator the
trainer seeds by the step, so a resumed run transforms the same samples."""

from __future__ import annotations

import numpy as np
import torch

from distill.landmarks import LANDMARKS
from distill.landmarks import NONE as LANDMARK_NONE
from distill.steps import StepTable
from distill.visual_memory import BEYOND, WORLD_COLS


def _pick(batch: dict[str, torch.Tensor], p: float, rng: np.random.Generator) -> torch.Tensor:
    """A random share ``p`` of the batch's samples, as a boolean mask on its device."""
    n = batch["action"].shape[0]
    return torch.from_numpy(rng.random(n) < p).to(batch["action"].device)


def hide_history(batch: dict[str, torch.Tensor], p: float, n_actions: int, rng: np.random.Generator) -> None:
    """Replace the history of a random share ``p`` of the samples by "no action" (id
    ``n_actions``, what the student sees before its first step), in place."""
    batch["history"][_pick(batch, p, rng)] = n_actions


def mirror_for(table: StepTable, names: list[str], device: str) -> tuple[torch.Tensor, int, int]:
    """What :func:`mirror_batch` needs for ``table``'s frames: the action permutation
    (history ids included) and the world view's pixel rows and columns. Crafter only: its
    frame is a 9 x 9 grid of square cells, the world in the top 7 rows with the player in
    the middle, the inventory in the last 2 (which a mirror would scramble)."""
    envs_ = {ep.env for ep in table.episodes}
    shapes = {ep.frame_shape for ep in table.episodes}
    if envs_ != {"crafter"} or len(shapes) != 1:
        raise ValueError(f"train.mirror needs Crafter episodes of one frame size, got envs {sorted(envs_)} "
                         f"and frame shapes {sorted(shapes)}")
    if "move_left" not in names or "move_right" not in names:
        raise ValueError("train.mirror needs move_left and move_right among the data's actions")
    swap = list(range(len(names) + 1))  # + the history's "no action" id
    left, right = names.index("move_left"), names.index("move_right")
    swap[left], swap[right] = right, left
    h, w = next(iter(shapes))[:2]
    unit = min(h, w) // 9
    return torch.tensor(swap, device=device), 7 * unit, 9 * unit


def mirror_batch(batch: dict[str, torch.Tensor], p: float, swap: torch.Tensor, rows: int, cols: int,
                 rng: np.random.Generator) -> None:
    """Mirror a random share ``p`` of the samples left to right, in place: the frame's
    ``rows x cols`` top-left block (the world view) flipped, and every action id mapped
    through ``swap`` (teacher distributions permuted alike). Crafter's world looks the
    same mirrored, up to the player's and arrows' sprites, so each sample is two. A walk's
    end (a cell of the 9-column view) moves to the mirrored column."""
    flip = _pick(batch, p, rng)
    if not bool(flip.any()):
        return
    frame = batch["frame"][flip]
    frame[:, :, :rows, :cols] = frame[:, :, :rows, :cols].flip(-1)
    batch["frame"][flip] = frame
    if "memory" in batch:  # the map [B, S, S, 4], centred on the player like the view
        batch["memory"][flip] = batch["memory"][flip].flip(2)
    if "landmarks" in batch:  # offsets (dx, dy): the column offset changes sign (walled in or not stays)
        marks = batch["landmarks"][flip]
        dx = marks[:, :len(LANDMARKS), 0]
        marks[:, :len(LANDMARKS), 0] = torch.where(dx == LANDMARK_NONE, dx, -dx)
        batch["landmarks"][flip] = marks
    batch["action"][flip] = swap[batch["action"][flip]]
    batch["history"][flip] = swap[batch["history"][flip]]
    batch["teacher_probs"][flip] = batch["teacher_probs"][flip][:, swap[:-1]]
    if "walk_end" in batch:
        end = batch["walk_end"][flip]
        cell = (end >= 0) & (end < BEYOND)
        batch["walk_end"][flip] = torch.where(cell, end - end % WORLD_COLS + (WORLD_COLS - 1 - end % WORLD_COLS), end)

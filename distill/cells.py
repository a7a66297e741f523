"""A frame's cells as Crafter's textures: which material or creature each world cell shows.

Crafter draws each cell as its texture, exactly, at 7 x 7 pixels (objects blended over
the ground), then lights the frame: towards dusk it is blended with a desaturated blue
tint, and below half light noise covers it, more towards the edges of the view. All of
that is affine in the texture but the noise, whose mean is known, so each texture is
compared in the light of the step (:func:`envs.crafter_env.daylight`) and a cell is
written only when one texture fits it clearly better than any other; in the dark only the
cells near the player pass, and asleep (a grey frame) none does::

    frame --each cell's 7 x 7 pixels against Crafter's textures, in this step's light--> class per view cell

The classes are what :mod:`distill.landmarks` keeps on its map and reads landmarks from.
Crafter only; depends on numpy and, for the textures, the ``crafter`` package.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from distill.visual_memory import WORLD_COLS, WORLD_ROWS
from envs.crafter_env import daylight

UNIT = 7  # pixels per cell in Crafter's 64 x 64 frame
# The textures a cell may show: materials, then objects over the ground they stand on.
MATERIALS = ("water", "grass", "stone", "path", "sand", "tree", "lava", "coal", "iron", "diamond", "table",
             "furnace")
OBJECTS = (("cow", "grass"), ("zombie", "grass"), ("skeleton", "path"), ("plant", "grass"),
           ("plant-ripe", "grass"), ("arrow-left", "path"), ("arrow-right", "path"), ("arrow-up", "path"),
           ("arrow-down", "path"))
TEXTURES = MATERIALS + tuple(name for name, _ in OBJECTS)
UNKNOWN = 0  # class 0: never seen well enough; class i + 1 is TEXTURES[i]
PLAYER = len(TEXTURES) + 1  # the player's own cell, ground it stands on
CLASS = {name: i + 1 for i, name in enumerate(TEXTURES)}

# A cell is written when its best texture fits within the noise expected there and the
# second best fits at least MARGIN worse (both as sums of squared, noise-scaled errors
# over its 147 numbers): on Crafter's own worlds see tests/distill/test_cells.py.
FIT, MARGIN = 4.0, 60.0
_NOISE_MEAN, _NOISE_STD = 79.5, 95 / 12 ** 0.5  # Crafter's night noise: uniform(32, 127), one per pixel
_TINT = np.array([0.0, 16.0, 64.0], np.float32)
_GREY = np.array([0.299, 0.587, 0.114], np.float32)  # PIL's luminance, which its Color enhancement fades towards


def crafter_textures(reader: str):
    """Crafter's own texture store (``crafter.engine.Textures``), for ``reader`` (the option
    that needs it, named in the error when Crafter is missing)."""
    try:
        import crafter
        from crafter import engine
    except ImportError:
        raise ImportError(f"{reader} reads Crafter's textures: pip install crafter") from None
    return engine.Textures(str(Path(crafter.__file__).parent / "assets"))


@functools.lru_cache(1)
def textures() -> np.ndarray:
    """float32 [T, 7, 7, 3]: each of :data:`TEXTURES` as Crafter draws it at 7 pixels
    (objects alpha-blended over their ground), rows and columns as in the frame."""
    tex = crafter_textures("model.landmarks")

    def get(name: str) -> np.ndarray:
        return tex.get(name, (UNIT, UNIT)).astype(np.float32).transpose(1, 0, 2)  # Crafter keeps (x, y)

    out = [get(name)[..., :3] for name in MATERIALS]
    for name, ground in OBJECTS:
        obj, below = get(name), get(ground)[..., :3]
        alpha = obj[..., 3:] / 255 if obj.shape[-1] == 4 else 1.0
        # Crafter blends in [0, 1] and truncates to uint8
        out.append(np.floor(255 * (alpha * obj[..., :3] / 255 + (1 - alpha) * below / 255)))
    return np.stack(out).astype(np.float32)


@functools.lru_cache(1)
def _vignette() -> np.ndarray:
    """float32 [7, 9, 7, 7]: how much of the night's noise covers each pixel of each
    world cell at full strength (Crafter's ``LocalView._vignette`` over the 63 x 49 view)."""
    xs = np.linspace(-1, 1, WORLD_COLS * UNIT)
    ys = np.linspace(-1, 1, WORLD_ROWS * UNIT)
    v = 1 - np.exp(-0.5 * (xs[None, :] ** 2 + ys[:, None] ** 2) / 0.5 ** 2)  # [49, 63]
    return v.reshape(WORLD_ROWS, UNIT, WORLD_COLS, UNIT).transpose(0, 2, 1, 3).astype(np.float32)


@functools.lru_cache(1)
def _terms() -> tuple[np.ndarray, ...]:
    """Each texture's pixels [147, T] flat, and what a weighted squared error against it
    in any light needs: the texture desaturated as the night does (``D``), and the
    products ``tex * tex``, ``tex * D``, ``D * D``."""
    tex = textures().reshape(len(TEXTURES), -1, 3)
    desat = 0.6 * (tex @ _GREY)[..., None] + 0.4 * tex
    tex, desat = tex.reshape(len(TEXTURES), -1).T, desat.reshape(len(TEXTURES), -1).T
    return tuple(np.ascontiguousarray(a, np.float32) for a in (tex, desat, tex * tex, tex * desat, desat * desat))


def fit_errors(patches: np.ndarray, step: int) -> np.ndarray:
    """float [63, T]: how badly each texture fits each world cell (row-major) at step
    ``step``'s light, as a sum over the cell's 147 numbers of squared errors in units of
    the noise expected at that pixel (3 for Crafter's rounding, more in the dark).

    In light ``l`` with noise share ``m`` at a pixel, Crafter draws a texture pixel ``t`` as
    ``l t + (1 - l) 0.5 ((1 - m) D(t) + m n + tint)``, ``D`` its desaturation and ``n``
    uniform noise: affine in ``t``, so the errors against every texture are a few matrix
    products (``l t + c D(t)`` against the frame less the texture-free part ``b``)."""
    light = float(daylight(step))
    tex, desat, tt, td, dd = _terms()
    y = patches.reshape(WORLD_ROWS * WORLD_COLS, -1)
    if light >= 0.5:  # no noise: the same weight and offset at every pixel
        look = light * tex + (1 - light) * 0.5 * desat  # [147, T]
        y = y - (1 - light) * 0.5 * _tint()
        return ((y * y).sum(1, keepdims=True) - 2 * y @ look + (look * look).sum(0)) / 9.0
    m = 2 * (0.5 - light) * _vignette_flat()  # [63, 147]
    c = (1 - light) * 0.5 * (1 - m)
    w = 1.0 / (((1 - light) * 0.5 * _NOISE_STD) ** 2 * m * m + 9.0)
    y = y - (1 - light) * 0.5 * (m * _NOISE_MEAN + _tint())
    wy, wc = w * y, w * c
    return ((wy * y).sum(1, keepdims=True) - 2 * (light * wy @ tex + (wy * c) @ desat)
            + light * light * w @ tt + 2 * light * wc @ td + (wc * c) @ dd)


@functools.lru_cache(1)
def _vignette_flat() -> np.ndarray:
    """:func:`_vignette` as [63, 147], one number per pixel and channel, like a flat patch."""
    return np.repeat(_vignette().reshape(WORLD_ROWS * WORLD_COLS, -1), 3, axis=1)


@functools.lru_cache(1)
def _tint() -> np.ndarray:
    return np.tile(_TINT, UNIT * UNIT).astype(np.float32)


def cell_patches(frame: np.ndarray) -> np.ndarray:
    """float32 [7, 9, 7, 7, 3]: the pixels of each world cell of a uint8 [64, 64, 3] frame."""
    world = frame[: WORLD_ROWS * UNIT, : WORLD_COLS * UNIT].astype(np.float32)
    return world.reshape(WORLD_ROWS, UNIT, WORLD_COLS, UNIT, 3).transpose(0, 2, 1, 3, 4)


def asleep(frame: np.ndarray) -> bool:
    """Crafter greys the whole view while the player sleeps: red and green are equal."""
    world = frame[: WORLD_ROWS * UNIT: 2, : WORLD_COLS * UNIT: 2].astype(np.int16)  # every other pixel will do
    return float(np.abs(world[..., 0] - world[..., 1]).mean()) < 2.0


def classify(frame: np.ndarray, step: int) -> np.ndarray:
    """uint8 [7, 9]: the class of each world cell of ``frame`` (1 + its index in
    :data:`TEXTURES`), :data:`UNKNOWN` where no texture fits clearly, :data:`PLAYER` at
    the player's own cell. ``step`` is the episode's step count, for the light."""
    out = np.full((WORLD_ROWS, WORLD_COLS), UNKNOWN, np.uint8)
    if not asleep(frame):
        err = fit_errors(cell_patches(frame), step).reshape(WORLD_ROWS, WORLD_COLS, -1)  # [7, 9, T]
        two = np.partition(err, 1, axis=-1)[..., :2]
        best = err.argmin(-1)
        ok = (two[..., 0] <= FIT * 147) & (two[..., 1] - two[..., 0] >= MARGIN)
        out[ok] = best[ok] + 1
    out[WORLD_ROWS // 2, WORLD_COLS // 2] = PLAYER
    return out

"""Crafter (danijar/crafter), the embedded default world: 2-D Minecraft, no Java, headless."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.base import Env, EnvError, StepResult
from envs.observation import VITALS, Observation

VOID = "void"  # cells outside the world
DAY_LENGTH = 300  # Crafter's day, in steps
PLANT_RIPE = 300  # a plant is ripe once it has grown more than this many updates (Plant.ripe)


def daylight(step: int | np.ndarray) -> np.ndarray:
    """Crafter's light at step count ``step`` (its ``Env._update_time``): ~0.8 at the
    start, 1 at step 60, 0 at step 210 of each day. Below 1 the frame is blended towards
    a desaturated blue tint; below 0.5 noise covers it too, more towards the edges, so
    that at midnight only the cells next to the player can be made out."""
    progress = np.asarray(step, np.float64) / DAY_LENGTH % 1 + 0.3
    return 1 - np.abs(np.cos(np.pi * progress)) ** 3


def _deterministic_env_class() -> type:
    """Crafter's Env, made reproducible across processes.

    Crafter keeps the objects of each chunk in a ``set``. ``Env._balance_object`` picks
    the creature to despawn with ``creatures[random.randint(...)]`` from a list built by
    iterating that set, and a set of objects iterates in ``id()`` (memory address)
    order, which differs between processes. The same seed and actions then diverge as
    soon as a creature despawns (around step 50 in a typical episode). Sorting the
    chunk's objects by position (one object per cell, so a total order) removes that.
    """
    import crafter

    class DeterministicCrafter(crafter.Env):
        def _balance_chunk(self, chunk, objs):  # noqa: ANN001 - crafter's signature
            ordered = sorted(objs, key=lambda obj: (int(obj.pos[0]), int(obj.pos[1])))
            super()._balance_chunk(chunk, ordered)

    return DeterministicCrafter


class CrafterEnv(Env):
    """Crafter behind :class:`envs.Env`, with a structured :class:`Observation`.

    ``reset(seed)`` always builds the world of that seed, whatever came before, so an
    episode is a function of (seed, actions) alone.
    """

    name = "crafter"

    def __init__(
        self,
        size: int = 64,
        area: int = 64,
        view: int = 9,
        max_steps: int = 10000,
        reward: bool = True,
        seed: int = 0,
    ):
        try:
            import crafter
        except ImportError as err:  # pragma: no cover - crafter is a core dependency
            raise EnvError("crafter is not installed: pip install crafter==1.8.3") from err
        self._constants = crafter.constants
        self._env = _deterministic_env_class()(
            area=(area, area), view=(view, view), size=(size, size),
            reward=reward, length=max_steps, seed=seed,
        )
        self._seed = seed
        self._items = tuple(k for k in crafter.constants.items if k not in VITALS)
        self._achievements = tuple(crafter.constants.achievements)
        self._unlocked: set[str] = set()
        self._mat_lut: np.ndarray | None = None
        # Crafter shows a view x (view - item rows) window of the world above the items.
        item_rows = int(np.ceil(len(crafter.constants.items) / view))
        self._grid = (view, view - item_rows)  # (cols along x, rows along y)
        self._last_frame: np.ndarray | None = None

    # -- interface ---------------------------------------------------------------------
    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(self._constants.actions)

    @property
    def achievements(self) -> tuple[str, ...]:
        return self._achievements

    @property
    def max_steps(self) -> int:
        return int(self._env._length)

    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        if seed is not None:
            # Crafter seeds episode k of an env with hash((seed, k)); pinning k makes the
            # world depend on ``seed`` alone. hash() of a tuple of ints is not salted.
            self._env._seed = int(seed)
            self._env._episode = 0
            self._seed = int(seed)
        frame = self._env.reset()
        self._unlocked = set()
        self._mat_lut = None
        return self._observe(frame), {"seed": self._seed}

    def step(self, action: int) -> StepResult:
        if self._env._player is None:
            raise EnvError("step() before reset()")
        frame, reward, done, info = self._env.step(int(action))
        obs = self._observe(frame)
        dead = self._env._player.health <= 0
        unlocked = sorted(obs.achievements - self._unlocked)
        self._unlocked |= obs.achievements
        terminated = bool(dead)
        truncated = bool(done and not dead)
        return obs, float(reward), terminated, truncated, {"unlocked": unlocked}

    def close(self) -> None:
        self._env = self._env  # crafter holds no external resources

    def plants(self) -> list[tuple[int, tuple[int, int], int, int]]:
        """Every plant in the world now, as (a key that stays the plant's while it lives,
        its cell (x, y), its growth: ripe above PLANT_RIPE, its open sides: ground beside it with
        nothing on it, where a cow, zombie or skeleton could step, each of which kills it).
        For diagnostics (``distill.plants``); a player sees only the saplings in its view."""
        world = self._env._world
        out = []
        for obj in world.objects:
            if type(obj).__name__ != "Plant":
                continue
            x, y = int(obj.pos[0]), int(obj.pos[1])
            sides = sum(world[(x + dx, y + dy)][0] in ("grass", "sand", "path") and world[(x + dx, y + dy)][1] is None
                        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)))
            out.append((id(obj), (x, y), int(obj.grown), int(sides)))
        return out

    # -- observation -------------------------------------------------------------------
    def _observe(self, frame: np.ndarray) -> Observation:
        player = self._env._player
        inv = player.inventory
        return Observation(
            frame=frame,
            inventory={k: int(inv[k]) for k in self._items},
            vitals={k: float(inv[k]) for k in VITALS},
            local_view=self._local_view(player),
            position=(int(player.pos[0]), int(player.pos[1])),
            facing=(int(player.facing[0]), int(player.facing[1])),
            achievements=frozenset(k for k, v in player.achievements.items() if v > 0),
            step=int(self._env._step),
            daylight=float(self._env._world.daylight),
            extras={"sleeping": bool(player.sleeping)},
        )

    def _local_view(self, player: Any) -> np.ndarray:
        world = self._env._world
        if self._mat_lut is None or len(self._mat_lut) < len(world._mat_names):
            self._mat_lut = np.array(
                [VOID if world._mat_names[i] is None else world._mat_names[i]
                 for i in range(len(world._mat_names))],
                dtype=object,
            )
        cols, rows = self._grid
        ox, oy = cols // 2, rows // 2
        px, py = int(player.pos[0]), int(player.pos[1])
        width, height = world._mat_map.shape
        x0, y0 = px - ox, py - oy
        mats = np.zeros((cols, rows), np.int64)  # index 0 names the void
        objs = np.zeros((cols, rows), np.int64)
        ax0, ay0 = max(x0, 0), max(y0, 0)
        ax1, ay1 = min(x0 + cols, width), min(y0 + rows, height)
        if ax0 < ax1 and ay0 < ay1:
            mats[ax0 - x0:ax1 - x0, ay0 - y0:ay1 - y0] = world._mat_map[ax0:ax1, ay0:ay1]
            objs[ax0 - x0:ax1 - x0, ay0 - y0:ay1 - y0] = world._obj_map[ax0:ax1, ay0:ay1]
        names = self._mat_lut[mats]
        for i, j in zip(*np.nonzero(objs)):
            obj = world._objects[objs[i, j]]
            if obj is not None:
                names[i, j] = _object_name(obj)
        return names.T  # rows along y, as in the frame


def _object_name(obj: Any) -> str:
    name = type(obj).__name__.lower()
    if name == "plant" and getattr(obj, "ripe", False):
        return "ripe_plant"
    return name

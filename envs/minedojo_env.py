"""MineDojo (real Minecraft 1.11.2 via Malmo), optional: ``pip install -e '.[minedojo]'`` and Java 8.

Checks that name what is missing before Minecraft is launched, and the live env; the
translation of observations, and how each field maps, is in :mod:`envs.minedojo_obs`.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envs.base import Env, EnvError, StepResult
from envs.minedojo_actions import ActionTable, item_name, minedojo_action_table
from envs.minedojo_obs import (  # noqa: F401 - re-exported for callers and tests
    _scalar,
    facing_from_yaw,
    inventory_counts,
    local_view_from_voxels,
    observation_from_minedojo,
    unlocked_by_change,
    vitals_from_life_stats,
)
from envs.observation import Observation

log = logging.getLogger(__name__)

INSTALL_HINT = "see README section 'MineDojo'"


# -- what must be installed ------------------------------------------------------------
def import_minedojo() -> Any:
    try:
        import minedojo
    except ImportError as err:
        missing = err.name in (None, "minedojo")
        what = "minedojo is not installed" if missing else f"minedojo needs {err.name!r}"
        raise EnvError(
            f"{what} ({err}): pip install -e '.[minedojo]' after gym==0.21.0 is built with "
            f"setuptools<66; {INSTALL_HINT}"
        ) from None
    except Exception as err:  # numpy 2, a newer gym: fails inside minedojo's own imports
        raise EnvError(
            f"minedojo fails to import ({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); "
            f"it needs numpy<2 and gym==0.21.0; {INSTALL_HINT}"
        ) from None
    return minedojo


def java_major_version(output: str) -> int | None:
    """8 for ``version "1.8.0_392"``, 17 for ``version "17.0.15"``; None when unreadable."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        return None
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first


def check_java() -> None:
    """Raise EnvError unless ``java`` (and ``$JAVA_HOME/bin/java``, which Gradle uses) is Java 8."""
    candidates = [("java on PATH", shutil.which("java"))]
    if os.environ.get("JAVA_HOME"):
        candidates.append(("$JAVA_HOME/bin/java", str(Path(os.environ["JAVA_HOME"], "bin", "java"))))
    for label, java in candidates:
        if not java or not os.access(java, os.X_OK):
            raise EnvError(f"MineDojo needs Java 8 (JDK 8) but there is no {label}: "
                           f"install openjdk-8-jdk and put it first on PATH; {INSTALL_HINT}")
        try:
            proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
            out = proc.stderr + proc.stdout
        except (OSError, subprocess.TimeoutExpired) as err:
            out = str(err)
        major = java_major_version(out)
        if major != 8:
            found = f"Java {major}" if major else repr(out.strip().splitlines()[:1])
            raise EnvError(f"MineDojo needs Java 8 (JDK 8) but {label} ({java}) is {found}: "
                           f"put a JDK 8 first on PATH and in JAVA_HOME; {INSTALL_HINT}")


def check_display() -> None:
    """Minecraft opens a window: without $DISPLAY, MineDojo runs it under ``xvfb-run``."""
    if not os.environ.get("DISPLAY") and os.environ.get("MINEDOJO_HEADLESS") != "1":
        log.info("no DISPLAY: setting MINEDOJO_HEADLESS=1 so Minecraft runs under xvfb-run")
        os.environ["MINEDOJO_HEADLESS"] = "1"  # read by MineDojo's launchClient.sh
    if os.environ.get("MINEDOJO_HEADLESS") == "1" and not shutil.which("xvfb-run"):
        raise EnvError("MineDojo without a display needs xvfb-run: apt install xvfb "
                       f"(or set DISPLAY); {INSTALL_HINT}")


def minecraft_build(minedojo: Any) -> Path | None:
    """What lets Minecraft start without a fresh download: MalmoMod's fat jar, or the Gradle
    caches (Gradle 4.10.2, ForgeGradle's Minecraft) an earlier launch left; None if neither."""
    libs = Path(minedojo.__file__).parent / "sim" / "Malmo" / "Minecraft" / "build" / "libs"
    jars = sorted(libs.glob("MalmoMod-*-fat.jar"))
    if jars:
        return jars[0]
    gradle = Path(os.environ.get("GRADLE_USER_HOME") or Path.home() / ".gradle")
    wrapper = any((gradle / "wrapper" / "dists").glob("gradle-4.10.2-*"))
    return gradle if wrapper and (gradle / "caches" / "minecraft").is_dir() else None


# Lines of Minecraft's launch log that say why it failed, and what they mean.
_LAUNCH_CAUSES = (
    ("MixinGradle", "MixinGradle:dcfaf61 is gone from jitpack, see MineDojo issue #113"),
    ("UnknownHostException", "no network for Gradle's downloads"),
    ("UnsupportedClassVersionError", "a Java other than 8 ran Minecraft"),
    ("command not found", ""),
)


def launch_error(err: BaseException, build: Path | None) -> EnvError:
    """A one-line EnvError for a Minecraft launch that failed, naming the likely cause."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    why = lines[-1] if lines else ""
    for marker, meaning in _LAUNCH_CAUSES:
        hit = next((ln for ln in lines if marker in ln), None)
        if hit:
            why = f"{meaning}: {hit}" if meaning else hit
            break
    why = f"{type(err).__name__}: {why[:240]}"
    if build is None:
        return EnvError(
            f"the Minecraft build is missing and building it failed ({why}); the first launch "
            "builds it with Gradle and Java 8, downloading Gradle 4.10.2, Forge and Minecraft "
            f"1.11.2 (MINEDOJO_DEBUG_LOG=1 shows the log); {INSTALL_HINT}")
    return EnvError(
        f"Minecraft failed to launch ({why}); MINEDOJO_DEBUG_LOG=1 shows the log; {INSTALL_HINT}")


# -- the live env ----------------------------------------------------------------------
class MineDojoEnv(Env):
    """A MineDojo task behind :class:`envs.Env`.

    The world seed is fixed when Minecraft launches, so ``reset(seed)`` with a new seed
    relaunches Minecraft (slow: MineDojo recompiles its mod on each launch unless a
    MalmoMod jar is built); a fixed ``world_seed`` keeps one world and one process.
    MineDojo itself is not deterministic (real-time ticks, mobs), seed or not.
    """

    name = "minedojo"

    def __init__(
        self,
        task_id: str = "open-ended",
        image_size: tuple[int, int] | list[int] = (64, 64),
        world_seed: int | None = None,
        max_steps: int = 10000,
        view: int = 9,
        **task_kwargs: Any,
    ):
        self._minedojo = import_minedojo()
        check_java()
        check_display()
        self._task_id = task_id
        self._image_size = (int(image_size[0]), int(image_size[1]))
        self._world_seed = world_seed
        self._max_steps = int(max_steps)
        self._view = int(view)
        self._task_kwargs = task_kwargs
        self._env: Any = None
        self._built_seed: int | None = None
        self._build(world_seed)  # makes the spaces; Minecraft starts at the first reset
        self._table: ActionTable = minedojo_action_table(self._env.action_space.nvec)
        from minedojo.sim.mc_meta import mc

        items = [item_name(i) for i in mc.ALL_ITEMS if i != "air"]
        crafts = [item_name(i) for i in mc.ALL_CRAFT_SMELT_ITEMS]
        self._achievements = (*(f"collect_{i}" for i in items), *(f"craft_{i}" for i in crafts))
        if minecraft_build(self._minedojo) is None:
            log.warning("no Minecraft build found (MalmoMod jar or ~/.gradle caches): the first "
                        "reset builds it with Gradle (Java 8, network, 10+ minutes)")
        self._raw: Mapping[str, Any] | None = None
        self._inventory: dict[str, int] = {}
        self._unlocked: set[str] = set()
        self._steps = 0

    def _build(self, world_seed: int | None) -> None:
        from minedojo.tasks import ALL_TASKS_SPECS

        if self._env is not None:
            self._env.close()
        kwargs: dict[str, Any] = {"image_size": self._image_size, **self._task_kwargs}
        if world_seed is not None:  # a string: MineDojo reads a falsy seed (0) as "random"
            kwargs.update(world_seed=str(world_seed), seed=int(world_seed))
        spec = ALL_TASKS_SPECS.get(self._task_id)
        if spec is None or "voxel_size" not in spec:  # programmatic tasks fix a 3x3x3 one
            r = self._view // 2
            box = dict(xmin=-r, xmax=r, ymin=-1, ymax=1, zmin=-r, zmax=r)  # floor, feet, head
            kwargs.update(use_voxel=True, voxel_size=box)
        # minedojo.make pops keys from the task's shared spec, so a second make of the same
        # task fails (KeyError 'prompt'); keep a copy to put back.
        saved = copy.deepcopy(spec) if spec is not None else None
        try:
            self._env = self._minedojo.make(task_id=self._task_id, **kwargs)
        except (ValueError, AssertionError, TypeError) as err:
            raise EnvError(f"MineDojo cannot make task {self._task_id!r}: {err}") from None
        finally:
            if saved is not None:
                ALL_TASKS_SPECS[self._task_id] = saved
        self._built_seed = world_seed

    @property
    def action_names(self) -> tuple[str, ...]:
        return self._table.names

    @property
    def achievements(self) -> tuple[str, ...]:
        return self._achievements

    @property
    def max_steps(self) -> int:
        return self._max_steps

    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        wanted = self._world_seed if self._world_seed is not None else seed
        if self._env is None or (wanted is not None and wanted != self._built_seed):
            self._build(wanted if wanted is not None else self._built_seed)
        try:
            raw = self._env.reset()
        except Exception as err:  # noqa: BLE001 - Malmo raises anything; say it in one line
            raise launch_error(err, minecraft_build(self._minedojo)) from err
        self._raw, self._steps, self._unlocked = raw, 0, set()
        self._inventory = inventory_counts(raw["inventory"])
        obs = observation_from_minedojo(raw, 0)
        return obs, {"seed": self._built_seed, "task_id": self._task_id}

    def step(self, action: int) -> StepResult:
        if self._raw is None:
            raise EnvError("step() before reset()")
        vec, problem = self._table.vector(int(action), self._raw["inventory"]["name"])
        try:
            raw, reward, done, _ = self._env.step(vec)
        except Exception as err:  # noqa: BLE001
            first = (str(err).strip().splitlines() or [""])[0][:240]
            raise EnvError(f"Minecraft failed during step ({type(err).__name__}: {first})") from err
        self._steps += 1
        inventory = inventory_counts(raw["inventory"])
        crafted = raw.get("delta_inv", {}).get("inc_name_by_craft", ())
        new = unlocked_by_change(self._inventory, inventory, crafted) - self._unlocked
        self._unlocked |= new
        self._raw, self._inventory = raw, inventory
        obs = observation_from_minedojo(raw, self._steps, frozenset(self._unlocked))
        terminated = bool(done) or obs.vitals["health"] <= 0
        truncated = not terminated and self._steps >= self._max_steps
        info: dict[str, Any] = {"unlocked": sorted(new),
                                "success": bool(getattr(self._env, "is_successful", False))}
        if problem:
            info["invalid_action"] = problem
        return obs, float(reward), terminated, truncated, info

    def close(self) -> None:
        if self._env is not None:
            self._env.close()  # kills the Minecraft process, if one was launched
        self._env, self._raw = None, None

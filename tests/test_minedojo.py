"""The MineDojo adapter: translation and errors without Minecraft.

Tests that need the ``minedojo`` package take the ``md`` fixture, which skips them where it
is not installed (its install needs setuptools<66, gym==0.21.0 and numpy<2; see the
README). Minecraft itself (Java 8, the Malmo build) is never launched: the simulator's
``reset``/``step`` are replaced by observations sampled from MineDojo's own spaces.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import envs
from envs import minedojo_env as mde
from envs.minedojo_actions import FN_CRAFT, FN_PLACE, FUNC, SLOT_ARG, build_action_table
from envs.observation import VITALS

NVEC = [3, 3, 4, 25, 25, 8, 244, 36]  # MineDojo's MultiDiscrete with cam_interval=15


def fake_java(tmp_path: Path, version: str) -> Path:
    """A ``java`` that answers ``-version`` like a JDK of ``version``, alone on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    java = bindir / "java"
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2024-01-01\' >&2\n')
    java.chmod(0o755)
    return bindir


# -- without minedojo --------------------------------------------------------------------
def test_missing_package_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "minedojo", None)  # import minedojo -> ImportError
    with pytest.raises(envs.EnvError) as err:
        envs.make("minedojo", task_id="open-ended", image_size=[64, 64], world_seed=None, max_steps=10)
    msg = str(err.value)
    assert "pip install -e '.[minedojo]'" in msg and "MineDojo" in msg and "\n" not in msg


@pytest.mark.parametrize("version", ["17.0.15", None])
def test_package_present_but_no_java_8_names_java_8(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str | None
) -> None:
    monkeypatch.setitem(sys.modules, "minedojo", types.ModuleType("minedojo"))
    bindir = fake_java(tmp_path, version) if version else tmp_path
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(envs.EnvError) as err:
        envs.make("minedojo", task_id="open-ended", image_size=[64, 64], world_seed=None, max_steps=10)
    msg = str(err.value)
    assert "Java 8" in msg and "\n" not in msg
    if version:
        assert "Java 17" in msg


def test_java_8_passes_and_java_home_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(fake_java(tmp_path, "1.8.0_392")))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    mde.check_java()
    home = tmp_path / "jdk17"
    fake_java(home, "17.0.2")
    monkeypatch.setenv("JAVA_HOME", str(home))
    with pytest.raises(envs.EnvError, match=r"JAVA_HOME.*Java 17"):
        mde.check_java()


@pytest.mark.parametrize(("text", "major"), [
    ('openjdk version "1.8.0_392"', 8), ('java version "1.8.0_291"', 8),
    ('openjdk version "17.0.15" 2025-04-15', 17), ('openjdk version "11"', 11), ("garbage", None),
])
def test_java_major_version(text: str, major: int | None) -> None:
    assert mde.java_major_version(text) == major


def test_no_display_and_no_xvfb_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("MINEDOJO_HEADLESS", "")  # so monkeypatch undoes what check_display sets
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(envs.EnvError, match="xvfb"):
        mde.check_display()


def test_launch_errors_name_what_is_missing(tmp_path: Path) -> None:
    crash = EOFError("Exception in thread main\n\nMinecraft process finished unexpectedly.")
    missing = str(mde.launch_error(crash, None))
    assert "Minecraft build is missing" in missing and "Java 8" in missing and "\n" not in missing
    failed = str(mde.launch_error(crash, tmp_path / "MalmoMod-0.37.0-fat.jar"))
    assert "failed to launch" in failed and "finished unexpectedly" in failed and "\n" not in failed
    gradle = EOFError("FAILURE\n   > Could not find com.github.SpongePowered:MixinGradle:dcfaf61.\nmore\nfinished")
    assert "issue #113" in str(mde.launch_error(gradle, None))


def test_build_is_found_from_jar_or_gradle_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package = types.SimpleNamespace(__file__=str(tmp_path / "minedojo" / "__init__.py"))
    monkeypatch.setenv("GRADLE_USER_HOME", str(tmp_path / "gradle"))
    assert mde.minecraft_build(package) is None
    (tmp_path / "gradle" / "caches" / "minecraft").mkdir(parents=True)
    (tmp_path / "gradle" / "wrapper" / "dists" / "gradle-4.10.2-all").mkdir(parents=True)
    assert mde.minecraft_build(package) == tmp_path / "gradle"
    libs = tmp_path / "minedojo" / "sim" / "Malmo" / "Minecraft" / "build" / "libs"
    libs.mkdir(parents=True)
    (libs / "MalmoMod-0.37.0-fat.jar").touch()
    assert mde.minecraft_build(package) == libs / "MalmoMod-0.37.0-fat.jar"


@pytest.mark.parametrize(("yaw", "facing"), [
    (0, (0, 1)), (44, (0, 1)), (46, (-1, 0)), (90, (-1, 0)), (-90, (1, 0)),
    (180, (0, -1)), (-180, (0, -1)), (-134.5, (1, 0)), (-136, (0, -1)), (270, (1, 0)),
])
def test_facing_from_yaw(yaw: float, facing: tuple[int, int]) -> None:
    assert mde.facing_from_yaw(yaw) == facing


def test_inventory_sums_slots_and_skips_air() -> None:
    inv = {"name": np.array(["log", "crafting table", "air", "log"]),
           "quantity": np.array([3.0, 1.0, 64.0, 2.0], np.float32)}
    assert mde.inventory_counts(inv) == {"log": 5, "crafting_table": 1}


def test_local_view_orientation_floor_and_player() -> None:
    names = np.full((3, 3, 3), "air", dtype=object)  # (x, y, z), y: floor, feet, head
    names[:, 0, :] = "grass"
    names[2, 1, 0] = "log"  # east, feet level, north
    names[0, 0, 2] = "water"  # west, floor, south
    view = mde.local_view_from_voxels(names)
    assert view.shape == (3, 3) and view.dtype == object
    assert view[0, 2] == "log" and view[2, 0] == "water" and view[1, 1] == "player"
    assert view[0, 0] == "grass"


def test_achievements_from_inventory_changes() -> None:
    got = mde.unlocked_by_change({"log": 1, "dirt": 4}, {"log": 2, "planks": 4, "dirt": 3}, ["planks"])
    assert got == {"collect_log", "craft_planks"}


def test_action_table_resolves_slots_and_stays_in_bounds() -> None:
    table = build_action_table(NVEC, ["planks", "crafting_table"], ["crafting table", "dirt"], ["wooden_pickaxe"])
    assert table.names[:2] == ("noop", "forward") and len(set(table.names)) == len(table)
    nvec = np.array(NVEC)
    assert np.all((table.vectors >= 0) & (table.vectors < nvec))
    assert table.vectors[table.index("noop")].tolist() == [0, 0, 0, 12, 12, 0, 0, 0]
    assert table.vectors[table.index("turn_right_90"), 4] == 18
    craft = table.vectors[table.index("craft_crafting_table")]
    assert craft[FUNC] == FN_CRAFT and craft[6] == 1
    slots = ["air"] * 36
    slots[7] = "crafting table"
    vec, problem = table.vector(table.index("place_crafting_table"), slots)
    assert problem is None and vec[FUNC] == FN_PLACE and vec[SLOT_ARG] == 7
    vec, problem = table.vector(table.index("equip_wooden_pickaxe"), slots)
    assert "wooden_pickaxe" in problem and vec.tolist() == table.noop.tolist()


# -- with minedojo -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def md() -> Any:
    return pytest.importorskip("minedojo")


def sample(space: Any, rng: np.random.Generator, vocab: list[str]) -> Any:
    """An observation from a MineDojo space; its Text.sample() is broken, names come from ``vocab``."""
    from minedojo.sim import spaces

    if isinstance(space, spaces.Dict):
        return {k: sample(v, rng, vocab) for k, v in space.spaces.items()}
    if isinstance(space, spaces.Text):
        return rng.choice(vocab, size=space.shape)
    space.seed(int(rng.integers(2**31)))
    return space.sample()


@pytest.fixture()
def make_env(md: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build MineDojoEnv without Java: its checks pass, and launching Minecraft raises."""
    from minedojo.sim.bridge.mc_instance.instance import MinecraftInstance

    def no_launch(*args: Any, **kwargs: Any) -> None:
        raise EOFError("tests never launch Minecraft")

    monkeypatch.setattr(MinecraftInstance, "launch", no_launch)
    monkeypatch.setattr(mde, "check_java", lambda: None)
    monkeypatch.setattr(mde, "check_display", lambda: None)
    return lambda **kw: envs.make("minedojo", **{"image_size": [48, 64], "world_seed": None, "max_steps": 5, **kw})


def mc_vocab() -> list[str]:
    from minedojo.sim.mc_meta import mc

    return [name.replace("_", " ") for name in mc.ALL_ITEMS]  # as MineDojo's inventory writes them


@pytest.mark.parametrize(("task_id", "grid"), [
    ("open-ended", (9, 9)), ("harvest_milk_with_empty_bucket_and_cow", (3, 3)),  # its spec fixes 3x3x3 voxels
])
def test_translation_of_sampled_observations(make_env: Any, task_id: str, grid: tuple[int, int]) -> None:
    env = make_env(task_id=task_id)
    rng = np.random.default_rng(0)
    for _ in range(5):
        raw = sample(env._env.observation_space, rng, mc_vocab())
        obs = mde.observation_from_minedojo(raw, step=3)
        assert obs.frame.shape == (48, 64, 3) and obs.frame.dtype == np.uint8
        assert np.array_equal(obs.frame[..., 0], raw["rgb"][0])
        expected: dict[str, int] = {}
        for name, qty in zip(raw["inventory"]["name"], raw["inventory"]["quantity"]):
            if name != "air" and qty > 0:
                key = name.replace(" ", "_")
                expected[key] = expected.get(key, 0) + int(qty)
        assert obs.inventory == expected and " " not in "".join(obs.inventory)
        assert set(obs.vitals) == set(VITALS) and all(0 <= v <= 9 for v in obs.vitals.values())
        assert obs.vitals["health"] == pytest.approx(raw["life_stats"]["life"][0] * 9 / 20)
        assert obs.local_view.shape == grid and obs.local_view[obs.player_cell] == "player"
        assert all(isinstance(n, str) and " " not in n for n in obs.local_view.flat)
        assert all(type(c) is int for c in obs.position)
        assert obs.position == (int(np.floor(raw["location_stats"]["pos"][0])),
                                int(np.floor(raw["location_stats"]["pos"][2])))
        assert obs.facing == mde.facing_from_yaw(raw["location_stats"]["yaw"][0])
        assert obs.facing in {(0, 1), (0, -1), (1, 0), (-1, 0)}
        assert 0.0 <= obs.daylight <= 1.0 and obs.step == 3 and obs.achievements == frozenset()
        assert obs.extras["yaw"] == pytest.approx(float(raw["location_stats"]["yaw"][0]))
        assert isinstance(obs.text(), str)


def test_every_action_is_in_minedojo_space_and_translates(make_env: Any) -> None:
    env = make_env()
    inner = env._env
    nn = inner.env.env.env  # ARNNWrapper(DeltaInventory(ARMasks(NNActionSpace(sim))))
    table = env._table
    assert len(env.action_names) == len(table) and "craft_crafting_table" in env.action_names
    for i, name in enumerate(env.action_names):
        item = table.slot_items[i]
        slots = np.array(["air"] * 36, dtype=object)
        if item:
            slots[5] = item.replace("_", " ")
        vec, problem = table.vector(i, slots)
        assert problem is None, name
        assert inner.action_space.contains(vec), name
        nn._inventory_names = slots  # what MineDojo reads the slot argument against
        malmo, _ = nn.action(vec)
        if name.startswith("craft_"):
            made = malmo["craft"], malmo["craft_with_table"], malmo["smelt"]
            assert name.removeprefix("craft_") in made, name
        elif name.startswith(("place_", "equip_")):
            assert malmo[name.split("_", 1)[0]] == item, name


def test_reset_and_step_on_sampled_observations(make_env: Any) -> None:
    env = make_env(max_steps=3, world_seed=7)  # reset(7) then keeps this env, no rebuild
    sim = env._env.unwrapped
    rng = np.random.default_rng(1)
    vocab = ["air", "log", "dirt"]

    def observe() -> dict[str, Any]:
        raw = sample(sim.observation_space, rng, vocab)
        raw["life_stats"]["life"][:] = 20.0
        raw["inventory"]["quantity"][:] = np.floor(raw["inventory"]["quantity"])
        return raw

    first = observe()
    first["inventory"]["name"][:] = "air"
    sim.reset = lambda: first
    sim.step = lambda action: (observe(), 0.0, False, {})
    sim.set_inventory = lambda inventory_list, action: (observe(), 0.0, False, {})
    obs, info = env.reset(seed=7)
    assert obs.inventory == {} and obs.step == 0 and info["seed"] == 7
    for t in range(1, 4):
        obs, reward, terminated, truncated, info = env.step(env.action_names.index("attack"))
        assert obs.step == t and not terminated and truncated == (t == 3)
        assert all(a.startswith(("collect_", "craft_")) for a in obs.achievements)
        assert set(info["unlocked"]) <= obs.achievements <= set(env.achievements)
    assert any(a in obs.achievements for a in ("collect_log", "collect_dirt"))


def test_reset_failure_is_one_line(make_env: Any) -> None:
    env = make_env()

    def crash() -> None:
        raise EOFError("...\nMinecraft process finished unexpectedly. There was an error with Malmo.")

    env._env.unwrapped.reset = crash
    with pytest.raises(envs.EnvError) as err:
        env.reset()
    assert "Minecraft" in str(err.value) and "\n" not in str(err.value)


def test_new_seed_rebuilds_even_a_programmatic_task(make_env: Any) -> None:
    env = make_env(task_id="harvest_milk_with_empty_bucket_and_cow")
    for seed in (1, 2):  # MineDojo alone fails the second make of a task (KeyError 'prompt')
        env._build(seed)
        assert env._built_seed == seed

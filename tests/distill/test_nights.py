"""``distill.nights``: the player's nights read back from recorded Crafter episodes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import envs
from distill.rollouts import InlinePool, record_teacher
from distill.nights import DEATHS, DUSK, ENDINGS, death_cause, enclosed, night_report
from envs.crafter_env import DAY_LENGTH
from envs.episodes import read_index, write_index
from envs.recorder import EpisodeRecorder
from tests.conftest import run_cli

SEED = 2  # the teacher walls itself in at step 154 of day 0 on this seed
IDLER_SEED = 7  # a player who never moves lives into the dark here (to step 210)


def _view(rows: list[str]) -> np.ndarray:
    names = {"g": "grass", "s": "stone", "t": "tree", "w": "water", "p": "player", "z": "zombie", "a": "path",
             "l": "lava", "k": "skeleton", "r": "arrow"}
    return np.array([[names[c] for c in row] for row in rows], dtype=object)


def test_enclosed_is_a_pocket_nothing_can_walk_into():
    pocket = ["sssssssss", "sssssssss", "ssssgssss", "sssspssss", "sssssssss", "sssssssss", "sssssssss"]
    assert enclosed(_view(pocket))  # the player and one cell: the teacher's two-cell pocket
    assert enclosed(_view(pocket), limit=2) and not enclosed(_view(pocket), limit=1)
    opened = pocket[:1] + ["ssssgssss"] * 2 + pocket[3:]
    assert enclosed(_view(opened))  # three cells, the default limit
    assert not enclosed(_view(["ssssgssss"] * 3 + pocket[3:]))  # a corridor to the edge of the view
    # water walls a pocket in; a zombie stands on open ground, and a path is open ground
    assert enclosed(_view(["wwwwwwwww"] * 3 + ["wwwwpwwww"] + ["wwwwwwwww"] * 3))
    assert not enclosed(_view(["sssssssss"] * 3 + ["zzzzpssss"] + ["sssssssss"] * 3))
    assert not enclosed(_view(["sssssssss"] * 3 + ["aaaapssss"] + ["sssssssss"] * 3))


def test_a_death_is_read_from_the_last_view_and_vitals():
    def obs(rows: list[str], food: float = 5.0) -> envs.Observation:
        return envs.Observation(frame=np.zeros((64, 64, 3), np.uint8), inventory={}, local_view=_view(rows),
                                vitals={"health": 0.0, "food": food, "drink": 5.0, "energy": 5.0},
                                position=(0, 0), facing=(0, 1), achievements=frozenset(), step=0)

    field = ["ggggggggg"] * 3
    lava_left = obs(field + ["ggglpgggg"] + field)  # lava on the player's left
    assert lava_left.local_view[3, 3] == "lava"
    assert death_cause(lava_left, "move_left", obs(field + ["ggggpgggg"] + field)) == "lava"
    assert death_cause(lava_left, "move_right", obs(field + ["ggggpgggg"] + field)) == "other"  # stepped away
    quiet = obs(field + ["ggggpgggg"] + field)
    assert death_cause(quiet, "noop", obs(field + ["gggzpgggg"] + field)) == "zombie"
    assert death_cause(quiet, "noop", obs(["ggggggggg", "ggggggggg", "gggzggggg", "ggggpgggg"] + field)) \
        == "zombie"  # two steps off: it may have moved
    assert death_cause(quiet, "noop", obs(field + ["gzggpgggg"] + field)) == "other"  # three off
    assert death_cause(quiet, "noop", obs(["ggggggggg"] * 2 + ["kgggggggg"] + ["ggggpgggg"] + field)) == "skeleton"
    assert death_cause(quiet, "noop", obs(field + ["ggrgpgggg"] + field)) == "skeleton"  # its arrow
    assert death_cause(quiet, "noop", obs(field + ["ggggpgggg"] + field, food=0)) == "a vital at 0"
    # a zombie beside it outranks hunger; lava outranks both
    assert death_cause(quiet, "noop", obs(field + ["ggggpzggg"] + field, food=0)) == "zombie"
    assert death_cause(lava_left, "move_left", obs(field + ["ggggpzggg"] + field, food=0)) == "lava"


@pytest.fixture(scope="module")
def teacher_and_idler(tmp_path_factory):
    """The teacher's first day on SEED, and a player who stands where it spawned."""
    root = tmp_path_factory.mktemp("nights")
    record_teacher(root / "teacher", [SEED], max_steps=DAY_LENGTH, prior="full", pool=InlinePool())
    env = EpisodeRecorder(envs.make("crafter", max_steps=DAY_LENGTH), root / "idler", agent="idler",
                          config_hash="0123456789abcdef")
    env.reset(seed=IDLER_SEED)
    noop = env.action_names.index("noop")
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(noop)
        done = terminated or truncated
    env.close()
    return root / "teacher" / f"seed-{SEED}", root / "idler"


def test_the_teacher_walls_itself_in_at_dusk_and_an_idler_does_not(teacher_and_idler):
    teacher, idler = teacher_and_idler
    t = night_report([teacher])
    (row,) = t["per_episode"]
    assert t["enclosed_on_day_0"] == 1.0 and DUSK <= row["first_enclosed"] < DAY_LENGTH
    assert row["stone_at_dusk"] >= 2
    assert row["dark_steps"] == 105 and t["dark_enclosed"] > 0.5 and t["dark_asleep"] > 0.3
    # its errands at dusk: walls built, then asleep inside them for most of the evening
    dusk = t["dusk_subgoals"]
    assert {"build shelter", "sleep"} <= dusk.keys() and max(dusk, key=dusk.get) == "sleep", dusk
    assert abs(sum(dusk.values()) - 1) < 0.01
    i = night_report([idler])
    (row,) = i["per_episode"]
    assert i["enclosed_on_day_0"] == 0.0 and row["first_enclosed"] is None
    assert i["dusk_subgoals"] == {"(none)": 1.0}  # it recorded no subgoal
    assert row["dark_steps"] > 0 and i["dark_enclosed"] == 0.0 and i["dark_asleep"] == 0.0
    # dead in the open at night, with no stone
    assert row["length"] < DAY_LENGTH and row["stone_at_dusk"] == 0 and row["ending"] == ENDINGS[1]
    assert i["died_on_day_0"] == 1 and i["day_0_endings"][ENDINGS[1]] == 1 and sum(i["day_0_endings"].values()) == 1
    # killed by a zombie; the teacher lived to the end of its day
    assert row["death"] == "zombie" and i["deaths"] == {d: int(d == "zombie") for d in DEATHS}
    assert t["per_episode"][0]["death"] is None and sum(t["deaths"].values()) == 0


def test_an_episode_that_does_not_replay_is_an_error(teacher_and_idler, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(teacher_and_idler[0], run)
    (meta,) = read_index(run)
    write_index(run, [meta.model_copy(update={"seed": SEED + 1})])
    with pytest.raises(ValueError, match="replay"):
        night_report([run])


def test_cli_prints_the_report_and_one_line_errors(teacher_and_idler, tmp_path):
    proc = run_cli("distill", "nights", "--data", str(teacher_and_idler[1].parent), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["episodes"] == 2 and len(report["per_episode"]) == 2
    proc = run_cli("distill", "nights", "--data", str(teacher_and_idler[0]))
    assert proc.returncode == 0 and "in its pocket" in proc.stdout and "dark_enclosed" in proc.stdout
    assert "subgoals from dusk" in proc.stdout and "build shelter" in proc.stdout
    proc = run_cli("distill", "nights", "--data", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: run directory not found: {tmp_path / 'missing'}"], proc.stderr

"""Landmarks: the cells read from Crafter's frames (distill/cells.py) kept on a map that
follows the player, read as the nearest of each; the same in training and play."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from distill import cells
from distill import checkpoint as ck
from distill import landmarks as lm
from distill.augment import mirror_batch, mirror_for
from distill.config import DataConfig, DistillConfigError, load
from distill.data import DistillDataset, build_tokenizer
from distill.errors import CheckpointError
from distill.nights import enclosed
from distill.steps import concat_tables, load_steps
from distill.trainer import train
from distill.visual_memory import move_vectors
from envs.crafter_env import daylight
from tests.distill.conftest import play_student, random_moves, world_name

SIZE = 15
_POCKET = lm._pocket


def _crafter_world(env):
    return env._env._world  # the test's window on the truth


def test_the_nearest_landmarks_are_where_the_world_has_them():
    """Each landmark the memory points at, as it follows a random walk, is there in the
    world (moves misread now and then shift the map: 95 %); a pocket, named only from the
    evening on, is a tunnel the world has; and the nearest is the nearest of the cells the
    player has seen."""
    env = envs.make("crafter", max_steps=400)
    names = list(env.action_names)
    moves = move_vectors(names, len(names))
    walk = [i for i, m in enumerate(moves[:-1]) if m.any()]
    rng = np.random.default_rng(2)
    obs, _ = env.reset(2)
    memory = lm.LandmarkMemory(SIZE)
    world = _crafter_world(env)
    checked = right = pockets = walled = 0
    seen: set[tuple[int, int]] = set()
    move = (0, 0)
    kinds = set()
    for _ in range(160):  # by day, into the evening
        marks = memory.update(obs.frame, move, obs.step)
        px, py = obs.position
        seen |= {(px + c - 4, py + r - 3) for r in range(7) for c in range(9)}
        for k, name in enumerate(lm.LANDMARKS[:-1]):
            if marks[k, 0] == lm.NONE:
                continue
            kinds.add(name)
            x, y = px + int(marks[k, 0]), py + int(marks[k, 1])
            mat, obj = world[(x, y)]
            truth = obj.texture if obj is not None else mat
            checked += 1
            right += truth == name
        assert (marks[-1, 0] == lm.NONE) == (obs.step < lm.EVENING)
        if marks[-1, 0] != lm.NONE:
            pockets += 1
            walled += _a_tunnel(world, px + int(marks[-1, 0]), py + int(marks[-1, 1]))
        a = int(rng.choice(walk))
        move = tuple(moves[a])
        obs, _, term, trunc, _ = env.step(a)
        assert not (term or trunc)
    env.close()
    assert {"water", "tree", "stone"} <= kinds and checked > 200
    assert right / checked >= 0.95
    assert pockets > 40 and walled / pockets >= 0.9
    # the nearest: no seen cell of that landmark is closer than the one named
    px, py = obs.position
    marks = memory.update(obs.frame, move, obs.step)
    for k, name in enumerate(lm.LANDMARKS[:-1]):
        if marks[k, 0] == lm.NONE or name == "cow":
            continue
        d = abs(int(marks[k, 0])) + abs(int(marks[k, 1]))
        for x, y in seen:
            if abs(x - px) <= SIZE // 2 and abs(y - py) <= SIZE // 2 and world[(x, y)][0] == name:
                assert abs(x - px) + abs(y - py) >= d - 1, name  # a misread move shifts by one at most


def _a_tunnel(world, x: int, y: int) -> bool:
    """Is (x, y) in the world the entry of a tunnel E -> P -> Q: E ground, P and Q ground
    or stone to dig, the cells beside them walls or ground to wall up?"""
    ground, dig = ("grass", "sand", "path"), ("stone", "coal")
    closable = ground + ("stone", "tree", "coal", "iron", "diamond", "table", "furnace", "water")
    if world[(x, y)][0] not in ground:
        return False
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        tunnel = [world[(x + k * dx, y + k * dy)][0] for k in (1, 2)]
        sides = [world[(x + k * dx + s * dy, y + k * dy + s * dx)][0] for k in (1, 2) for s in (1, -1)]
        if all(c in ground + dig for c in tunnel) and all(c in closable for c in sides):
            return True
    return False


def test_the_pocket_is_the_teachers_choice():
    """On a drawn map: the fewest walls to build, then the nearest; water beside wins a
    pocket 12 steps; water is no wall where a skeleton's path is near; a cow blocks."""
    size, c = 21, 10
    sand, stone, water, path, cow = (cells.CLASS[n] for n in ("sand", "stone", "water", "path", "cow"))
    base = np.full((size, size), sand, np.uint8)
    base[c, c] = cells.PLAYER
    assert lm._pocket(base) == (c, c)  # open ground: walls everywhere to build, so here
    a = base.copy()  # a tunnel 4 to the right, walled: E (14, 10), P, Q, then stone
    a[c, c + 7] = stone
    a[c - 1:c + 2:2, c + 5:c + 7] = stone
    assert lm._pocket(a) == (c + 4, c)
    b = a.copy()  # and one 6 up, walled too: further
    b[c - 9, c] = stone
    b[c - 8:c - 6, c - 1:c + 2:2] = stone
    assert lm._pocket(b) == (c + 4, c)
    b[c - 7, c - 1] = water  # water beside its P: a drink in the night, and a wall
    assert lm._pocket(b) == (c, c - 6)
    b[c - 7, c - 5] = path  # a skeleton's ground near: the water is no wall, nor ground to wall up
    assert lm._pocket(b) == (c + 4, c)
    b[c, c + 5] = cow  # in P
    assert lm._pocket(b) not in ((c + 4, c), (c, c - 6))


def _drawn_maps(names: tuple[str, ...], share: tuple[float, ...], seed: int, count: int, reach, inventory: dict):
    """``count`` random maps of ``names`` (drawn with ``share``), each read out to ``reach(rng)``
    steps from the player: (the student's class map [33, 33], the teacher's SkillContext on
    the same ground, its 64 x 64 map with the player at its centre holding ``inventory``).
    The player's cell is ground to the student and an object in the teacher's view, so here
    the teacher sees sand under it."""
    from agents.executor.context import SkillContext
    from agents.executor.executor import CRAFTER_ACTIONS
    from agents.executor.navigation import Navigator
    from agents.executor.worldmap import CODE, WorldMap
    from agents.techtree import TechTree
    from tests.agents.conftest import make_obs

    size, c, centre = 33, 16, 32
    ys, xs = np.mgrid[:size, :size]
    rng = np.random.default_rng(seed)
    a = {n: i for i, n in enumerate(CRAFTER_ACTIONS)}
    for _ in range(count):
        drawn = rng.choice(len(names), size=(size, size), p=share)
        unknown = np.abs(xs - c) + np.abs(ys - c) > reach(rng)
        classes = np.array([cells.CLASS[n] for n in names], np.uint8)[drawn]
        classes[unknown] = cells.UNKNOWN
        classes[c, c] = cells.PLAYER
        obs = make_obs(inventory=inventory, position=(centre, centre))
        world = WorldMap(64)
        world.update(obs)
        world.mat[:, :] = CODE["unknown"]
        world.mat[centre - c:centre + c + 1, centre - c:centre + c + 1] = np.where(
            unknown, CODE["unknown"], np.array([CODE[n] for n in names], np.int8)[drawn])
        world.mat[centre, centre] = CODE["sand"]  # ground, not grass: PLAYER is no grass to the student
        world.obj[:, :] = 0
        yield classes, SkillContext(obs, world, Navigator(world, a), TechTree.load("full"), a)


def test_the_pocket_is_where_the_teachers_own_code_goes_on_drawn_maps():
    """``_pocket`` re-states ``agents.executor.shelter.find_pockets`` (distill may not import
    agents): on random maps both pick the same entry, or none. The teacher carrying stone
    to spare and no failed pockets, as the student assumes; the maps read 20 steps out (the
    teacher looks 24 steps out, no further)."""
    from agents.executor.shelter import find_pockets

    names = ("grass", "sand", "path", "stone", "tree", "water", "coal", "lava", "table")
    share = (0.42, 0.1, 0.04, 0.22, 0.08, 0.07, 0.03, 0.02, 0.02)
    picked = set()
    for classes, x in _drawn_maps(names, share, 0, 30, lambda rng: 20, {"stone": 99, "wood_pickaxe": 1}):
        teacher = find_pockets(x, k=1)
        want = None if not teacher else (teacher[0][0][0] - 16, teacher[0][0][1] - 16)
        assert lm._pocket(classes) == want
        picked.add(want)
    assert len(picked) > 20  # the maps differ where it matters


def test_the_pocket_is_looked_for_again_only_when_the_map_changes(monkeypatch):
    """From step EVENING the pocket is looked for at each step, but read back where the map
    is the last step's (standing still, nothing new in view): the same tokens as looking
    every time, with fewer looks."""
    seen, actions, moves = random_moves(5, lm.EVENING + 120, hold=0.9)
    looks = []
    monkeypatch.setattr(lm, "_pocket", lambda classes: looks.append(1) or _POCKET(classes))
    every, rereading = lm.LandmarkMemory(33), lm.LandmarkMemory(33)
    every._pocket = lm._pocket  # the module's function: no reading back
    evening = 0
    for i, obs in enumerate(seen):
        move = moves[actions[i - 1]] if i else (0, 0)
        before = len(looks)
        want = every.update(obs.frame, move, i)
        evening += len(looks) > before
        np.testing.assert_array_equal(rereading.update(obs.frame, move, i), want)
    assert evening == len(seen) - lm.EVENING  # every evening step looked once for `every`
    assert evening < len(looks) < 2 * evening - 10  # and `rereading` skipped some
    assert (want[-1] != lm.NONE).all()  # a pocket was found


def test_the_view_cells_are_the_maps_and_say_what_was_only_remembered():
    """With ``view`` the memory gives its landmarks unchanged and then each view cell as
    the map has it: what the frame shows where it reads, marked fresh; elsewhere (the
    dark's edges) what it remembers there, marked stale, and that is mostly still the
    world's ground."""
    observations, actions, moves = random_moves(seed=2, steps=280)
    plain, viewed = lm.LandmarkMemory(SIZE), lm.LandmarkMemory(lm.Reads(SIZE, view=True))
    k = len(lm.LANDMARKS)
    stale, stale_right = 0, 0
    for i, obs in enumerate(observations):
        move = moves[actions[i - 1]] if i else (0, 0)
        want = plain.update(obs.frame, move, obs.step)
        got = viewed.update(obs.frame, move, obs.step)
        assert got.shape == (k + lm.VIEW_CELLS, 2) and got.dtype == np.int8
        np.testing.assert_array_equal(got[:k], want)
        held, old = got[k:, 0].reshape(7, 9), got[k:, 1].reshape(7, 9).astype(bool)
        read = cells.classify(obs.frame, obs.step)
        np.testing.assert_array_equal(held[read != cells.UNKNOWN], read[read != cells.UNKNOWN])
        assert not old[read != cells.UNKNOWN].any() and not old[held == cells.UNKNOWN].any()
        for (r, c) in zip(*np.nonzero(old & (held != cells.PLAYER))):  # PLAYER: where it stood, not read since
            name = cells.TEXTURES[int(held[r, c]) - 1]
            if name in cells.MATERIALS and name not in ("table", "furnace"):
                stale += 1
                stale_right += world_name(int(held[r, c])) == obs.local_view[r, c]
    assert stale > 500, stale  # the walk met the dark, where the map fills in the view
    assert stale_right / stale >= 0.9, stale_right / stale


def test_landmark_maps_must_be_odd_and_hold_the_view():
    for size in (8, 10, 7):
        with pytest.raises(ValueError, match="odd number of cells of at least 9"):
            lm.LandmarkMemory(size)
    with pytest.raises(DistillConfigError, match="landmarks 20 must be 0, or odd"):
        load("tiny", ["model.landmarks=20"])


def _assert_as_played(table, recorded_run, moves: np.ndarray, **reads) -> None:
    """Each step of the step table holds the rows :func:`lm.episode_landmarks` (with
    ``reads``) gives for its episode's frames: training reads what play computes."""
    for e, info in enumerate(table.episodes):
        (rec,) = [r for r in recorded_run.episodes if r.episode_id == info.episode_id]
        want = lm.episode_landmarks(rec.frames, np.array(rec.actions), moves, lm.Reads(SIZE, **reads))
        rows = np.flatnonzero(table.episode == e)
        np.testing.assert_array_equal(table.landmarks[rows], want[table.pos[rows]])


def _assert_read(agent, frames: np.ndarray, marks: np.ndarray, other: np.ndarray) -> None:
    """The played student's decision on its last frame differs between the landmark rows
    ``marks`` and ``other`` [R, 2]: the rows that differ reach the decision."""
    frame = torch.from_numpy(frames[-1]).permute(2, 0, 1)[None]
    history = torch.tensor([list(agent.history)])
    _, logits, _ = agent.model.decide(frame, agent.task, history, landmarks=torch.from_numpy(marks)[None])
    _, changed, _ = agent.model.decide(frame, agent.task, history, landmarks=torch.from_numpy(other)[None])
    assert not torch.allclose(logits, changed)


def _assert_needs_its_rows(recorded_run, option: str, without_landmarks: str) -> None:
    """A student with ``model.<option>`` (and walled) refuses a step table holding only
    walled's rows, and the config refuses the option without model.landmarks."""
    walled_only = load_steps([recorded_run.run_dir], DataConfig(actors=["student"], skip_asleep=False),
                             landmarks=lm.Reads(SIZE, walled=True))
    model_cfg = load("tiny", [f"model.landmarks={SIZE}", "model.walled=true", f"model.{option}=true"]).model
    with pytest.raises(ValueError, match=f"model.{option} True"):
        DistillDataset(walled_only, np.arange(len(walled_only)), build_tokenizer(walled_only), model_cfg)
    with pytest.raises(DistillConfigError, match=without_landmarks):
        load("tiny", [f"model.{option}=true"])


def test_the_step_table_holds_the_landmarks_of_every_kept_step(recorded_run):
    cfg = DataConfig(actors=["student"], skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, landmarks=SIZE)
    assert table.landmarks is not None and table.landmarks.shape == (len(table), len(lm.LANDMARKS), 2)
    moves = move_vectors(recorded_run.action_names, len(recorded_run.action_names))
    _assert_as_played(table, recorded_run, moves)
    assert (table.landmarks[:, :, 0] != lm.NONE).any()
    plain = load_steps([recorded_run.run_dir], cfg)
    with pytest.raises(ValueError, match="with and without landmarks"):
        concat_tables([table, plain])
    model_cfg = load("tiny", [f"model.landmarks={SIZE}"]).model
    with pytest.raises(ValueError, match="the step table has none"):
        DistillDataset(plain, np.arange(len(plain)), build_tokenizer(plain), model_cfg)
    data = DistillDataset(table, np.arange(len(table)), build_tokenizer(table), model_cfg)
    batch = data[list(range(len(table)))]
    assert torch.equal(batch["landmarks"], torch.from_numpy(table.landmarks))
    # mirrored left to right, a landmark's column offset changes sign, "none known" stays
    swap, rows, cols = mirror_for(table, list(recorded_run.action_names), "cpu")
    flipped = {k: v.clone() for k, v in batch.items()}
    mirror_batch(flipped, 1.0, swap, rows, cols, np.random.default_rng(0))
    was, now = batch["landmarks"], flipped["landmarks"]
    known = was[..., 0] != lm.NONE
    assert torch.equal(now[..., 0][known], -was[..., 0][known]) and torch.equal(now[..., 1], was[..., 1])
    assert (now[..., 0][~known] == lm.NONE).all()


def test_the_step_table_holds_the_view_cells_when_asked(recorded_run):
    cfg = DataConfig(actors=["student"], skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, landmarks=lm.Reads(SIZE, view=True))
    k = len(lm.LANDMARKS)
    assert table.landmarks.shape == (len(table), k + lm.VIEW_CELLS, 2)
    moves = move_vectors(recorded_run.action_names, len(recorded_run.action_names))
    _assert_as_played(table, recorded_run, moves, view=True)
    assert (table.landmarks[:, k:, 0] == cells.PLAYER).sum() == len(table)  # the player's own cell, every step
    plain = load_steps([recorded_run.run_dir], cfg, landmarks=SIZE)
    for table_, view in ((plain, True), (table, False)):
        model_cfg = load("tiny", [f"model.landmarks={SIZE}", f"model.landmark_view={view}"]).model
        with pytest.raises(ValueError, match=f"model.landmark_view {view}"):
            DistillDataset(table_, np.arange(len(table_)), build_tokenizer(table_), model_cfg)
    with pytest.raises(DistillConfigError, match="landmark_view needs model.landmarks"):
        load("tiny", ["model.landmark_view=true"])
    with pytest.raises(DistillConfigError, match="train.mirror does not mirror"):
        load("tiny", [f"model.landmarks={SIZE}", "model.landmark_view=true", "train.mirror=0.5"])


def _tiny_student(run_dir: Path, tmp_path_factory, name: str, *overrides: str) -> Path:
    """A tiny student with landmarks, trained 4 steps on the recorded run."""
    out = tmp_path_factory.mktemp(name) / "ckpt"
    train(load("tiny", ["train.steps=4", f"model.landmarks={SIZE}", *overrides]), [run_dir], out)
    return out


@pytest.fixture(scope="module")
def view_ckpt(run_dir, tmp_path_factory) -> Path:
    return _tiny_student(run_dir, tmp_path_factory, "view_student", "model.landmark_view=true")


def test_a_student_with_the_view_cells_plays_with_those_training_gave_it(view_ckpt):
    """Playing, the student reads the view cells load_steps gives for the same frames
    (after its landmarks), and they reach its decision."""
    agent, frames, actions, moves = play_student(view_ckpt, 4, 60)
    want = lm.episode_landmarks(frames, actions, moves, lm.Reads(SIZE, view=True))[-1]
    k = len(lm.LANDMARKS)
    np.testing.assert_array_equal(agent.landmarks.view_cells(), want[k:])
    frame = torch.from_numpy(frames[-1]).permute(2, 0, 1)[None]
    history = torch.tensor([list(agent.history)])
    marks = torch.from_numpy(want)[None]
    _, logits, _ = agent.model.decide(frame, agent.task, history, landmarks=marks)
    unknown = marks.clone()
    unknown[:, k:] = 0
    _, other, _ = agent.model.decide(frame, agent.task, history, landmarks=unknown)
    assert not torch.allclose(logits, other)


@pytest.fixture(scope="module")
def marks_ckpt(run_dir, tmp_path_factory) -> Path:
    return _tiny_student(run_dir, tmp_path_factory, "landmark_student", "model.clock=300")


def test_a_student_with_landmarks_plays_with_those_training_gave_it(marks_ckpt):
    """The landmarks the student keeps as it plays are those load_steps reads from the
    recorded episode, and it reads them: other landmarks, other logits."""
    agent, frames, actions, moves = play_student(marks_ckpt, 4, lm.EVENING + 20)
    want = lm.episode_landmarks(frames, actions, moves, lm.Reads(SIZE))[-1]
    np.testing.assert_array_equal(agent.landmarks.nearest(len(frames) - 1), want)
    model = agent.model
    frame = torch.from_numpy(frames[-1]).permute(2, 0, 1)[None]
    history = torch.tensor([list(agent.history)])
    clock = torch.tensor([len(frames) - 1])
    _, logits, _ = model.decide(frame, agent.task, history, clock=clock, landmarks=torch.from_numpy(want)[None])
    none = torch.full_like(torch.from_numpy(want)[None], lm.NONE)
    _, other, _ = model.decide(frame, agent.task, history, clock=clock, landmarks=none)
    assert not torch.allclose(logits, other)
    with pytest.raises(ValueError, match="pass landmarks="):
        model.decide(frame, agent.task, history, clock=clock)


def test_a_student_trained_on_other_landmarks_is_refused(marks_ckpt, tmp_path):
    """Training records what the landmark tokens meant; a checkpoint whose number differs
    is refused, and so is one saved before the number was kept."""
    assert ck.read(marks_ckpt).extra[ck.LANDMARKS_KEY] == lm.VERSION
    copy = tmp_path / "ckpt"
    shutil.copytree(ck.resolve(marks_ckpt), copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["extra"][ck.LANDMARKS_KEY] = lm.VERSION - 1
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"trained on landmarks version {lm.VERSION - 1}, this code computes "
                                              f"version {lm.VERSION}: retrain"):
        ck.load_student(copy)
    del meta["extra"][ck.LANDMARKS_KEY]
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="trained before landmark versions were recorded, this code computes"):
        ck.read(copy)


def _pocket_world(seed: int):
    """Crafter with the player walled into a two-cell pocket (itself and a cell of path to
    its right), then noop: the env and its first observation after."""
    env = envs.make("crafter", max_steps=400)
    env.reset(seed)
    world, (x, y) = env._env._world, env._env._player.pos
    world[(x + 1, y)] = "path"
    for cell in ((x - 1, y), (x, y - 1), (x, y + 1), (x + 1, y - 1), (x + 1, y + 1), (x + 2, y)):
        world[cell] = "stone"
    obs, *_ = env.step(list(env.action_names).index("noop"))
    return env, obs, (x, y)


def test_walled_in_on_the_map_as_the_env_shows_it_through_the_night():
    """Walled into a pocket at morning and left there, the player reads itself walled in on
    its class map at every step into the dark (where the frame shows little but its
    neighbours), as nights.enclosed reads the env's own view; one wall taken away, not."""
    env, obs, (x, y) = _pocket_world(seed=3)
    memory = lm.LandmarkMemory(lm.Reads(SIZE, walled=True))
    noop = list(env.action_names).index("noop")
    k = len(lm.LANDMARKS)
    while obs.step < 220:
        got = memory.update(obs.frame, (0, 0), obs.step)
        assert got.shape == (k + 1, 2) and tuple(got[-1]) == (1, 0), obs.step
        assert enclosed(obs.local_view)
        obs, *_ = env.step(noop)
    assert daylight(obs.step) < 0.5  # into the dark
    env._env._world[(x + 2, y)] = "grass"  # the pocket opened at its end
    obs, *_ = env.step(noop)
    got = memory.update(obs.frame, (0, 0), obs.step)
    assert tuple(got[-1]) == (0, 0) and not enclosed(obs.local_view)


def test_walled_counts_cells_never_read_as_open_and_reachable_ground_up_to_the_limit():
    stone, grass = cells.CLASS["stone"], cells.CLASS["grass"]
    classes = np.full((SIZE, SIZE), stone, np.uint8)
    c = SIZE // 2
    classes[c, c] = cells.PLAYER
    assert lm.walled(classes)
    classes[c, c + 1:c + 3] = grass  # three cells of ground, the player's included
    assert lm.walled(classes) and not lm.walled(classes, limit=2)
    classes[c, c + 3] = grass  # four
    assert not lm.walled(classes)
    classes[c, c + 1:c + 4] = stone
    classes[c - 1, c] = cells.UNKNOWN  # never read: what walks may come from there
    classes[c - 2, c] = cells.UNKNOWN
    classes[c - 3, c] = cells.UNKNOWN
    assert not lm.walled(classes)
    classes[c - 3, c] = cells.CLASS["water"]  # water stops a zombie as stone does
    assert lm.walled(classes)


def test_walled_agrees_with_the_view_on_a_walk_into_the_night():
    observations, actions, moves = random_moves(seed=2, steps=280)
    memory = lm.LandmarkMemory(lm.Reads(SIZE, walled=True))
    agree = [memory.update(obs.frame, moves[actions[i - 1]] if i else (0, 0), obs.step)[-1, 0]
             == enclosed(obs.local_view) for i, obs in enumerate(observations)]
    assert np.mean(agree) >= 0.99


def test_the_walls_needed_are_those_of_the_smallest_pocket_to_close():
    stone, grass = cells.CLASS["stone"], cells.CLASS["grass"]
    classes = np.full((SIZE, SIZE), grass, np.uint8)
    c = SIZE // 2
    classes[c, c] = cells.PLAYER
    assert lm.walls_needed(classes) == 4  # in the open: a wall on each side
    classes[c - 1, c - 1:c + 2] = stone  # a pocket walled above, left and below, open to the right
    classes[c + 1, c - 1:c + 2] = stone
    classes[c, c - 1] = stone
    assert lm.walls_needed(classes) == 1
    classes[c, c + 1] = stone
    assert lm.walls_needed(classes) == 0 and lm.walled(classes)
    classes[c, c + 1] = grass  # a corridor of two cells: close its end, or the player's own cell
    classes[c - 1, c + 1:c + 3] = stone
    classes[c + 1, c + 1:c + 3] = stone
    assert lm.walls_needed(classes) == 1
    classes[c - 1, c] = cells.CLASS["water"]  # water holds a zombie as stone does
    assert lm.walls_needed(classes) == 1
    classes[c - 1, c] = cells.UNKNOWN  # never read: it may be open
    assert lm.walls_needed(classes) == 2
    edge = np.full((5, 5), False)  # a pocket at the edge of what is known: beyond it counts as open
    edge[2, 2] = edge[2, 3] = edge[2, 4] = True
    assert lm.fewest_walls(edge) == 1 and lm.fewest_walls(edge, limit=2) == 1
    edge[2, 3] = False
    assert lm.fewest_walls(edge) == 0
    assert lm.walls_needed(np.full((SIZE, SIZE), grass, np.uint8)) == lm.WALLS_MOST


def test_no_walls_needed_exactly_when_walled_in():
    """On a walk into the night the count is 0 where walled is 1 and nowhere else; in a
    pocket it is 0 through the night, and 1 once its end is opened."""
    observations, actions, moves = random_moves(seed=5, steps=300)
    memory = lm.LandmarkMemory(lm.Reads(SIZE, walled=True, walls=True))
    rows = np.array([memory.update(obs.frame, moves[actions[i - 1]] if i else (0, 0), obs.step)[-2:, 0]
                     for i, obs in enumerate(observations)])
    assert not rows[:, 0].any() and rows[:, 1].min() >= 1 and len(np.unique(rows[:, 1])) >= 3
    env, obs, (x, y) = _pocket_world(seed=3)
    memory = lm.LandmarkMemory(lm.Reads(SIZE, walled=True, walls=True))
    noop = list(env.action_names).index("noop")
    while obs.step < 220:
        assert tuple(memory.update(obs.frame, (0, 0), obs.step)[-2:, 0]) == (1, 0), obs.step
        obs, *_ = env.step(noop)
    env._env._world[(x + 2, y)] = "grass"
    obs, *_ = env.step(noop)
    assert tuple(memory.update(obs.frame, (0, 0), obs.step)[-2:, 0]) == (0, 1)


def test_a_student_reads_the_walls_it_needs(run_dir, recorded_run, tmp_path_factory):
    """model.walls_needed: one row after walled's, in the step table as in play, and it
    reaches the decision; a table without it is refused."""
    ckpt = _tiny_student(run_dir, tmp_path_factory, "walls_student", "model.walled=true", "model.walls_needed=true")
    agent, frames, actions, moves = play_student(ckpt, 4, 60)
    want = lm.episode_landmarks(frames, actions, moves, lm.Reads(SIZE, walled=True, walls=True))
    assert want.shape[1:] == (len(lm.LANDMARKS) + 2, 2)
    assert (lm.walled(agent.landmarks.classes), lm.walls_needed(agent.landmarks.classes)) == tuple(want[-1, -2:, 0])
    other = want[-1].copy()
    other[-1, 0] = (other[-1, 0] + 2) % (lm.WALLS_MOST + 1)
    _assert_read(agent, frames, want[-1], other)
    cfg = DataConfig(actors=["student"], skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, landmarks=lm.Reads(SIZE, walled=True, walls=True))
    _assert_as_played(table, recorded_run, moves, walled=True, walls=True)
    _assert_needs_its_rows(recorded_run, "walls_needed", "walls_needed is read on the landmarks' class map")


def test_a_student_reads_whether_it_is_walled_in(run_dir, recorded_run, tmp_path_factory):
    """model.walled: the step table carries the row, the student plays with the one load_steps
    gives for the same frames, and it reaches the decision; a table without it is refused."""
    ckpt = _tiny_student(run_dir, tmp_path_factory, "walled_student", "model.walled=true")
    agent, frames, actions, moves = play_student(ckpt, 4, 60)
    want = lm.episode_landmarks(frames, actions, moves, lm.Reads(SIZE, walled=True))
    assert want.shape[1:] == (len(lm.LANDMARKS) + 1, 2)
    assert lm.walled(agent.landmarks.classes) == bool(want[-1, -1, 0])
    other = want[-1].copy()
    other[-1, 0] = 1 - other[-1, 0]
    _assert_read(agent, frames, want[-1], other)
    cfg = DataConfig(actors=["student"], skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, landmarks=lm.Reads(SIZE, walled=True))
    assert table.landmarks.shape == (len(table), len(lm.LANDMARKS) + 1, 2)
    _assert_as_played(table, recorded_run, moves, walled=True)
    plain = load_steps([recorded_run.run_dir], cfg, landmarks=SIZE)
    model_cfg = load("tiny", [f"model.landmarks={SIZE}", "model.walled=true"]).model
    with pytest.raises(ValueError, match="walled=True"):
        DistillDataset(plain, np.arange(len(plain)), build_tokenizer(plain), model_cfg)
    batch = DistillDataset(table, np.arange(len(table)), build_tokenizer(table), model_cfg)[list(range(len(table)))]
    batch["landmarks"][::2, -1, 0] = 1  # some walled in; mirrored, that stays as it is
    flipped = {k: v.clone() for k, v in batch.items()}
    swap, rows, cols = mirror_for(table, list(recorded_run.action_names), "cpu")
    mirror_batch(flipped, 1.0, swap, rows, cols, np.random.default_rng(0))
    assert torch.equal(flipped["landmarks"][:, -1], batch["landmarks"][:, -1])
    known = batch["landmarks"][:, :-1, 0] != lm.NONE
    assert torch.equal(flipped["landmarks"][:, :-1, 0][known], -batch["landmarks"][:, :-1, 0][known])
    with pytest.raises(DistillConfigError, match="walled is read on the landmarks' class map"):
        load("tiny", ["model.walled=true"])


def test_the_routes_go_around_what_is_between():
    """routes: the first moves of every shortest walk over ground, the steps it takes; a
    thing is reached beside it, the pocket on its entry; none through water or unknown cells."""
    grass, water = cells.CLASS["grass"], cells.CLASS["water"]
    classes = np.full((SIZE, SIZE), grass, np.uint8)
    c = SIZE // 2
    classes[c, c] = cells.PLAYER
    tree, stone, table = lm.LANDMARKS.index("tree"), lm.LANDMARKS.index("stone"), lm.LANDMARKS.index("table")
    left, right, up, down = (1 << k for k in range(4))
    classes[c, c + 4] = cells.CLASS["tree"]  # straight to the right: stand beside it after 3 steps
    classes[c - 3, c - 3] = cells.CLASS["stone"]  # up and left: either move starts a shortest walk
    way = lm.routes(classes)
    assert tuple(way[tree]) == (right, 3)
    assert tuple(way[stone]) == (left | up, 5)
    assert tuple(way[lm.LANDMARKS.index("iron")]) == (lm.ROUTE_NONE, lm.ROUTE_FAR)  # none on the map
    assert tuple(way[-1]) == (lm.ROUTE_NONE, lm.ROUTE_FAR)  # no pocket given
    classes[c - 3:c + 4, c + 2] = water  # a lake between: around either end, right first or not
    assert tuple(lm.routes(classes)[tree]) == (right | up | down, 11)
    classes[c:, c + 2] = water  # to the map's edge below: only round the top
    assert tuple(lm.routes(classes)[tree]) == (right | up, 11)
    classes[:, c + 2] = water  # across the whole map, but for a cell never read: no way is known
    classes[0, c + 2] = cells.UNKNOWN
    assert tuple(lm.routes(classes)[tree]) == (lm.ROUTE_NONE, lm.ROUTE_FAR)
    classes[c, c - 1] = cells.CLASS["table"]  # beside the player: the move that faces it, no steps
    assert tuple(lm.routes(classes)[table]) == (left, 0)
    assert tuple(lm.routes(classes, (c, c))[-1]) == (lm.ROUTE_THERE, 0)
    assert tuple(lm.routes(classes, (c - 2, c))[-1]) == (up | down, 4)  # round the table


def test_the_routes_are_read_again_only_on_a_changed_map(monkeypatch):
    """On a walk (moves and noops) each step's routes are those of its map and pocket,
    and the search is skipped where both are the last step's."""
    observations, actions, moves = random_moves(seed=4, steps=160)
    memory = lm.LandmarkMemory(lm.Reads(SIZE, routes=True))
    k, c, search, searched = len(lm.LANDMARKS), SIZE // 2, lm.routes, []
    monkeypatch.setattr(lm, "routes", lambda *args: searched.append(1) or search(*args))
    for i, obs in enumerate(observations):
        rows = memory.update(obs.frame, moves[actions[i - 1]] if i else (0, 0), obs.step)
        pocket = None if rows[k - 1, 0] == lm.NONE else (int(rows[k - 1, 0]) + c, int(rows[k - 1, 1]) + c)
        np.testing.assert_array_equal(rows[-k:], search(memory.remembered(), pocket))
    assert 0 < len(searched) < len(observations)


def test_a_student_reads_the_routes(run_dir, recorded_run, tmp_path_factory):
    """model.routes: K rows after the others, in the step table as in play, and they reach
    the decision; a table without them is refused, and so is the option without landmarks."""
    ckpt = _tiny_student(run_dir, tmp_path_factory, "routes_student", "model.walled=true", "model.routes=true")
    agent, frames, actions, moves = play_student(ckpt, 4, 60)
    k = len(lm.LANDMARKS)
    want = lm.episode_landmarks(frames, actions, moves, lm.Reads(SIZE, walled=True, routes=True))
    assert want.shape[1:] == (2 * k + 1, 2)
    assert (want[:, -k:, 0] != lm.ROUTE_NONE).any()  # the walks found something to go to
    classes = agent.landmarks.remembered()
    pocket = None if want[-1, k - 1, 0] == lm.NONE else tuple(int(v) + SIZE // 2 for v in want[-1, k - 1])
    np.testing.assert_array_equal(lm.routes(classes, pocket), want[-1, -k:])
    other = want[-1].copy()
    other[-k:, 0] = (other[-k:, 0] + 3) % (lm.ROUTE_THERE + 1)
    _assert_read(agent, frames, want[-1], other)
    cfg = DataConfig(actors=["student"], skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, landmarks=lm.Reads(SIZE, walled=True, routes=True))
    _assert_as_played(table, recorded_run, moves, walled=True, routes=True)
    _assert_needs_its_rows(recorded_run, "routes", "routes are read on the landmarks' class map")
    with pytest.raises(DistillConfigError, match="does not mirror model.routes' moves"):
        load("tiny", [f"model.landmarks={SIZE}", "model.routes=true", "train.mirror=0.5"])


def test_the_plant_clock_counts_from_the_sapling_and_again_once_it_is_eaten():
    """A sapling placed by the player is read as growing from the step it appeared, one
    reading per 25 steps, with its open sides (here only the player's own cell); a ripe
    plant reads as no sapling, and eaten it grows again from zero; gone, nothing is known."""
    env = envs.make("crafter", max_steps=400)
    names = list(env.action_names)
    noop, do = names.index("noop"), names.index("do")
    env.reset(1)
    world, player = env._env._world, env._env._player
    x, y = player.pos
    player.facing = (0, 1)
    for cell, material in (((x, y + 1), "grass"), ((x - 1, y + 1), "stone"), ((x + 1, y + 1), "stone"),
                           ((x, y + 2), "stone")):
        world[cell] = material
    player.inventory["sapling"] = 1
    memory = lm.LandmarkMemory(lm.Reads(SIZE, plants=True))
    obs, *_ = env.step(names.index("place_plant"))
    plant_at = (x, y + 1)
    placed = obs.step
    at = lm.LANDMARKS.index("plant")
    while obs.step < placed + 80:
        rows = memory.update(obs.frame, (0, 0), obs.step)
        assert tuple(rows[at]) == (0, 1) and tuple(rows[-1]) == ((obs.step - placed) // lm.PLANT_BIN, 1), obs.step
        obs, *_ = env.step(noop)
    plant = world[plant_at][1]
    plant.grown = 301  # ripe
    obs, *_ = env.step(noop)
    rows = memory.update(obs.frame, (0, 0), obs.step)
    assert rows[at, 0] == lm.NONE and tuple(rows[-1]) == (0, 0)
    assert tuple(rows[lm.LANDMARKS.index("plant-ripe")]) == (0, 1)
    obs, *_ = env.step(do)  # eaten: a sapling again
    eaten = obs.step
    for _ in range(30):
        rows = memory.update(obs.frame, (0, 0), obs.step)
        assert tuple(rows[-1]) == ((obs.step - eaten) // lm.PLANT_BIN, 1), obs.step
        obs, *_ = env.step(noop)
    world.remove(plant)
    obs, *_ = env.step(noop)
    assert tuple(memory.update(obs.frame, (0, 0), obs.step)[-1]) == (0, 0)
    assert (memory.planted == -1).all()


def test_a_plants_open_sides_are_those_a_cow_or_a_zombie_could_step_on():
    grass, stone, water = cells.CLASS["grass"], cells.CLASS["stone"], cells.CLASS["water"]
    memory = lm.LandmarkMemory(lm.Reads(SIZE, plants=True))
    c = SIZE // 2
    memory.classes[:] = grass
    memory.classes[c, c] = cells.PLAYER
    memory.classes[c + 1, c] = cells.CLASS["plant"]
    offset = np.array([0, 1])
    assert tuple(memory.plant(offset, 0)[0]) == (0, 4)  # unread, so counted from step 0 on: 0
    memory.classes[c + 2, c] = stone
    memory.classes[c + 1, c - 1] = water
    memory.classes[c + 1, c + 1] = cells.UNKNOWN  # never read: it may be open
    assert tuple(memory.plant(offset, 0)[0]) == (0, 2)  # the player's cell (it walks off) and the unread
    memory.classes[c + 1, c + 1] = stone
    memory.planted[c + 1, c] = 10
    assert tuple(memory.plant(offset, 60)[0]) == (2, 1)  # 50 steps
    memory.classes[SIZE - 1, 0] = cells.CLASS["plant"]  # at the map's edge: beyond it counts as open
    memory.classes[SIZE - 2, 0] = stone
    memory.classes[SIZE - 1, 1] = stone
    assert tuple(memory.plant(np.array([-c, c]), 10 ** 4)[0]) == (0, 2)
    assert tuple(memory.plant(np.array([lm.NONE, lm.NONE]), 0)[0]) == (0, 0)


def _reads_a_row_before_the_routes(run_dir, recorded_run, tmp_path_factory, option: str, read: str,
                                   other: tuple[int, int]):
    """A tiny student with ``model.walled``, ``model.<option>`` and ``model.routes``: the
    landmark rows of :class:`lm.Reads` with ``read``, one row before the routes', are in the
    step table as in play, and that row reaches the decision (set to ``other`` on its last
    frame); a table without it, or the option without landmarks, is refused. Returns the
    played agent and the table."""
    ckpt = _tiny_student(run_dir, tmp_path_factory, option, "model.walled=true", f"model.{option}=true",
                         "model.routes=true")
    agent, frames, actions, moves = play_student(ckpt, 4, 60)
    k = len(lm.LANDMARKS)
    reads = lm.Reads(SIZE, walled=True, routes=True, **{read: True})
    want = lm.episode_landmarks(frames, actions, moves, reads)
    assert want.shape[1:] == (2 * k + 2, 2)
    changed = want[-1].copy()
    changed[-k - 1] = other if tuple(changed[-k - 1]) != other else (lm.NONE, lm.NONE)
    _assert_read(agent, frames, want[-1], changed)
    table = load_steps([recorded_run.run_dir], DataConfig(actors=["student"], skip_asleep=False), landmarks=reads)
    _assert_as_played(table, recorded_run, moves, walled=True, routes=True, **{read: True})
    _assert_needs_its_rows(recorded_run, option, f"{option} is read on the landmarks' class map")
    return agent, table


def test_a_student_reads_its_plant_clock(run_dir, recorded_run, tmp_path_factory):
    """model.plant_clock: one row before the routes', in the step table as in play, and it
    reaches the decision; a table without it is refused."""
    _reads_a_row_before_the_routes(run_dir, recorded_run, tmp_path_factory, "plant_clock", "plants", (5, 3))


def test_the_plant_spot_is_where_the_teachers_own_code_plants_on_drawn_maps():
    """``plant_spot`` re-states ``agents.executor.farming._plant_spots`` (distill may not
    import agents): on random maps, read out to 1-11 steps, both pick the same grass cell,
    or none; the teacher carrying three stones (the spot's cap on open sides), with no home
    and no failed spot."""
    from agents.executor.farming import _plant_spots

    names = ("grass", "sand", "stone", "tree", "water", "lava", "table")
    share = (0.55, 0.08, 0.2, 0.1, 0.04, 0.01, 0.02)
    picked = set()
    for classes, x in _drawn_maps(names, share, 1, 40, lambda rng: rng.integers(1, 12), {"stone": 3, "sapling": 1}):
        teacher = _plant_spots(x)
        want = (lm.NONE, lm.NONE) if not teacher else (teacher[0][0] - 32, teacher[0][1] - 32)
        assert tuple(lm.plant_spot(classes)) == want
        picked.add(want)
    assert len(picked) > 15 and (lm.NONE, lm.NONE) in picked


def test_the_plant_spot_has_the_fewest_open_sides_then_is_nearest():
    """On a drawn map: open grass is no spot; a cell walled on three sides beats one on two
    nearer; lava or a cell never read beside it rules it out; a cow's cell is open."""
    size, c = 15, 7
    grass, stone, lava, cow = (cells.CLASS[n] for n in ("grass", "stone", "lava", "cow"))
    m = np.full((size, size), grass, np.uint8)
    m[c, c] = cells.PLAYER
    assert tuple(lm.plant_spot(m)) == (lm.NONE, lm.NONE)
    m[c + 2, c - 1:c + 2:2] = stone  # (c, c + 2) walled left and right: two open sides, 2 steps away
    assert tuple(lm.plant_spot(m)) == (0, 2)
    m[c - 5, c + 3:c + 6:2] = stone  # (c + 4, c - 5) walled left, right and above: one open side, 9 steps away
    m[c - 6, c + 4] = stone
    assert tuple(lm.plant_spot(m)) == (4, -5)
    m[c - 4, c + 4] = lava  # below it
    assert tuple(lm.plant_spot(m)) == (0, 2)
    m[c - 4, c + 4] = cow
    assert tuple(lm.plant_spot(m)) == (4, -5)
    m[c - 4, c + 4] = cells.UNKNOWN
    assert tuple(lm.plant_spot(m)) == (0, 2)
    m[c - 4, c + 4] = stone  # walled on every side: nowhere to stand and plant
    assert tuple(lm.plant_spot(m)) == (0, 2)
    far = np.full((33, 33), grass, np.uint8)
    far[16, 16] = cells.PLAYER
    far[8, 15:18:2] = stone  # (16, 8) walled left, right and above, 8 steps up: beyond SPOT_REACH
    far[7, 16] = stone
    assert tuple(lm.plant_spot(far)) == (lm.NONE, lm.NONE)
    far[9, 16] = stone  # and the grass below this stone, 6 steps up: open on three sides, within reach
    assert tuple(lm.plant_spot(far)) == (0, -6)


def test_a_student_reads_its_plant_spot(run_dir, recorded_run, tmp_path_factory):
    """model.plant_spot: one row before the routes', in the step table as in play, read as
    one landmark token more that reaches the decision; a table without it is refused, and
    so is train.mirror with it."""
    agent, table = _reads_a_row_before_the_routes(run_dir, recorded_run, tmp_path_factory, "plant_spot", "spot",
                                                  (3, -2))
    k = len(lm.LANDMARKS)
    assert agent.model.n_marks == k + 1
    assert (table.landmarks[:, -k - 1, 0] != lm.NONE).any()
    with pytest.raises(DistillConfigError, match="train.mirror does not mirror model.plant_spot"):
        load("tiny", [f"model.landmarks={SIZE}", "model.plant_spot=true", "train.mirror=0.5"])

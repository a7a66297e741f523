"""The student's map of what it saw: built from frames alone, the same in training and play."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from distill.config import DataConfig, DistillConfigError, load
from distill.data import DistillDataset, build_tokenizer
from distill.steps import concat_tables, load_steps
from distill.trainer import train
from distill.visual_memory import NEVER, VisualMemory, cell_colours, episode_memories, move_vectors
from tests.distill.conftest import play_student

SIZE = 15


def _walk(seed: int, steps: int):
    """A random walk in Crafter: (frames, actions, true positions), by day."""
    env = envs.make("crafter", max_steps=steps + 1)
    moves = move_vectors(env.action_names, len(env.action_names))
    walk = [i for i, m in enumerate(moves[:-1]) if m.any()] + [0]  # the four moves and noop
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed)
    frames, actions, positions = [], [], []
    for _ in range(steps):
        a = int(rng.choice(walk))
        frames.append(obs.frame.copy())
        actions.append(a)
        positions.append(obs.position)
        obs, *_ = env.step(a)
    env.close()
    return np.stack(frames), np.array(actions), positions, moves


def test_the_map_follows_the_player_and_remembers_what_left_the_view():
    """Against the world's truth: the moves read from the frames are the moves made (and
    the blocked ones blocked), and the cells out of view hold the colour they had when
    last seen, at the place where they are."""
    frames, actions, positions, moves = _walk(seed=3, steps=180)
    colours = cell_colours(frames)
    memory = VisualMemory(SIZE)
    seen: dict[tuple[int, int], np.ndarray] = {}
    judged = {True: [], False: []}
    for i, (cells, (px, py)) in enumerate(zip(colours, positions)):
        move = moves[actions[i - 1]] if i else (0, 0)
        if i and moves[actions[i - 1]].any():
            made = positions[i] != positions[i - 1]
            judged[made].append(memory.moved(cells, *move) == made)
        memory.update(cells, move)
        for r in range(7):
            for c in range(9):
                seen[(px + c - 4, py + r - 3)] = np.rint(cells[r, c])
    assert len(judged[True]) > 50 and len(judged[False]) > 5  # the walk did bump into things
    assert np.mean(judged[True]) >= 0.95 and np.mean(judged[False]) >= 0.95
    px, py = positions[-1]
    half = SIZE // 2
    remembered = right = 0
    for r in range(SIZE):
        for c in range(SIZE):
            age = memory.map[r, c, 3]
            if 0 < age < NEVER:
                remembered += 1
                right += np.array_equal(memory.map[r, c, :3], seen[(px + c - half, py + r - half)])
    assert remembered > 20
    assert right / remembered >= 0.9
    assert (memory.map[..., 3] == 0).sum() == 7 * 9  # the view, just seen
    assert (memory.map[..., 3] == NEVER).any()  # and some of the map never was


def test_a_map_must_be_odd_and_hold_the_view():
    for size in (8, 10, 7):
        with pytest.raises(ValueError, match="odd number of cells of at least 9"):
            VisualMemory(size)
    with pytest.raises(DistillConfigError, match="memory 20 must be 0, or odd"):
        load("tiny", ["model.memory=20", "model.memory_patch=5"])
    with pytest.raises(DistillConfigError, match="multiple of memory_patch 4"):
        load("tiny", ["model.memory=15", "model.memory_patch=4"])


def test_the_step_table_holds_the_map_of_every_kept_step(recorded_run):
    """The maps are built over every step, the dropped ones included: a kept step's map is
    the one the player had, whoever acted before it."""
    cfg = DataConfig(actors=["student"], skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, memory=SIZE)
    assert table.memory is not None and table.memory.shape == (len(table), SIZE, SIZE, 4)
    moves = move_vectors(recorded_run.action_names, len(recorded_run.action_names))
    for e, info in enumerate(table.episodes):
        (rec,) = [r for r in recorded_run.episodes if r.episode_id == info.episode_id]
        want = episode_memories(rec.frames, np.array(rec.actions), moves, SIZE)
        rows = np.flatnonzero(table.episode == e)
        assert table.pos[rows].min() > 0  # the student's steps come after the teacher's
        np.testing.assert_array_equal(table.memory[rows], want[table.pos[rows]])
    plain = load_steps([recorded_run.run_dir], cfg)
    assert plain.memory is None
    with pytest.raises(ValueError, match="different maps"):
        concat_tables([table, plain])
    model_cfg = load("tiny", [f"model.memory={SIZE}", "model.memory_patch=5"]).model
    with pytest.raises(ValueError, match="the step table has no maps"):
        DistillDataset(plain, np.arange(len(plain)), build_tokenizer(plain), model_cfg)
    item = DistillDataset(table, np.arange(len(table)), build_tokenizer(table), model_cfg)[3]
    assert torch.equal(item["memory"], torch.from_numpy(table.memory[3]))


@pytest.fixture(scope="module")
def map_ckpt(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("map_student") / "ckpt"
    train(load("tiny", ["train.steps=4", f"model.memory={SIZE}", "model.memory_patch=5"]), [run_dir], out)
    return out


def test_a_student_with_a_map_plays_with_the_map_training_gave_it(map_ckpt):
    """The map the student builds as it plays is the one load_steps builds from the
    recorded episode, and the student reads it: another map, other logits."""
    agent, frames, actions, moves = play_student(map_ckpt, 4, 60)
    want = episode_memories(frames, actions, moves, SIZE)[-1]
    np.testing.assert_array_equal(agent.visual.map, want)
    assert agent.visual.moves > 5
    model = agent.model
    frame = torch.from_numpy(frames[-1]).permute(2, 0, 1)[None]
    history = torch.tensor([list(agent.history)])
    _, logits, _ = model.decide(frame, agent.task, history, memory=torch.from_numpy(want)[None])
    blank = np.zeros_like(want)
    blank[..., 3] = NEVER
    _, other, _ = model.decide(frame, agent.task, history, memory=torch.from_numpy(blank)[None])
    assert not torch.allclose(logits, other)
    with pytest.raises(ValueError, match="pass memory="):
        model.decide(frame, agent.task, history)

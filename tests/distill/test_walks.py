"""Where the teacher's walks end: read from the frames, kept in the step table, mirrored
with the frame, and trained as a second head beside the action."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from distill.augment import mirror_batch, mirror_for
from distill.checkpoint import load_student
from distill.config import DataConfig, load
from distill.data import DistillDataset, build_tokenizer
from distill.evaluation import compute_losses
from distill.steps import concat_tables, load_steps, load_steps_for
from distill.trainer import train
from distill.visual_memory import BEYOND, NO_WALK, WALK_CLASSES, move_vectors, walk_ends

OWN_CELL = 3 * 9 + 4  # the player's cell in the 9 x 7 view


def _walks(seed: int, steps: int):
    """Crafter by day: runs of one to eight random moves, each ended by a ``noop`` or a
    ``do``; (frames, actions, true positions after each step, moves)."""
    env = envs.make("crafter", max_steps=steps + 1)
    names = list(env.action_names)
    moves = move_vectors(names, len(names))
    move_ids = [i for i, m in enumerate(moves[:-1]) if m.any()]
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed)
    frames, actions, positions = [], [], [obs.position]
    while len(actions) < steps:
        run = [int(rng.choice(move_ids)) for _ in range(int(rng.integers(1, 9)))]
        for a in run + [names.index(str(rng.choice(["noop", "do"])))]:
            frames.append(obs.frame.copy())
            actions.append(a)
            obs, *_ = env.step(a)
            positions.append(obs.position)
    env.close()
    return np.stack(frames[:steps]), np.array(actions[:steps]), positions[: steps + 1], moves


def _truth(actions, positions, moves) -> np.ndarray:
    """The walk ends from the world's own positions (what walk_ends reads from frames)."""
    n = len(actions)
    out = np.full(n, NO_WALK)
    for i in range(n):
        if not moves[actions[i]].any():
            continue
        j = i
        while j < n and moves[actions[j]].any():
            j += 1
        if j == n:
            continue  # the episode ends in the walk
        dx, dy = np.subtract(positions[j], positions[i])
        out[i] = (3 + dy) * 9 + 4 + dx if abs(dx) <= 4 and abs(dy) <= 3 else BEYOND
    return out


def test_walk_ends_are_where_the_player_stops_moving():
    """Against the world's positions, on four random walks from the spawn. A move is read
    from the frames, so in a field of grass (every cell alike) a made move can pass for a
    blocked one: seed 5's walk, in one, is 88 % right; these four 93-100 %."""
    hits = labelled = 0
    seen: set[int] = set()
    for seed in range(4):
        frames, actions, positions, moves = _walks(seed=seed, steps=240)
        got = walk_ends(frames, actions, moves)
        want = _truth(actions, positions, moves)
        assert got.dtype == np.int8 and got.shape == (240,)
        np.testing.assert_array_equal(got == NO_WALK, want == NO_WALK)  # not a move, or the episode ends in it
        on = want != NO_WALK
        hits += int((got[on] == want[on]).sum())
        labelled += int(on.sum())
        seen |= set(want[on].tolist())
        # a one-move walk that moved ends in the cell next to the player
        i = next(i for i in range(239) if moves[actions[i]].any() and not moves[actions[i + 1]].any()
                 and positions[i + 1] != positions[i] and got[i] == want[i])
        dx, dy = moves[actions[i]]
        assert got[i] == (3 + dy) * 9 + 4 + dx
    assert labelled > 700
    assert hits / labelled >= 0.95
    # the walks met the view's edge and beyond, and turns to face something (the player's own cell)
    assert {BEYOND, OWN_CELL} <= seen and len(seen) > 30


def test_the_step_table_keeps_the_teachers_walk_ends(recorded_run):
    """Walk ends are read over every recorded step and kept for the teacher's own moves:
    the student's and the relabelled steps are not the teacher's walks."""
    cfg = DataConfig(actors=["teacher", "student", "expert-relabelled"], skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, walks=True)
    assert table.walk_end is not None and table.walk_end.shape == (len(table),)
    moves = move_vectors(recorded_run.action_names, len(recorded_run.action_names))
    teacher = table.actor == 0
    for e, info in enumerate(table.episodes):
        (rec,) = [r for r in recorded_run.episodes if r.episode_id == info.episode_id]
        want = walk_ends(rec.frames, np.array(rec.actions), moves)
        rows = np.flatnonzero((table.episode == e) & teacher)
        np.testing.assert_array_equal(table.walk_end[rows], want[table.pos[rows]])
    assert (table.walk_end[~teacher] == NO_WALK).all()
    assert (table.walk_end[teacher] != NO_WALK).any()
    plain = load_steps([recorded_run.run_dir], cfg)
    assert plain.walk_end is None
    with pytest.raises(ValueError, match="with and without walk ends"):
        concat_tables([table, plain])
    model_cfg = load("tiny", ["model.walk_target=true"]).model
    with pytest.raises(ValueError, match="no walk ends"):
        DistillDataset(plain, np.arange(len(plain)), build_tokenizer(plain), model_cfg)
    both = load_steps_for([recorded_run.run_dir], cfg, model_cfg)
    np.testing.assert_array_equal(both.walk_end, table.walk_end)
    item = DistillDataset(both, np.arange(len(both)), build_tokenizer(both), model_cfg)[7]
    assert int(item["walk_end"]) == int(both.walk_end[7])


def test_a_mirrored_sample_walks_to_the_mirrored_cell(recorded_run):
    cfg = DataConfig(skip_asleep=False)
    table = load_steps([recorded_run.run_dir], cfg, walks=True)
    model_cfg = load("tiny", ["model.walk_target=true"]).model
    batch = DistillDataset(table, np.arange(8), build_tokenizer(table), model_cfg)[list(range(8))]
    batch["walk_end"] = torch.tensor([OWN_CELL, 0, 8, 9 * 6 + 2, BEYOND, NO_WALK, 10, 41])
    names = [recorded_run.action_names[i] for i in range(len(recorded_run.action_names))]
    mirror_batch(batch, 1.0, *mirror_for(table, names, "cpu"), np.random.default_rng(0))
    assert batch["walk_end"].tolist() == [OWN_CELL, 8, 0, 9 * 6 + 6, BEYOND, NO_WALK, 16, 39]


@pytest.fixture(scope="module")
def walk_ckpt(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("walk_student") / "ckpt"
    metrics = train(load("tiny", ["train.steps=6", "train.eval_every=3", "model.walk_target=true"]), [run_dir], out)
    return out, metrics


def test_the_walk_head_trains_beside_the_action_and_play_does_not_need_it(walk_ckpt, run_dir):
    out, metrics = walk_ckpt
    assert metrics["walk_loss"] > 0 and 0.0 <= metrics["walk_end_accuracy"] <= 1.0
    model, ckpt = load_student(out)
    assert model.walk_head is not None and model.walk_head.out_features == WALK_CLASSES
    table = load_steps_for([run_dir], ckpt.config.data, ckpt.config.model)
    batch = DistillDataset(table, np.arange(32), ckpt.tokenizer, ckpt.config.model)[list(range(32))]
    assert (batch["walk_end"] != NO_WALK).any()
    loss, parts, _ = compute_losses(model, batch, ckpt.config)
    off = ckpt.config.model_copy(update={"train": ckpt.config.train.model_copy(update={"walk_weight": 0.0})})
    loss_off, _, _ = compute_losses(model, batch, off)
    assert (loss - loss_off).item() == pytest.approx(ckpt.config.train.walk_weight * parts["walk_loss"], rel=1e-4)
    # the walk loss reaches the layers the action reads, not the walk head alone
    model.zero_grad()
    compute_losses(model, batch, ckpt.config)[0].backward()
    shared = model.blocks[0].qkv.weight.grad.clone()
    model.zero_grad()
    compute_losses(model, batch, off)[0].backward()
    assert not torch.allclose(shared, model.blocks[0].qkv.weight.grad)
    # validation reads the head; play (in inference mode) skips it
    args = (batch["frame"], batch["task"], batch["history"], batch["subgoal_in"])
    with torch.no_grad():
        assert model(*args, clock=batch.get("clock")).walk_logits.shape == (32, WALK_CLASSES)
    with torch.inference_mode():
        assert model(*args, clock=batch.get("clock")).walk_logits is None
    # and a student with the head plays alone, from the frame as any other
    from distill.agent import StudentAgent

    env = envs.make("crafter", max_steps=20)
    agent = StudentAgent(env, out)
    obs, _ = env.reset(0)
    agent.reset(obs, 0)
    done = False
    while not done:
        obs, _, term, trunc, _ = env.step(agent.act(obs))
        done = term or trunc
    env.close()
    assert obs.step == 20

"""The inventory read exactly off Crafter's frame, and ``model.inventory``: the same
counts in the student, in training and in play."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from distill import inventory as inv
from distill.config import DistillConfigError, load
from distill.model import _InventoryEncoder
from distill.trainer import train
from envs.crafter_env import VITALS
from tests.distill.conftest import play_student


def _walk(seed: int, steps: int):
    """Crafter under random actions (crafting, placing and sleeping too), day into night:
    the observations."""
    env = envs.make("crafter", max_steps=steps + 1)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed)
    seen = [obs]
    for _ in range(steps):
        obs, _, term, trunc, _ = env.step(int(rng.integers(len(env.action_names))))
        if term or trunc:
            break
        seen.append(obs)
    env.close()
    return seen


def _counts(obs) -> list[int]:
    """What the frame should show: the vitals, then each item, then two empty cells."""
    return [int(obs.vitals[k]) for k in VITALS] + list(obs.inventory.values()) + [0] * (inv.SLOTS - 16)


@pytest.fixture(scope="module")
def walk():
    return _walk(3, 400)


def test_the_counts_are_read_as_the_env_holds_them_by_day_and_at_night(walk):
    """Every count of every step, vitals and items, in the light and the dark (Crafter
    lights and blurs only the world, not the inventory below it)."""
    assert len(VITALS) == 4 and len(walk[0].inventory) == 12
    assert any(o.daylight < 0.5 for o in walk)  # the walk reaches the night
    read = np.stack([inv.read(o.frame) for o in walk])
    want = np.array([_counts(o) for o in walk])
    np.testing.assert_array_equal(read, want)
    assert len(np.unique(want[:, :4])) >= 5 and want[:, 4:].any()  # the counts moved


def test_a_cell_that_is_none_of_crafters_images_is_unread(walk):
    frame = walk[0].frame.copy()
    frame[inv.TOP + 3, 2 * inv.UNIT + 3] += 1  # drink's cell, one pixel off
    read = inv.read(frame)
    assert read[2] == inv.UNREAD and read[0] == int(walk[0].vitals["health"])
    assert (inv.read(np.zeros_like(frame)) == 0).all()  # black: nothing carried


def test_the_students_encoder_reads_what_read_does(walk):
    """The model reads the counts from the uint8 frame tensor as :func:`read` does from the
    frame, unread cells too, and each cell and count has its own vector."""
    frames = np.stack([o.frame for o in walk])
    frames[0, inv.TOP + 1, 1] ^= 255
    enc = _InventoryEncoder(8)
    out = enc(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0)  # as Student.forward scales it
    counts = np.stack([inv.read(f) for f in frames])
    assert counts[0, 0] == inv.UNREAD
    want = enc.embed.weight[torch.from_numpy(counts + np.arange(inv.SLOTS) * inv.CLASSES)]
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_inventory_needs_one_token_a_cell():
    with pytest.raises(DistillConfigError, match="inventory needs the patch encoder"):
        load("tiny", ["model.inventory=true", "model.image_encoder=conv"])
    with pytest.raises(DistillConfigError, match="inventory needs the patch encoder"):
        load("tiny", ["model.inventory=true", "model.patch_size=8"])


@pytest.fixture(scope="module")
def inventory_ckpt(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("inventory_student") / "ckpt"
    train(load("tiny", ["train.steps=4", "model.inventory=true"]), [run_dir], out)
    return out


def test_a_student_reads_the_counts_and_plays_the_same_traced(inventory_ckpt):
    """The counts reach the decision (without their vectors the same frame decides
    otherwise), and the traced student plays as the plain one, step for step."""
    agent, frames, actions, _ = play_student(inventory_ckpt, 4, 40)
    assert agent.model._traced is not None  # it played by the trace
    frame = torch.from_numpy(frames[-1]).permute(2, 0, 1)[None]
    history = torch.tensor([list(agent.history)])
    _, logits, _ = agent.model.decide(frame, agent.task, history)
    agent.model._traced = None  # the plain pass, which reads the weights as they are now
    with torch.no_grad():
        agent.model.inventory.embed.weight.zero_()
    _, without, _ = agent.model.decide(frame, agent.task, history)
    assert not torch.allclose(logits, without)
    _, _, plain, _ = play_student(inventory_ckpt, 4, 40, trace=False)
    np.testing.assert_array_equal(plain, actions)

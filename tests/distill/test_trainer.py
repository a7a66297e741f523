"""Checkpoints and the trainer: safe loading, the schedule, the batches, resuming exactly."""

from __future__ import annotations

import itertools
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from distill import checkpoint as ck
from distill.config import DistillConfigError, load
from distill.data import build_tokenizer
from distill.steps import load_steps
from distill.model import Student
from distill.trainer import _StepBatches, lr_factor, train
from envs.recorder import EpisodeRecorder
from tests.conftest import load_bench

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def other_run(tmp_path_factory) -> Path:
    """One short episode whose subgoal words appear nowhere in ``recorded_run``."""
    run = tmp_path_factory.mktemp("other") / "run"
    env = EpisodeRecorder(envs.make("crafter", max_steps=40), run, agent="other", config_hash="fedcba9876543210")
    rng = np.random.default_rng(1)
    for seed in (5, 6):
        env.reset(seed=seed)
        env.annotate(task="open", subgoal="place furnace nearby", actor="teacher")
        done = False
        while not done:
            p = rng.dirichlet(np.ones(len(env.action_names)))
            _, _, term, trunc, _ = env.step(int(rng.integers(len(env.action_names))), teacher_probs=p)
            done = term or trunc
    env.close()
    return run


@pytest.fixture(scope="module")
def trained(run_dir, tmp_path_factory) -> tuple[Path, dict]:
    """A tiny student trained for 4 steps (checkpoints at 2 and 4)."""
    out = tmp_path_factory.mktemp("trained") / "ckpt"
    cfg = load("tiny", ["train.steps=4", "train.save_every=2", "train.eval_every=2", "train.log_every=1"])
    return out, train(cfg, [run_dir], out)


def test_the_bench_reads_a_checkpoints_training_rate_from_its_own_log(trained, tmp_path):
    """bench_distill.py given --checkpoint trains nothing; the issue's table still has a
    training samples/s: the median of what the student's training logged up to its step."""
    out = tmp_path / "ckpt"
    shutil.copytree(trained[0], out)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rates = {r["step"]: r["samples_per_s"] for r in rows if r["split"] == "train"}
    assert sorted(rates) == [1, 2, 3, 4]
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"split": "train", "step": 5, "samples_')  # cut short by a kill
    rate = load_bench("bench_distill").logged_training_rate
    assert rate(out)["samples_per_s"] == pytest.approx(np.median(list(rates.values())))  # the latest: step 4
    assert rate(out / "ckpt-0000002") == {"samples_per_s": pytest.approx(np.median([rates[1], rates[2]])),
                                          "windows": 2, "log": str(out / "metrics.jsonl")}
    (out / "metrics.jsonl").unlink()
    assert rate(out) is None


def _random_student(cfg, tok, n_actions=17, seed=0) -> Student:
    torch.manual_seed(seed)
    return Student(cfg.model, len(tok), n_actions)


def _inputs(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = cfg.model
    return (torch.randint(0, 256, (b, 3, 64, 64), dtype=torch.uint8, generator=g),
            torch.randint(4, 8, (b, m.max_task_len), generator=g),
            torch.randint(0, 18, (b, m.history), generator=g),
            torch.cat([torch.ones(b, 1, dtype=torch.long), torch.randint(4, 8, (b, m.max_subgoal_len - 1), generator=g)], 1))


@pytest.fixture(scope="module")
def tok(run_dir):
    return build_tokenizer(load_steps([run_dir], load("tiny").data))


def _meta(cfg, tok, step, path=Path(".")):
    return ck.Checkpoint(path, cfg, tok, 17, [f"a{i}" for i in range(17)], step, {"note": "x"})


# -- checkpoints ------------------------------------------------------------------------

def test_save_then_load_gives_the_same_model(tmp_path, tok):
    cfg = load("tiny")
    model = _random_student(cfg, tok).eval()
    saved = ck.save(tmp_path / "c", model, _meta(cfg, tok, 7))
    assert saved == tmp_path / "c" / "ckpt-0000007"
    loaded, meta = ck.load_student(tmp_path / "c")
    assert not loaded.training
    assert meta.step == 7 and meta.tokenizer.vocab == tok.vocab and meta.config == cfg
    assert meta.action_names == [f"a{i}" for i in range(17)] and meta.extra == {"note": "x"}
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = _inputs(cfg)
    a, b = model(*x), loaded(*x)
    assert torch.equal(a.action_logits, b.action_logits) and torch.equal(a.subgoal_logits, b.subgoal_logits)
    assert loaded.text_head.weight is loaded.words.weight  # still tied after loading


def test_resolve_follows_latest(tmp_path, tok):
    cfg = load("tiny")
    model = _random_student(cfg, tok)
    root = tmp_path / "c"
    ck.save(root, model, _meta(cfg, tok, 5), keep=3)
    ck.save(root, model, _meta(cfg, tok, 3), keep=3)  # written last: 'latest', though not the highest
    assert (root / "latest").read_text().strip() == "ckpt-0000003"
    assert ck.resolve(root) == root / "ckpt-0000003"
    assert ck.read(root).step == 3
    assert ck.resolve(root / "ckpt-0000005") == root / "ckpt-0000005"
    (root / "latest").write_text("ckpt-0000999\n")  # names one that is gone: the newest there
    assert ck.resolve(root) == root / "ckpt-0000005"
    (root / "latest").unlink()
    assert ck.resolve(root) == root / "ckpt-0000005"


def test_keep_prunes_old_checkpoints(tmp_path, tok):
    cfg = load("tiny")
    model = _random_student(cfg, tok)
    for step in (1, 2, 3, 4, 5):
        ck.save(tmp_path, model, _meta(cfg, tok, step), keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0000004", "ckpt-0000005", "latest"]
    assert ck.read(tmp_path).step == 5


def _saved(tmp_path, tok) -> Path:
    cfg = load("tiny")
    return ck.save(tmp_path / "c", _random_student(cfg, tok), _meta(cfg, tok, 1))


def test_no_checkpoint_is_a_named_error(tmp_path):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(ck.CheckpointError, match=str(path)):
            ck.load_student(path)


def test_foreign_format_is_a_named_error(tmp_path, tok):
    path = _saved(tmp_path, tok)
    meta = json.loads((path / "meta.json").read_text())
    meta["format"] = "someone-else-3"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ck.CheckpointError, match="someone-else-3") as err:
        ck.load_student(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["config"]["data"].update(future_option=1), "unknown key 'data.future_option'; was it trained by "
                                                            "another version of steve"),
    (lambda m: m["config"]["model"].update(d_model="wide"), "model.d_model: Input should be a valid integer"),
    (lambda m: m.pop("tokenizer"), "meta.json: incomplete .KeyError: 'tokenizer'"),
    (lambda m: m.update(step=None), "meta.json: incomplete .TypeError"),
])
def test_a_config_this_code_cannot_read_is_a_named_error(tmp_path, tok, change, message):
    path = _saved(tmp_path, tok)
    meta = json.loads((path / "meta.json").read_text())
    change(meta)
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ck.CheckpointError, match=message) as err:
        ck.load_student(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_broken_meta_is_a_named_error(tmp_path, tok):
    path = _saved(tmp_path, tok)
    (path / "meta.json").write_text('{"format": "steve-stu')
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_student(path)
    assert str(path / "meta.json") in str(err.value)


def test_truncated_weights_are_a_named_error(tmp_path, tok):
    path = _saved(tmp_path, tok)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_student(path)
    assert str(weights) in str(err.value)
    weights.write_bytes(b"")
    with pytest.raises(ck.CheckpointError, match=str(weights)):
        ck.load_student(path)


def test_weights_of_another_shape_are_a_named_error(tmp_path, tok):
    path = _saved(tmp_path, tok)
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["model"]["d_ff"] = 128
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ck.CheckpointError, match=str(path)) as err:
        ck.load_student(path)
    message = str(err.value)  # which tensor, which shapes: torch puts them after a heading line
    assert "do not fit" in message and "size mismatch for blocks.0.mlp.0.weight" in message
    assert "\n" not in message


def _adam_step(model, seed):
    torch.manual_seed(seed)
    cfg = load("tiny")
    out = model(*_inputs(cfg, seed=seed))
    (out.action_logits.square().mean() + out.subgoal_logits.square().mean()).backward()


def test_optimizer_state_round_trips(tmp_path, tok):
    cfg = load("tiny")
    model = _random_student(cfg, tok)
    opt = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": 0.01},
                             {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}], lr=1e-3)
    for s in range(2):
        _adam_step(model, s)
        opt.step()
        opt.zero_grad()
    ck.save(tmp_path, model, _meta(cfg, tok, 2), opt)

    loaded, _ = ck.load_student(tmp_path)
    loaded.train()
    opt2 = torch.optim.AdamW([{"params": [p for p in loaded.parameters() if p.ndim >= 2], "weight_decay": 0.01},
                              {"params": [p for p in loaded.parameters() if p.ndim < 2], "weight_decay": 0.0}], lr=5.0)
    ck.load_optimizer(tmp_path, opt2)
    a, b = opt.state_dict(), opt2.state_dict()
    # betas come back as a list
    assert json.loads(json.dumps(a["param_groups"])) == json.loads(json.dumps(b["param_groups"]))  # lr, betas, weight decay and all
    assert b["param_groups"][0]["lr"] == 1e-3
    assert a["state"].keys() == b["state"].keys() and len(a["state"]) == len(list(model.parameters()))
    for i in a["state"]:
        for name, value in a["state"][i].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["state"][i][name])), (i, name)
    # and the next step is the same step
    _adam_step(model, 9)
    _adam_step(loaded, 9)
    opt.step()
    opt2.step()
    for p, q in zip(model.parameters(), loaded.parameters()):
        assert torch.equal(p, q)


def test_optimizer_missing_is_a_named_error(tmp_path, tok):
    path = _saved(tmp_path, tok)  # saved without an optimizer
    opt = torch.optim.AdamW(_random_student(load("tiny"), tok).parameters())
    with pytest.raises(ck.CheckpointError, match=str(path)):
        ck.load_optimizer(path, opt)


def test_truncated_optimizer_state_is_a_named_error(tmp_path, tok):
    cfg = load("tiny")
    model = _random_student(cfg, tok)
    opt = torch.optim.AdamW(model.parameters())
    _adam_step(model, 0)
    opt.step()
    path = ck.save(tmp_path, model, _meta(cfg, tok, 1), opt)
    state = path / "optimizer.safetensors"
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(ck.CheckpointError, match=str(state)):
        ck.load_optimizer(path, torch.optim.AdamW(model.parameters()))
    state.unlink()
    with pytest.raises(ck.CheckpointError, match=str(state)):
        ck.load_optimizer(path, torch.optim.AdamW(model.parameters()))


def test_loading_never_unpickles(tmp_path, tok, monkeypatch):
    cfg = load("tiny")
    model = _random_student(cfg, tok)
    opt = torch.optim.AdamW(model.parameters())
    _adam_step(model, 0)
    opt.step()
    ck.save(tmp_path, model, _meta(cfg, tok, 1), opt)
    files = sorted(p.name for p in (tmp_path / "ckpt-0000001").iterdir())
    assert files == ["meta.json", "model.safetensors", "optimizer.safetensors"]

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    for mod, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(mod, name, refuse)
    loaded, meta = ck.load_student(tmp_path)
    ck.load_optimizer(tmp_path, torch.optim.AdamW(loaded.parameters()))
    assert meta.step == 1


# -- schedule and batches -----------------------------------------------------------------

def test_lr_warmup_then_cosine():
    warmup, total, low = 10, 100, 0.1
    f = [lr_factor(s, warmup, total, low) for s in range(total + 1)]
    assert f[0] == pytest.approx(1 / warmup)
    assert all(a < b for a, b in itertools.pairwise(f[:warmup]))  # rising
    assert f[warmup - 1] == pytest.approx(1.0) and f[warmup] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(f[warmup:]))  # then strictly falling
    assert f[total] == pytest.approx(low)
    assert low < f[total - 1] < low + (1 - low) * 1e-3  # the last step is within a hair of the floor
    assert f[(warmup + total) // 2] == pytest.approx(low + (1 - low) / 2)  # the cosine's midpoint
    assert lr_factor(10 * total, warmup, total, low) == pytest.approx(low)  # past the end: the floor
    assert lr_factor(0, 0, total, low) == pytest.approx(1.0)  # no warm-up
    assert lr_factor(0, 0, 1, 0.0) == pytest.approx(1.0)  # one step: full lr
    assert lr_factor(50, 10, 100, 1.0) == pytest.approx(1.0)  # min ratio 1: constant


def test_step_batches_are_deterministic_and_resume_exactly():
    def lists(start, total, **kw):
        args = {"n": 37, "batch": 8, "accum": 2, "seed": 3, "rank": 0, "world": 1} | kw
        return list(_StepBatches(start=start, total=total, **args))

    full = lists(0, 12)
    assert len(full) == 12 * 2 == len(_StepBatches(37, 8, 2, 0, 12, 3, 0, 1))
    assert all(len(b) == 4 and all(0 <= i < 37 for i in b) for b in full)
    assert full == lists(0, 12)  # the same every time
    for k in (1, 5, 11):
        assert lists(k, 12) == full[2 * k:]  # resuming at step k: the tail of the full run
    assert lists(0, 12, seed=4) != full
    assert lists(0, 20)[:24] == full  # the total does not change the early steps
    r0, r1 = lists(0, 12, world=2), lists(0, 12, world=2, rank=1)
    assert all(len(b) == 2 for b in r0) and r0 != r1  # each rank its own share
    assert len({i for b in full for i in b}) > 30  # draws cover the data



def test_agreement_by_label_counts_recall_and_precision():
    from distill.evaluation import agreement_by_label

    names = {0: "noop", 1: "do", 2: "sleep"}
    action = np.array([1, 1, 1, 0, 0, 2])  # the teacher
    picked = np.array([1, 1, 0, 0, 1, 1])  # the student
    subgoal = np.array([1, 1, 0, 0, 0, 1])  # into ["eat cow", "sleep"]
    out = agreement_by_label(picked, action, subgoal, names, ["eat cow", "sleep"])
    assert list(out["by_action"]) == ["do", "noop", "sleep"]  # most frequent first
    assert out["by_action"]["do"] == {"n": 3, "recall": pytest.approx(2 / 3), "precision": pytest.approx(2 / 4)}
    assert out["by_action"]["noop"] == {"n": 2, "recall": 0.5, "precision": 0.5}
    assert out["by_action"]["sleep"] == {"n": 1, "recall": 0.0, "precision": None}  # never picked
    assert out["by_subgoal"] == {"eat cow": {"n": 3, "agreement": pytest.approx(1 / 3)},
                                 "sleep": {"n": 3, "agreement": pytest.approx(2 / 3)}}
    assert "by_light" not in out
    light = np.array([1.0, 0.95, 0.2, 0.7, 0.0, 0.5])  # Crafter's daylight at each step
    by_light = agreement_by_label(picked, action, subgoal, names, ["eat cow", "sleep"], light)["by_light"]
    assert by_light == {"day (light >= 0.9)": {"n": 2, "agreement": 1.0},
                        "dusk or dawn (0.5-0.9)": {"n": 2, "agreement": 0.5},
                        "night (< 0.5, noisy)": {"n": 2, "agreement": 0.0}}
    # an action only the student picks is listed with no teacher steps
    only = agreement_by_label(np.array([2]), np.array([0]), np.array([0]), names, ["x"])["by_action"]
    assert only["sleep"] == {"n": 0, "recall": None, "precision": 0.0}
    # the teacher's equally good actions: step 4's noop and do were both best, so the miss counts as good
    good = (picked == action) | (np.arange(6) == 4)
    out = agreement_by_label(picked, action, subgoal, names, ["eat cow", "sleep"], light, good)
    assert out["by_action"]["noop"] == {"n": 2, "recall": 0.5, "recall_any": 1.0, "precision": 0.5}
    assert out["by_action"]["sleep"]["recall_any"] == 0.0
    assert out["by_subgoal"]["eat cow"] == {"n": 3, "agreement": pytest.approx(1 / 3),
                                            "agreement_any": pytest.approx(2 / 3)}
    assert out["by_light"]["night (< 0.5, noisy)"] == {"n": 2, "agreement": 0.0, "agreement_any": 0.5}



def test_agreement_by_label_names_the_most_common_mistakes():
    from distill.evaluation import agreement_by_label

    names = {0: "noop", 1: "do", 2: "sleep"}
    action = np.array([1, 1, 1, 0, 0, 2, 1])  # the teacher
    picked = np.array([0, 0, 1, 1, 1, 1, 0])  # the student
    subgoal = np.array([0, 0, 0, 0, 1, 1, 1])  # into ["eat cow", "sleep"]
    out = agreement_by_label(picked, action, subgoal, names, ["eat cow", "sleep"])["by_mistake"]
    # most first; ties by subgoal, then the teacher's action id, then the student's
    assert list(out) == ["eat cow: do -> noop", "eat cow: noop -> do", "sleep: noop -> do",
                         "sleep: do -> noop", "sleep: sleep -> do"]
    assert out["eat cow: do -> noop"] == {"n": 2, "share": 0.5}  # of the 4 steps under 'eat cow'
    assert out["sleep: sleep -> do"] == {"n": 1, "share": pytest.approx(1 / 3)}
    top = agreement_by_label(picked, action, subgoal, names, ["eat cow", "sleep"], mistakes=1)["by_mistake"]
    assert list(top) == ["eat cow: do -> noop"]
    # a pick among the teacher's equally good actions (a route tie) is not a mistake
    good = picked == action
    good[:2] = True
    tied = agreement_by_label(picked, action, subgoal, names, ["eat cow", "sleep"], good=good)["by_mistake"]
    assert "eat cow: do -> noop" not in tied and tied["sleep: do -> noop"] == {"n": 1, "share": pytest.approx(1 / 3)}
    assert agreement_by_label(action, action, subgoal, names, ["eat cow", "sleep"])["by_mistake"] == {}


# -- training -----------------------------------------------------------------------------

def test_train_writes_checkpoints_metrics_and_plot(trained):
    out, metrics = trained
    assert sorted(p.name for p in out.glob("ckpt-*")) == ["ckpt-0000002", "ckpt-0000004"]
    assert (out / "latest").read_text().strip() == "ckpt-0000004"
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "data.json").read_text())["steps"] > 0  # what the checkpoint was trained on
    assert not list(out.glob(".*"))  # no temporary leftovers
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if r["split"] == "train"]
    val_steps = [r["step"] for r in rows if r["split"] == "val"]
    assert train_steps == [1, 2, 3, 4] and val_steps == [2, 4]
    assert all(math.isfinite(r["loss"]) and r["lr"] > 0 for r in rows if r["split"] == "train")
    assert metrics["step"] == 4 and 0.0 <= metrics["action_agreement"] <= 1.0
    assert 0.0 <= metrics["subgoal_exact"] <= 1.0 and math.isfinite(metrics["val_loss"])
    assert metrics["train_samples"] > 0 and metrics["val_samples_total"] > 0
    model, meta = ck.load_student(out)
    assert meta.step == 4 and metrics["parameters"] == model.num_parameters()
    assert meta.n_actions == 17 and meta.action_names[0] == "noop"
    assert ck.load_student(out / "ckpt-0000002")[1].step == 2


def test_training_lowers_the_loss(run_dir, tmp_path):
    cfg = load("tiny", ["train.steps=30", "train.eval_every=30", "train.save_every=30", "train.log_every=1",
                        "train.action_loss=ce", "train.warmup=0"])
    train(cfg, [run_dir], tmp_path)
    losses = [r["loss"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
              if r["split"] == "train"]
    # random actions (CE stays near log 17): the subgoal words are what is learnable here
    assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5]), losses


class _Stop(Exception):
    pass


def _weights(path: Path, averaged: bool = True) -> dict[str, torch.Tensor]:
    return ck.load_student(path, averaged=averaged)[0].state_dict()


@pytest.mark.parametrize("loss,ema,augment", [("fkl", 0.0, 0.0), ("taid", 0.0, 0.0), ("fkl", 0.9, 0.0),
                                              ("fkl", 0.0, 0.5)])
def test_resume_gives_the_same_weights(run_dir, tmp_path, loss, ema, augment):
    """Stopped after the checkpoint at step 5 and started again: the result is the one
    of an uninterrupted run (data order, optimizer state, schedule, TAID state, the
    weights' moving average, and which samples are mirrored or lose their history)."""
    cfg = load("tiny", ["train.steps=10", "train.save_every=5", "train.eval_every=3", "train.log_every=1",
                        f"train.action_loss={loss}", f"train.ema={ema}", f"train.mirror={augment}",
                        f"train.history_dropout={augment}"])
    train(cfg, [run_dir], tmp_path / "full")

    def stop_at_5(step, total, metrics):
        assert total == 10
        if step == 5:
            raise _Stop

    with pytest.raises(_Stop):
        train(cfg, [run_dir], tmp_path / "split", progress=stop_at_5)
    assert ck.read(tmp_path / "split").step == 5
    with (tmp_path / "split" / "metrics.jsonl").open("a") as f:  # as if killed after logging step 6
        f.write(json.dumps({"split": "train", "step": 6, "loss": 1.0}) + "\n" + '{"split": "tr')
    seen = []
    result = train(cfg, [run_dir], tmp_path / "split", progress=lambda s, t, m: seen.append(s))
    assert seen == list(range(6, 11)) and result["step"] == 10
    for averaged in (True, False):
        a, b = _weights(tmp_path / "full", averaged), _weights(tmp_path / "split", averaged)
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)
    full_opt, split_opt = (json.loads((tmp_path / d / "ckpt-0000010" / "meta.json").read_text())
                           for d in ("full", "split"))
    assert full_opt["extra"].get("taid") == split_opt["extra"].get("taid")
    if loss == "taid":
        assert split_opt["extra"]["taid"]["step"] == 10

    def steps(d):
        rows = [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
        return [(r["split"], r["step"], round(r.get("loss", r.get("val_loss")), 5)) for r in rows]

    assert steps("split") == steps("full")  # no duplicated or lost lines, the same values


def test_moving_average_follows_the_weights():
    from distill.trainer import MovingAverage

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    avg = MovingAverage(model, 0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    avg.update(model, step=0)  # the ramp: keep (1 + 0) / (10 + 0) = 0.1 of the old average
    torch.testing.assert_close(avg.model.weight, 0.1 * start + 0.9 * model.weight)
    before = avg.model.weight.clone()
    avg.update(model, step=1000)  # past the ramp: keep 0.9
    torch.testing.assert_close(avg.model.weight, 0.9 * before + 0.1 * model.weight)
    assert not avg.model.weight.requires_grad and model.weight.requires_grad


def test_a_moving_average_is_saved_and_is_the_student(run_dir, tmp_path):
    cfg = load("tiny", ["train.steps=6", "train.save_every=6", "train.eval_every=6", "train.ema=0.5"])
    metrics = train(cfg, [run_dir], tmp_path / "ema")
    assert (ck.resolve(tmp_path / "ema") / ck.EMA_FILE).is_file()
    averaged, raw = _weights(tmp_path / "ema"), _weights(tmp_path / "ema", averaged=False)
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw)  # two different sets of weights
    from distill.data import DistillDataset, split
    from distill.evaluation import evaluate

    table = load_steps([run_dir], cfg.data)
    model, meta = ck.load_student(tmp_path / "ema")
    val = DistillDataset(table, split(table, cfg.data.val_fraction, cfg.data.split_seed)[1], meta.tokenizer, cfg.model)
    assert evaluate(model, val, cfg, "cpu", limit=4096)["val_loss"] == pytest.approx(metrics["val_loss"])  # validated
    train(cfg.model_copy(update={"train": cfg.train.model_copy(update={"ema": 0.0})}), [run_dir], tmp_path / "none")
    assert not (ck.resolve(tmp_path / "none") / ck.EMA_FILE).exists()
    plain = _weights(tmp_path / "none")
    for k, v in _weights(tmp_path / "none", averaged=False).items():
        assert torch.equal(plain[k], v)  # without an average, both are the trained weights


def test_no_resume_starts_over(trained, run_dir, tmp_path):
    out = tmp_path / "ckpt"
    shutil.copytree(trained[0], out)
    cfg = load("tiny", ["train.steps=2", "train.save_every=1", "train.eval_every=2"])
    seen = []
    train(cfg, [run_dir], out, resume=False, progress=lambda s, t, m: seen.append(s))
    assert seen == [1, 2] and ck.read(out).step == 2


def test_init_keeps_the_tokenizer_and_weights(trained, other_run, tmp_path):
    source, _ = trained
    before = ck.read(source)
    own = build_tokenizer(load_steps([other_run], load("tiny").data))
    assert own.vocab != before.tokenizer.vocab and "furnace" in own.vocab
    assert "furnace" not in before.tokenizer.vocab
    # one step at a vanishing learning rate: the weights are the init's, the vocabulary too
    cfg = load("tiny", ["train.steps=1", "train.lr=1e-12", "train.warmup=0"])
    train(cfg, [other_run], tmp_path / "next", init=source)
    after = ck.read(tmp_path / "next")
    assert after.tokenizer.vocab == before.tokenizer.vocab and after.step == 1
    a, b = _weights(source), _weights(tmp_path / "next")
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)
    # without init the same data gives its own vocabulary
    train(cfg, [other_run], tmp_path / "fresh")
    assert ck.read(tmp_path / "fresh").tokenizer.vocab == own.vocab


def test_a_different_model_config_is_refused(trained, run_dir, tmp_path):
    source, _ = trained
    cfg = load("tiny", ["train.steps=1", "model.d_model=16"])
    with pytest.raises(ValueError, match="model config differs"):
        train(cfg, [run_dir], tmp_path / "a", init=source)
    out = tmp_path / "b"
    shutil.copytree(source, out)
    with pytest.raises(ValueError, match="model config differs"):
        train(cfg, [run_dir], out)  # resuming it
    assert ck.read(out).step == 4  # left alone


@pytest.mark.parametrize("loss", ["ce", "fkl", "jsd", "taid"])
def test_each_action_loss_trains(run_dir, tmp_path, loss):
    cfg = load("tiny", ["train.steps=2", "train.log_every=1", "train.eval_every=2", f"train.action_loss={loss}"])
    metrics = train(cfg, [run_dir], tmp_path)
    for key in ("loss", "action_loss", "subgoal_loss", "val_loss", "kl"):
        assert math.isfinite(metrics[key]), (key, metrics[key])
    assert metrics["action_loss"] > 0 and metrics["step"] == 2
    for name, p in ck.load_student(tmp_path)[0].state_dict().items():
        assert torch.isfinite(p).all(), name
    if loss == "taid":
        assert "taid_t" in metrics and 0.4 <= metrics["taid_t"] <= 1.0
        assert ck.read(tmp_path).extra["taid"]["step"] == 2


def test_no_training_data_is_a_clear_error(tmp_path):
    run = tmp_path / "one"
    env = EpisodeRecorder(envs.make("crafter", max_steps=10), run, agent="one", config_hash="0" * 16)
    env.reset(seed=0)
    for _ in range(10):
        env.step(0)
    env.close()
    cfg = load("tiny", ["train.steps=1", "data.val_fraction=0.99"])  # its only episode is held out
    with pytest.raises(ValueError, match="no training samples"):
        train(cfg, [run], tmp_path / "out")
    train(load("tiny", ["train.steps=1", "data.val_fraction=0.0"]), [run], tmp_path / "out")  # but it can train
    with pytest.raises(ValueError, match="not found"):
        train(cfg, [tmp_path / "nowhere"], tmp_path / "out2")


@pytest.mark.slow
def test_killed_training_resumes(run_dir, tmp_path):
    """``steve distill train`` killed (SIGKILL) after its first checkpoint, then run again
    with the same command: it finishes at the right step, each step logged once."""
    out = tmp_path / "ckpt"
    steps = 400
    cmd = [sys.executable, "-m", "steve.cli", "distill", "train", "--data", str(run_dir), "--config", "tiny",
           "--out", str(out), "--set", f"train.steps={steps}", "--set", "train.save_every=20",
           "--set", "train.log_every=10", "--set", "train.eval_every=100", "--set", "train.keep_checkpoints=3"]
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "latest").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = ck.read(out).step
    assert 20 <= killed_at < steps, killed_at
    before = [line for line in (out / "metrics.jsonl").read_text().splitlines()
              if line.endswith("}") and json.loads(line)["step"] <= killed_at]

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert ck.read(out).step == steps
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for split, every in (("train", 10), ("val", 100)):
        got = [r["step"] for r in rows if r["split"] == split]
        assert got == list(range(every, steps + 1, every)), (split, got)
    assert max(p.name for p in out.glob("ckpt-*")) == f"ckpt-{steps:07d}"
    # it went on from the checkpoint: the lines logged up to it are kept as they were
    # (a run started over would log them again, with other throughput figures)
    assert (out / "metrics.jsonl").read_text().splitlines()[:len(before)] == before
    assert not list(out.glob(".ckpt-*"))


def test_relabelled_and_rare_steps_are_drawn_more_often(run_dir):
    from distill.data import weighted_indices
    from envs.episodes import ACTORS

    data = load("tiny").data
    table = load_steps([run_dir], data)
    idx = np.arange(len(table))
    relabelled = idx[table.actor == ACTORS.index("expert-relabelled")]
    assert len(relabelled), "the recorded run has expert-relabelled steps"
    assert np.array_equal(weighted_indices(table, idx, data), idx)
    counts = np.bincount(weighted_indices(table, idx, data.model_copy(update={"relabelled_weight": 3})),
                         minlength=len(table))
    assert (counts[relabelled] == 3).all()
    assert (np.delete(counts, relabelled) == 1).all()

    share = np.bincount(table.action, minlength=table.n_actions) / len(table)
    below = float(np.sort(np.unique(share[share > 0]))[1])  # the rarest action is under it, the others not
    rare = share[table.action] < below
    assert 0 < rare.sum() < len(table)
    both = data.model_copy(update={"relabelled_weight": 3, "rare_action_weight": 5, "rare_action_below": below})
    counts = np.bincount(weighted_indices(table, idx, both), minlength=len(table))
    is_relabelled = np.isin(idx, relabelled)
    assert np.array_equal(counts, np.where(is_relabelled, 3, 1) * np.where(rare, 5, 1))


def test_steps_that_change_the_action_are_drawn_more_often(run_dir):
    from distill.data import weighted_indices

    data = load("tiny").data
    table = load_steps([run_dir], data)
    idx = np.arange(len(table))
    counts = np.bincount(weighted_indices(table, idx, data.model_copy(update={"change_weight": 3})),
                         minlength=len(table))
    assert set(counts) == {1, 3}
    assert (counts[table.pos == 0] == 3).all()  # nothing before an episode's first step
    # where the step before is in the table too: 3 exactly when the action changed
    after = [(i, j) for i in idx for j in idx[i + 1:i + 2]
             if table.episode[j] == table.episode[i] and table.pos[j] == table.pos[i] + 1]
    assert len(after) > 20
    changed = [counts[j] == 3 for i, j in after]
    assert changed == [table.action[j] != table.action[i] for i, j in after]
    assert 0 < sum(changed) < len(changed)


def test_steps_of_named_subgoals_are_drawn_more_often(run_dir):
    from distill.data import weighted_indices

    data = load("tiny").data
    table = load_steps([run_dir], data)
    idx = np.arange(len(table))
    counts = np.bincount(table.subgoal, minlength=len(table.subgoals))
    counts[table.subgoals.index("")] = 0  # steps without a subgoal
    name = table.subgoals[int(counts.argmax())]  # the recorded run's commonest subgoal
    assert 0 < counts.max() < len(table)
    drawn = np.bincount(weighted_indices(table, idx, data.model_copy(update={"subgoal_weights": {name: 3}})),
                        minlength=len(table))
    assert np.array_equal(drawn, np.where(table.subgoal == table.subgoals.index(name), 3, 1))
    both = data.model_copy(update={"subgoal_weights": {name: 3}, "change_weight": 2})
    changed = np.bincount(weighted_indices(table, idx, data.model_copy(update={"change_weight": 2})),
                          minlength=len(table))
    assert np.array_equal(np.bincount(weighted_indices(table, idx, both), minlength=len(table)), drawn * changed)
    typo = data.model_copy(update={"subgoal_weights": {"bild shelter": 3}})
    with pytest.raises(ValueError, match=f"no step of the data has subgoal 'bild shelter' .the most common: {name!r}"):
        weighted_indices(table, idx, typo)


def test_subgoal_weights_come_from_set_and_must_be_whole_and_positive():
    assert load("tiny", ["data.subgoal_weights.build shelter=3"]).data.subgoal_weights == {"build shelter": 3}
    assert load("tiny", ["data.subgoal_weights={eat cow: 2, sleep: 1}"]).data.subgoal_weights == {"eat cow": 2,
                                                                                                "sleep": 1}
    with pytest.raises(DistillConfigError, match="data.subgoal_weights.sleep: Input should be greater than"):
        load("tiny", ["data.subgoal_weights.sleep=0"])


def test_a_config_file_extends_another_and_overrides_its_keys(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.yaml").write_text("extends: tiny\nmodel: {n_layers: 3}\ntrain: {lr: 0.0005}\n")
    (tmp_path / "top.yaml").write_text("extends: sub/mine.yaml\ntrain: {steps: 7}\n")
    tiny, top = load("tiny", ["train.steps=9"]), load(tmp_path / "top.yaml", ["train.steps=9"])
    assert (top.model.n_layers, top.train.lr, top.train.steps, top.size) == (3, 0.0005, 9, "top")
    assert tiny.model.n_layers != 3 and tiny.train.lr != 0.0005
    assert top.model.model_dump(exclude={"n_layers"}) == tiny.model.model_dump(exclude={"n_layers"})
    assert top.data == tiny.data and top.dagger == tiny.dagger
    # the shipped recipe is the fast student with the README's five options
    recipe = ["model.clock=300", "data.change_weight=3", "model.landmarks=33", "model.landmark_view=true",
              "model.walled=true"]
    assert load("crafter").model_dump(exclude={"size"}) == load("fast", recipe).model_dump(exclude={"size"})


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "extends: a.yaml\n"}, "a.yaml: extends 'a.yaml', which extends it back"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "b.yaml: extends 'a.yaml', which extends it back"),
    ({"a.yaml": "extends: [tiny]\n"}, "a.yaml: extends: expected a config name or a YAML path"),
    ({"a.yaml": "extends: nowhere.yaml\n"}, "config file not found: .*nowhere.yaml"),
    ({"a.yaml": "extends: tiny\nmodel: {n_layer: 3}\n"}, "unknown key 'model.n_layer'"),
])
def test_a_bad_extends_is_a_named_error(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DistillConfigError, match=message) as err:
        load(tmp_path / "a.yaml")
    assert "\n" not in str(err.value)


def test_gradient_accumulation_equals_one_big_batch(run_dir, tmp_path):
    """Two micro-batches of 8 give the step one batch of the same 16 samples gives (the
    action loss is a mean per sample; the subgoal loss, a mean per word, is left out)."""
    base = ["train.steps=3", "train.batch_size=16", "train.subgoal_weight=0", "train.action_loss=ce"]
    train(load("tiny", base + ["train.grad_accum=1"]), [run_dir], tmp_path / "one")
    train(load("tiny", base + ["train.grad_accum=2"]), [run_dir], tmp_path / "two")
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    d = load("tiny").model.d_model
    for name in a:
        if name.endswith("qkv.bias"):  # the key bias shifts every score of a row alike: its
            keep = torch.ones_like(a[name], dtype=torch.bool)  # gradient is 0 up to rounding,
            keep[d:2 * d] = False  # which Adam's normalisation blows up to +-lr
            a[name], b[name] = a[name][keep], b[name][keep]
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


def test_hidden_histories_never_train_the_action_embeddings(run_dir, tmp_path):
    """With every history hidden the student only ever reads the "no action" id: the
    embeddings of real actions keep their initial values while that one learns; with
    none hidden they learn too (no weight decay, so only gradients move them)."""
    base = ["train.batch_size=16", "train.weight_decay=0"]
    for p, steps in itertools.product((0, 1), (1, 4)):
        train(load("tiny", base + [f"train.history_dropout={p}", f"train.steps={steps}"]), [run_dir],
              tmp_path / f"p{p}-{steps}")
    emb = {k: _weights(tmp_path / k)["actions.weight"] for k in ("p0-1", "p0-4", "p1-1", "p1-4")}
    none = emb["p0-1"].shape[0] - 1  # the last id: "no action"
    torch.testing.assert_close(emb["p1-4"][:none], emb["p1-1"][:none], rtol=0, atol=0)
    assert not torch.equal(emb["p1-4"][none], emb["p1-1"][none])
    assert not torch.equal(emb["p0-4"][:none], emb["p0-1"][:none])


def test_hide_history_hides_whole_histories_at_the_given_rate():
    from distill.augment import hide_history

    torch.manual_seed(0)
    history = torch.randint(0, 17, (20000, 8))
    for p, lo, hi in ((0.0, 0, 0), (0.5, 0.48, 0.52), (1.0, 1, 1)):
        batch = {"history": history.clone(), "action": torch.zeros(len(history), dtype=torch.long)}
        hide_history(batch, p, 17, np.random.default_rng(0))
        hidden = (batch["history"] == 17).all(1)
        assert lo <= hidden.float().mean() <= hi
        assert torch.equal(batch["history"][~hidden], history[~hidden])  # the rest untouched


def test_mirror_flips_the_world_view_and_swaps_left_and_right(run_dir, tmp_path):
    from distill.augment import mirror_batch, mirror_for

    cfg = load("tiny")
    table = load_steps([run_dir], cfg.data)
    names = [table.action_names.get(i, "") for i in range(table.n_actions)]
    swap, rows, cols = mirror_for(table, names, "cpu")
    assert (rows, cols) == (49, 63)  # 7 x 7 world rows of 7-pixel cells, 9 across, at 64 pixels
    left, right = names.index("move_left"), names.index("move_right")
    torch.manual_seed(0)
    n = 6
    batch = {"frame": torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8),
             "action": torch.tensor([left, right, 0, left, 5, right]),
             "history": torch.randint(0, table.n_actions + 1, (n, 4)),
             "teacher_probs": torch.rand(n, table.n_actions),
             "memory": torch.randint(0, 256, (n, 9, 9, 4), dtype=torch.uint8)}
    before = {k: v.clone() for k, v in batch.items()}
    rng = np.random.default_rng(0)
    mirror_batch(batch, 1.0, swap, rows, cols, rng)
    torch.testing.assert_close(batch["frame"][:, :, :49, :63], before["frame"][:, :, :49, :63].flip(-1))
    assert torch.equal(batch["memory"], before["memory"].flip(2))  # the map: west is east
    assert torch.equal(batch["frame"][:, :, 49:], before["frame"][:, :, 49:])  # the inventory as it was
    assert torch.equal(batch["frame"][:, :, :, 63], before["frame"][:, :, :, 63])  # and the border
    assert batch["action"].tolist() == [right, left, 0, right, 5, left]
    assert torch.equal(batch["history"] == left, before["history"] == right)
    assert torch.equal(batch["teacher_probs"][:, left], before["teacher_probs"][:, right])
    assert torch.equal(batch["teacher_probs"][:, 5], before["teacher_probs"][:, 5])
    assert torch.equal(batch["history"] == table.n_actions, before["history"] == table.n_actions)
    mirror_batch(batch, 1.0, swap, rows, cols, rng)  # twice: as before
    assert all(torch.equal(batch[k], before[k]) for k in batch)
    mirror_batch(batch, 0.0, swap, rows, cols, rng)
    assert all(torch.equal(batch[k], before[k]) for k in batch)

    train(load("tiny", ["train.steps=2", "train.mirror=0.5"]), [run_dir], tmp_path / "m")  # trains with it
    assert ck.resolve(tmp_path / "m").name.endswith("2")


def test_mirror_refuses_frames_it_cannot_read(run_dir):
    from types import SimpleNamespace

    from distill.augment import mirror_for

    table = load_steps([run_dir], load("tiny").data)
    names = [table.action_names.get(i, "") for i in range(table.n_actions)]
    other = SimpleNamespace(episodes=[SimpleNamespace(env="minedojo", frame_shape=(160, 256, 3))])
    with pytest.raises(ValueError, match="train.mirror needs Crafter episodes"):
        mirror_for(other, names, "cpu")
    with pytest.raises(ValueError, match="move_left and move_right"):
        mirror_for(table, [n if n != "move_left" else "" for n in names], "cpu")

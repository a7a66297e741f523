"""The student's clock: the time of day from the steps it has played, the same counter
in training (the recorded ``t``) and in play (the observation's ``step``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from distill.agent import StudentAgent
from distill.config import DataConfig, load
from distill.data import DistillDataset, build_tokenizer
from distill.model import Student
from distill.steps import load_steps
from distill.tokenizer import BOS, PAD
from distill.trainer import train
from envs.episodes import iter_episodes
from tests.conftest import load_bench

CLOCK = ["model.clock=300", "model.clock_bin=5"]


def test_the_clock_reads_the_time_of_day_in_readings_of_clock_bin_steps():
    cfg = load("tiny", CLOCK).model
    torch.manual_seed(0)
    model = Student(cfg, 20, 17).eval()
    g = torch.Generator().manual_seed(1)
    frame = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8, generator=g)
    task = torch.tensor([[5] + [PAD] * (cfg.max_task_len - 1)])
    history = torch.full((1, cfg.history), 17)
    sub = torch.tensor([[BOS] + [PAD] * (cfg.max_subgoal_len - 1)])

    def logits(step: int) -> torch.Tensor:
        return model(frame, task, history, sub, clock=torch.tensor([step])).action_logits

    assert torch.equal(logits(10), logits(14))  # one reading: steps 10-14
    assert torch.equal(logits(10), logits(610))  # the same time, two days later
    assert not torch.allclose(logits(0), logits(120))  # morning and evening, as bright in Crafter
    assert not torch.allclose(logits(14), logits(15))
    with pytest.raises(ValueError, match="pass clock="):
        model(frame, task, history, sub)
    plain = Student(load("tiny").model, 20, 17)
    assert plain.length == model.length - 1


@pytest.fixture(scope="module")
def clock_ckpt(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("clock_student") / "ckpt"
    train(load("tiny", ["train.steps=4", *CLOCK]), [run_dir], out)
    return out


def test_the_dataset_gives_each_step_its_recorded_step_counter(recorded_run):
    table = load_steps([recorded_run.run_dir], DataConfig(skip_asleep=False))
    cfg = load("tiny", CLOCK).model
    data = DistillDataset(table, np.arange(len(table)), build_tokenizer(table), cfg)
    rows = [0, 3, len(table) - 1]
    assert data[rows]["clock"].tolist() == table.t[rows].tolist()
    assert "clock" not in DistillDataset(table, np.arange(len(table)), build_tokenizer(table), load("tiny").model)[0]


def test_a_student_with_a_clock_plays_reading_the_steps_it_has_played(clock_ckpt):
    """At every decision it reads the env's step counter, which training read from the
    recorded episodes, and that starts again at a reset."""
    agent = StudentAgent(None, clock_ckpt, sample=True)
    read: list[int] = []
    decide = agent.model.decide

    def spy(*args, clock=None, **kwargs):
        read.append(int(clock[0]))
        return decide(*args, clock=clock, **kwargs)

    agent.model.decide = spy
    env = envs.make("crafter", max_steps=40)
    for seed in (2, 3):
        obs, _ = env.reset(seed)
        agent.reset(obs, seed)
        read.clear()
        steps, done = [], False
        while not done:
            steps.append(obs.step)
            obs, _, term, trunc, _ = env.step(agent.act(obs))
            done = term or trunc
        assert read == steps and read[0] == 0 and len(read) > 20
    env.close()


def test_the_bench_times_a_clock_student_on_the_recorded_step_counters(clock_ckpt, run_dir):
    """bench/bench_distill.py's latency feeds the student what it reads in play: the frame,
    the step counter and the vitals (a bare frame once crashed it)."""
    bench = load_bench("bench_distill")
    read: list[int] = []
    decide = Student.decide

    def spy(self, *args, clock=None, **kwargs):
        read.append(int(clock[0]))
        return decide(self, *args, clock=clock, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Student, "decide", spy)
        got = bench.latency(clock_ckpt, [run_dir], threads=1, decisions=120)
    assert got["p50_ms"] > 0 and got["passes_per_decision"] >= 1
    recorded = [t for _, steps in iter_episodes([run_dir], ["t"]) for t in steps.column("t").to_pylist()]
    assert read == recorded[:120]  # every step of the first episodes, in order

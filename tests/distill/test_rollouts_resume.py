"""Rollout commands killed and run again: what finished is kept, nothing is recorded twice,
and a folder holding something else is refused rather than played over."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import envs
from distill.config import load
from distill.dagger import run_dagger
from distill.rollouts import DONE, InlinePool, RolloutJob, play, record_teacher
from distill.trainer import train
from envs.episodes import read_index
from envs.recorder import EpisodeRecorder


class Counting(InlinePool):
    """Plays in this process and notes the run directory of every job it is given."""

    def __init__(self) -> None:
        self.played: list[str] = []

    def map(self, fn, jobs):
        jobs = list(jobs)
        self.played += [job.out for job in jobs]
        return super().map(fn, jobs)


def _cut_short(run: Path, seed: int, steps: int = 25) -> None:
    """What a kill leaves in ``run``: an episode recorded part way (its first parts on
    disk), never finished."""
    shutil.rmtree(run, ignore_errors=True)
    recorder = EpisodeRecorder(envs.make("crafter", max_steps=100), run, agent="teacher", config_hash="b1",
                               flush_every=10)
    recorder.reset(seed)
    for _ in range(steps):
        recorder.step(0)
    assert any(run.rglob("part-*.parquet")) and read_index(run) == []


def test_a_teacher_run_again_plays_only_what_did_not_finish(tmp_path):
    pool, heard = Counting(), []
    first = record_teacher(tmp_path, [0, 1, 2], max_steps=40, prior="full", pool=pool,
                           progress=lambda n, total, _: heard.append((n, total)))
    assert heard == [(1, 3), (2, 3), (3, 3)]
    assert len(pool.played) == 3 and all((tmp_path / f"seed-{s}" / DONE).is_file() for s in range(3))
    _cut_short(tmp_path / "seed-2", 2)

    pool, heard = Counting(), []
    again = record_teacher(tmp_path, [0, 1, 2], max_steps=40, prior="full", pool=pool,
                           progress=lambda n, total, _: heard.append((n, total)))
    assert pool.played == [str(tmp_path / "seed-2")]  # the finished seeds are not played again
    assert heard == [(1, 1)]  # progress counts what this run plays
    assert [len(read_index(tmp_path / f"seed-{s}")) for s in range(3)] == [1, 1, 1]  # nor recorded twice
    assert [e["achievements"] for e in again["episodes"]] == [e["achievements"] for e in first["episodes"]]
    assert again["crafter_score"] == first["crafter_score"]

    pool = Counting()
    record_teacher(tmp_path, [0, 1, 2], max_steps=40, prior="full", pool=pool)
    assert pool.played == []
    # recorded by older code, before two options were added: at their defaults, the same job
    done = tmp_path / "seed-0" / DONE
    saved = json.loads(done.read_text())
    for key in ("teacher_replan", "teacher_plans"):
        del saved["job"][key]
    done.write_text(json.dumps(saved))
    record_teacher(tmp_path, [0, 1, 2], max_steps=40, prior="full", pool=pool)
    assert pool.played == []
    with pytest.raises(ValueError, match="another job \\(teacher_replan: False there, True now\\)"):
        play([RolloutJob(seed=0, out=str(tmp_path / "seed-0"), max_steps=40, label="teacher", teacher_replan=True)],
             InlinePool())
    # another job into the same folder, or episodes nobody marked finished: refused, kept
    with pytest.raises(ValueError, match="another job \\(max_steps: 40 there, 60 now\\)"):
        record_teacher(tmp_path, [0], max_steps=60, prior="full", pool=InlinePool())
    with pytest.raises(ValueError, match="another job \\(beta"):
        play([RolloutJob(seed=1, out=str(tmp_path / "seed-1"), beta=0.5, checkpoint="x", max_steps=40)],
             InlinePool())
    (tmp_path / "seed-1" / DONE).unlink()
    with pytest.raises(ValueError, match=f"finished episodes but no {DONE}"):
        record_teacher(tmp_path, [1], max_steps=40, prior="full", pool=InlinePool())
    assert len(read_index(tmp_path / "seed-1")) == 1
    (tmp_path / "seed-0" / DONE).write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        record_teacher(tmp_path, [0], max_steps=40, prior="full", pool=InlinePool())


@pytest.fixture(scope="module")
def teacher_and_student(run_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dagger")
    record_teacher(root / "teacher", [0], max_steps=80, prior="full", pool=InlinePool())
    train(load("tiny", ["train.steps=4"]), [run_dir], root / "student")
    return root / "teacher" / "seed-0", root / "student"


def _dagger(rounds: int, *sets: str):
    return load("tiny", [f"dagger.rounds={rounds}", "dagger.episodes=2", "dagger.max_steps=30", *sets])


def test_dagger_run_again_continues_where_it_stopped(teacher_and_student, tmp_path):
    teacher, student = teacher_and_student
    out = tmp_path / "dg"
    pool = Counting()
    first = run_dagger(_dagger(2), [teacher], student, out, pool=pool)
    assert len(pool.played) == 4 and [r["round"] for r in first] == [0, 1]
    # killed while it wrote round 1's line; one of that round's rollouts had been cut short
    log = out / "dagger.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[0] + "\n" + lines[1][:25])
    _cut_short(out / "round-1" / "rollouts" / "seed-1", 1)

    pool = Counting()
    again = run_dagger(_dagger(2), [teacher], student, out, pool=pool)
    assert pool.played == [str(out / "round-1" / "rollouts" / "seed-1")]
    assert again == first  # the replayed rollout and the round's validation, as before
    assert [json.loads(line)["round"] for line in log.read_text().splitlines()] == [0, 1]
    assert all(len(read_index(run)) == 1 for run in out.glob("round-*/rollouts/seed-*"))

    pool = Counting()  # one round more: only it plays, from round 1's student
    more = run_dagger(_dagger(3, "dagger.workers=2"), [teacher], student, out, pool=pool)
    assert [Path(p).parts[-3] for p in pool.played] == ["round-2", "round-2"]
    assert more[:2] == first and more[2]["checkpoint"] == str(out / "round-2" / "student")

    started = json.loads((out / "dagger.json").read_text())  # as older code wrote it, before two options
    for key in ("teacher_stop_when_sealed", "teacher_replan"):
        del started["config"]["dagger"][key]
    (out / "dagger.json").write_text(json.dumps(started))
    pool = Counting()
    assert run_dagger(_dagger(3), [teacher], student, out, pool=pool) == more and pool.played == []
    with pytest.raises(ValueError, match="another config \\(dagger.teacher_replan: False there, True now\\)"):
        run_dagger(_dagger(3, "dagger.teacher_replan=true"), [teacher], student, out, pool=InlinePool())

    with pytest.raises(ValueError, match="another config \\(dagger.beta: \\[0.5, 0.0\\] there, \\[0.9\\] now\\)"):
        run_dagger(_dagger(2, "dagger.beta=[0.9]"), [teacher], student, out, pool=InlinePool())
    with pytest.raises(ValueError, match="another checkpoint"):
        run_dagger(_dagger(2), [teacher], out / "round-0" / "student", out, pool=InlinePool())
    (out / "dagger.json").unlink()
    with pytest.raises(ValueError, match="holds DAgger rounds but no dagger.json"):
        run_dagger(_dagger(2), [teacher], student, out, pool=InlinePool())

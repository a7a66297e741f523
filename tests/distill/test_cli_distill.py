"""``steve distill ...`` and ``steve run --agent student`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from distill import checkpoint as ck
from envs.episodes import read_index, read_steps
from tests.conftest import run_cli


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # run_cli's subprocesses inherit this: batch-1 inference on a busy 2-core box is
    # many times slower with two threads than with one.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def ckpt(run_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("cli_ckpt") / "ckpt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        proc = run_cli("distill", "train", "--data", str(run_dir), "--config", "tiny", "--out", str(out),
                       "--set", "train.steps=3")
    return out, proc


def _one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and "Traceback" not in proc.stdout
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_train_prints_a_table(ckpt):
    out, proc = ckpt
    assert "student (tiny)" in proc.stdout
    for row in ("action_agreement", "val_loss", "parameters", "train_samples"):
        assert row in proc.stdout
    # stderr is a pipe here, as in a batch job's log: plain progress lines, not a silent bar
    assert "train: step 3/3  loss " in proc.stderr, proc.stderr
    assert ck.read(out).step == 3 and (out / "metrics.jsonl").exists()


def test_progress_without_a_terminal_is_a_line_a_while():
    from io import StringIO

    from rich.console import Console

    from steve.distill_cli import _ProgressBar

    def steps_printed(every_s: float, stretches: list[int]) -> list[str]:
        log = StringIO()
        with _ProgressBar("retrain", Console(file=log, force_terminal=False, width=200), every_s=every_s) as bar:
            for total in stretches:  # DAgger: one stretch of training a round, counted from 1
                for step in range(1, total + 1):
                    bar(step, total, {"loss": 0.5, "action_agreement": 0.25})
        return [line.split()[2] for line in log.getvalue().splitlines()]

    assert steps_printed(3600, [20, 3]) == ["1/20", "20/20", "1/3", "3/3"]  # each start and end
    assert steps_printed(0, [12]) == [f"{i}/12" for i in range(1, 13)]
    log = StringIO()
    with _ProgressBar("train", Console(file=log, force_terminal=False, width=200), every_s=0) as bar:
        for step in range(1, 12):
            bar(step, 100, {"loss": 0.5})
    assert log.getvalue().splitlines()[-1].startswith("train: step 11/100  loss 0.500  ~")
    log = StringIO()  # DAgger: its rollouts and its retraining, round after round, on one display
    with _ProgressBar("retrain", Console(file=log, force_terminal=False, width=200), every_s=3600) as bar:
        rollouts = bar.stream("rollouts", "episode")
        for _ in range(2):
            for n in (1, 2, 3):
                rollouts(n, 3, {})
            for step in (1, 2):
                bar(step, 2, {"loss": 0.5})
    assert [line.split("  ")[0] for line in log.getvalue().splitlines()] == [
        "rollouts: episode 1/3", "rollouts: episode 3/3", "retrain: step 1/2", "retrain: step 2/2"] * 2


def test_train_unknown_key_is_one_line(run_dir, tmp_path):
    proc = run_cli("distill", "train", "--data", str(run_dir), "--config", "tiny", "--out", str(tmp_path / "o"),
                   "--set", "train.nope=1", check=False)
    _one_line_error(proc, "train.nope")
    assert not (tmp_path / "o").exists()


def test_train_bad_value_is_one_line(run_dir, tmp_path):
    proc = run_cli("distill", "train", "--data", str(run_dir), "--config", "tiny", "--out", str(tmp_path / "o"),
                   "--set", "train.action_loss=mse", check=False)
    _one_line_error(proc, "train.action_loss")


def test_train_missing_data_is_one_line(tmp_path):
    missing = tmp_path / "no-such-run"
    proc = run_cli("distill", "train", "--data", str(missing), "--config", "tiny", "--out", str(tmp_path / "o"),
                   check=False)
    _one_line_error(proc, str(missing))


def test_eval_prints_json(ckpt, run_dir):
    out, _ = ckpt
    proc = run_cli("distill", "eval", "--checkpoint", str(out), "--data", str(run_dir), "--json")
    metrics = json.loads(proc.stdout)
    assert metrics["step"] == 3 and metrics["checkpoint"] == str(out / "ckpt-0000003")
    assert 0.0 <= metrics["action_agreement"] <= 1.0 and 0.0 <= metrics["subgoal_exact"] <= 1.0
    assert metrics["val_samples"] > 0 and metrics["parameters"] > 0



def test_eval_by_label_adds_up_to_the_totals(ckpt, run_dir):
    out, _ = ckpt
    proc = run_cli("distill", "eval", "--checkpoint", str(out), "--data", str(run_dir), "--by-label", "--json")
    m = json.loads(proc.stdout)
    assert m["by_light"]  # the run is Crafter's
    # a student's action among the teacher's equally good ones agrees in the looser sense too
    assert m["action_agreement"] <= m["action_agreement_any"] <= 1.0
    for key, rate in (("by_action", "recall"), ("by_subgoal", "agreement"), ("by_light", "agreement")):
        rows = [r for r in m[key].values() if r["n"]]
        assert sum(r["n"] for r in rows) == m["val_samples"]
        assert sum(r["n"] * r[rate] for r in rows) / m["val_samples"] == pytest.approx(m["action_agreement"])
        assert (sum(r["n"] * r[f"{rate}_any"] for r in rows) / m["val_samples"]
                == pytest.approx(m["action_agreement_any"]))
    # each disagreement counted once, under its subgoal (at most 10 listed)
    wrong = (1 - m["action_agreement_any"]) * m["val_samples"]
    assert sum(r["n"] for r in m["by_mistake"].values()) <= round(wrong)
    assert len(m["by_mistake"]) == 10 or sum(r["n"] for r in m["by_mistake"].values()) == round(wrong)
    for name, r in m["by_mistake"].items():
        assert r["share"] == pytest.approx(r["n"] / m["by_subgoal"][name.split(": ")[0]]["n"])
    table = run_cli("distill", "eval", "--checkpoint", str(out), "--data", str(run_dir), "--by-label").stdout
    assert "agreement by action" in table and "agreement by subgoal" in table and "agreement by light" in table
    assert "most common disagreements" in table
    assert next(iter(m["by_subgoal"])) in table


def test_eval_bad_checkpoint_is_one_line(run_dir, tmp_path):
    proc = run_cli("distill", "eval", "--checkpoint", str(tmp_path), "--data", str(run_dir), check=False)
    _one_line_error(proc, str(tmp_path))


def test_run_student(ckpt, tmp_path):
    out, _ = ckpt
    run = tmp_path / "play"
    run_cli("run", "--agent", "student", "--checkpoint", str(out), "--episodes", "1", "--max-steps", "100",
            "--out", str(run))
    summary = json.loads((run / "summary.json").read_text())
    assert 0.0 <= summary["crafter_score"] <= 100.0 and summary["agent"] == "student"
    (meta,) = read_index(run)
    assert meta.agent == "student" and 0 < meta.length <= 100
    steps = read_steps(run / "episodes" / meta.episode_id, columns=["actor", "subgoal"]).to_pydict()
    assert set(steps["actor"]) == {"student"}  # the agent annotates itself


def test_student_plays_side_by_side_the_episodes_it_plays_in_turn(ckpt, tmp_path):
    """``--workers 2``: torch in spawned workers, each its own copy of the student; the
    sampled actions are seeded by the episode, so the same episodes, step for step."""
    out, _ = ckpt
    runs = {}
    for workers in ("1", "2"):
        runs[workers] = tmp_path / f"w{workers}"
        run_cli("eval", "--agent", "student", "--checkpoint", str(out), "--episodes", "3", "--seed", "7",
                "--max-steps", "120", "--workers", workers, "--out", str(runs[workers]))
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs.values()]
    assert summaries[0]["per_episode"] == summaries[1]["per_episode"] and summaries[1]["seeds"] == [7, 8, 9]
    a, b = (read_steps(run, columns=["episode_id", "t", "action", "subgoal"]) for run in runs.values())
    assert a.sort_by([("episode_id", "ascending"), ("t", "ascending")]).equals(
        b.sort_by([("episode_id", "ascending"), ("t", "ascending")]))


def test_run_student_without_checkpoint_is_one_line(tmp_path):
    proc = run_cli("run", "--agent", "student", "--episodes", "1", "--max-steps", "10",
                   "--out", str(tmp_path / "play"), check=False)
    _one_line_error(proc, "checkpoint")


def test_teacher_records_episodes(tmp_path):
    out = tmp_path / "teacher"
    proc = run_cli("distill", "teacher", "--out", str(out), "--episodes", "1", "--max-steps", "80", "--workers", "1")
    assert "crafter_score" in proc.stdout and "teacher: episode 1/1" in proc.stderr, proc.stderr
    (meta,) = read_index(out / "seed-0")
    assert meta.agent == "teacher" and meta.length == 80 and meta.config_hash == "b1"
    run_cli("distill", "teacher", "--out", str(tmp_path / "short"), "--episodes", "1", "--max-steps", "80",
            "--workers", "1", "--memory", "0")
    (meta,) = read_index(tmp_path / "short" / "seed-0")
    assert meta.config_hash == "b1-m0"  # the teacher that played on its view alone
    run_cli("distill", "teacher", "--out", str(tmp_path / "noisy"), "--episodes", "1", "--max-steps", "80",
            "--workers", "1", "--noise", "0.1")
    (meta,) = read_index(tmp_path / "noisy" / "seed-0")
    assert meta.config_hash == "b1-e0.1"  # pushed off its path one step in ten
    proc = run_cli("distill", "teacher", "--out", str(tmp_path / "bad"), "--noise", "1", check=False)
    assert proc.returncode != 0 and "noise" in proc.stderr


def test_play_on_the_teacher_plans(ckpt, tmp_path):
    """``steve distill play``: the student in control, the teacher labelling beside it, on
    the teacher's subgoals or its own; a bad --plans or checkpoint is one line."""
    out, _ = ckpt
    proc = run_cli("distill", "play", "--checkpoint", str(out), "--out", str(tmp_path / "tp"), "--episodes", "1",
                   "--seed", "4", "--max-steps", "60", "--workers", "1", "--teacher-stops-when-sealed")
    assert "acting on the teacher's subgoals, 1 episode" in proc.stdout and "crafter_score" in proc.stdout
    assert "action agreement with the teacher" in proc.stdout and "play: episode 1/1" in proc.stderr, proc.stderr
    assert "subgoal agreement" not in proc.stdout  # it wrote none of its own
    (meta,) = read_index(tmp_path / "tp" / "seed-4")
    assert meta.agent == "student-teacher-plans" and meta.config_hash == "b0-sealed-tplans" and meta.length == 60
    proc = run_cli("distill", "play", "--checkpoint", str(out), "--out", str(tmp_path / "own"), "--episodes", "1",
                   "--seed", "4", "--max-steps", "60", "--workers", "1", "--plans", "own", "--teacher-replans")
    assert "acting on its own subgoals" in proc.stdout and "subgoal agreement with the teacher" in proc.stdout
    (meta,) = read_index(tmp_path / "own" / "seed-4")
    assert meta.agent == "student-labelled" and meta.config_hash == "b0-replan"
    _one_line_error(run_cli("distill", "play", "--checkpoint", str(out), "--out", str(tmp_path / "x"),
                            "--plans", "mine", check=False), "--plans is own or teacher")
    _one_line_error(run_cli("distill", "play", "--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path / "y"),
                            check=False), "none")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_dagger_round(ckpt, run_dir, tmp_path):
    out, _ = ckpt
    dg = tmp_path / "dg"
    proc = run_cli("distill", "dagger", "--data", str(run_dir), "--checkpoint", str(out), "--out", str(dg),
                   "--config", "tiny", "--rounds", "1", "--episodes", "2", "--workers", "1",
                   "--set", "dagger.max_steps=100", "--set", "dagger.steps_per_round=2")
    assert "DAgger" in proc.stdout and "round 0" in proc.stderr
    assert "rollouts: episode 2/2" in proc.stderr and "retrain: step 2/2" in proc.stderr, proc.stderr
    (line,) = (dg / "dagger.jsonl").read_text().splitlines()
    summary = json.loads(line)
    assert summary["round"] == 0 and summary["runs"] == 3
    assert ck.read(dg / "round-0" / "student").step == 2
    assert sorted(p.name for p in (dg / "round-0" / "rollouts").iterdir()) == ["seed-0", "seed-1"]


@pytest.mark.slow
def test_end_to_end_record_train_play(tmp_path):
    """The whole pipeline as the README gives it: the teacher records, the student trains
    on those episodes (and learns from them), then plays alone."""
    teacher = tmp_path / "teacher"
    run_cli("distill", "teacher", "--out", str(teacher), "--episodes", "2", "--max-steps", "200", "--workers", "2")
    student = tmp_path / "student"
    run_cli("distill", "train", "--data", str(teacher), "--config", "tiny", "--out", str(student),
            "--set", "train.steps=60", "--set", "train.eval_every=60", "--set", "data.val_fraction=0.0")
    rows = [json.loads(line) for line in (student / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    assert losses[-1] < 0.8 * losses[0], losses  # it learned something from the teacher
    play = tmp_path / "play"
    run_cli("run", "--agent", "student", "--checkpoint", str(student), "--episodes", "1", "--seed", "5",
            "--max-steps", "150", "--out", str(play))
    summary = json.loads((play / "summary.json").read_text())
    assert summary["agent"] == "student" and summary["episodes"] == 1
    assert ck.read(student).tokenizer.encode("collect wood")[0] != 3  # the teacher's words, not <unk>


@pytest.mark.slow
def test_torchrun_data_parallel(run_dir, tmp_path):
    """``torchrun --nproc-per-node 2`` trains with no change (gloo on CPU here): one
    checkpoint, one metrics file, one table."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run([str(torchrun), "--nproc-per-node", "2", "-m", "steve.cli", "distill", "train",
                           "--data", str(run_dir), "--config", "tiny", "--out", str(out), "--set", "train.steps=4",
                           "--set", "train.save_every=2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("student (tiny)") == 1
    assert ck.read(out).step == 4
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 4

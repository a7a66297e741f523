"""The real program, in a subprocess, with tiny budgets; checks what it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agents.runner import STORE_COPIES
from envs.episodes import read_index, read_steps
from tests.conftest import ROOT, run_cli

ACHIEVEMENTS = 22


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    run_cli("run", "--env", "crafter", "--agent", "random", "--episodes", "2", "--seed", "5",
            "--max-steps", "150", "--out", str(out), "--video")
    return out


def test_run_writes_episodes_summary_config_and_videos(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["seeds"] == [5, 6]
    assert len(summary["success_rates"]) == ACHIEVEMENTS
    assert 0 <= summary["crafter_score"] <= 100
    assert [e["seed"] for e in summary["per_episode"]] == [5, 6]
    assert all(e["length"] <= 150 for e in summary["per_episode"])
    steps = pd.read_parquet(run_dir / "episodes")
    assert len(steps) == sum(e["length"] for e in summary["per_episode"])
    assert summary["mean_length"] == pytest.approx(len(steps) / 2)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["env"]["max_steps"] == 150 and cfg["run"]["seed"] == 5 and cfg["run"]["episodes"] == 2
    videos = sorted((run_dir / "videos").glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 1000 for v in videos)


def test_same_seed_writes_the_same_episodes(run_dir, tmp_path):
    again = tmp_path / "again"
    proc = run_cli("run", "--episodes", "2", "--seed", "5", "--max-steps", "150", "--out", str(again))
    # stderr is a pipe, as in a batch job's log: a line an episode, not a bar printed at the end
    lines = [line.split(" (")[0] for line in proc.stderr.splitlines() if line.startswith("seed ")]
    lengths = [e["length"] for e in json.loads((again / "summary.json").read_text())["per_episode"]]
    assert lines[0].startswith(f"seed 5: {lengths[0]} steps, ") and lines[1].startswith(f"seed 6: {lengths[1]} steps")
    assert len(lines) == 2 and "━" not in proc.stderr, proc.stderr
    a, b = read_steps(run_dir), read_steps(again)
    assert a.num_rows == b.num_rows
    for col in ("episode_id", "t", "frame", "action", "reward", "inventory", "achievements"):
        assert a.column(col).equals(b.column(col)), col
    assert json.loads((run_dir / "summary.json").read_text())["per_episode"] == \
        json.loads((again / "summary.json").read_text())["per_episode"]


def test_side_by_side_writes_the_episodes_and_videos_of_one_after_another(run_dir, tmp_path):
    wide = tmp_path / "wide"
    run_cli("run", "--episodes", "2", "--seed", "5", "--max-steps", "150", "--workers", "2", "--video",
            "--out", str(wide))
    a, b = read_steps(run_dir), read_steps(wide)
    for col in ("episode_id", "t", "frame", "action", "reward", "achievements"):
        assert a.column(col).equals(b.column(col)), col
    narrow, summary = (json.loads((r / "summary.json").read_text()) for r in (run_dir, wide))
    assert summary["per_episode"] == narrow["per_episode"] and summary["videos"] == narrow["videos"]
    assert [m.seed for m in read_index(wide)] == [5, 6]
    assert yaml.safe_load((wide / "config.yaml").read_text())["run"]["workers"] == 2


def test_steve_without_learning_plays_side_by_side_from_copies_of_its_store(tmp_path):
    """``steve eval --workers 2``: each worker reads its own copy of the store (one process
    holds a store's directory at a time), the episodes are those of one after another,
    and the copies are gone afterwards, and after a kill when the run resumes."""
    learning = tmp_path / "l"
    run_cli("run", "--agent", "steve", "--episodes", "1", "--seed", "6", "--max-steps", "150", "--out", str(learning))
    runs = {}
    for workers in ("1", "2"):
        runs[workers] = tmp_path / f"w{workers}"
        run_cli("eval", "--agent", "steve", "--memory", str(learning / "memory"), "--episodes", "2", "--seed", "7",
                "--max-steps", "150", "--workers", workers, "--out", str(runs[workers]))
    a, b = read_steps(runs["1"]), read_steps(runs["2"])
    for col in ("episode_id", "t", "action", "subgoal", "achievements"):
        assert a.column(col).equals(b.column(col)), col
    one, two = (json.loads((runs[w] / "summary.json").read_text())["per_episode"] for w in ("1", "2"))
    assert one == two and [e["learned"] for e in two] == [{}, {}]
    copies = runs["2"] / STORE_COPIES
    assert not copies.exists()
    (copies / "999").mkdir(parents=True)  # as a killed run leaves them
    run_cli("run", "--resume", str(runs["2"]))
    assert not copies.exists()


def test_side_by_side_killed_leaves_no_worker_and_resumes_to_the_same_episodes(tmp_path):
    """SIGKILL of the parent once an episode is in the index: its workers go with it
    (nothing writes into the run afterwards), and --resume ends where one uninterrupted
    run ends."""
    out = tmp_path / "k"
    cmd = [sys.executable, "-m", "steve.cli", "run", "--episodes", "12", "--seed", "3", "--max-steps", "400",
           "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "episodes.parquet").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group(proc.pid), "workers outlived their parent"
    finished = len(read_index(out))
    assert 1 <= finished < 12, finished  # killed mid-run
    run_cli("run", "--resume", str(out))
    whole = tmp_path / "whole"
    run_cli("run", "--episodes", "12", "--seed", "3", "--max-steps", "400", "--out", str(whole))
    resumed, uninterrupted = (json.loads((r / "summary.json").read_text()) for r in (out, whole))
    assert resumed["per_episode"] == uninterrupted["per_episode"]
    assert read_steps(out).num_rows == read_steps(whole).num_rows


def _group(pgid: int) -> list[int]:
    """Live processes of a process group (zombies excepted)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def test_existing_run_directory_is_refused(run_dir):
    proc = run_cli("run", "--episodes", "1", "--max-steps", "10", "--out", str(run_dir), check=False)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr


def test_bad_config_fails_before_anything_runs(tmp_path):
    out = tmp_path / "never"
    proc = run_cli("run", "--out", str(out), "--set", "run.epsiodes=2", check=False)
    assert proc.returncode == 2
    assert "unknown key 'run.epsiodes'" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_env_info_lists_actions_fields_and_achievements():
    info = json.loads(run_cli("env", "info", "--env", "crafter", "--json").stdout)
    assert info["actions"][0] == "noop" and len(info["actions"]) == 17
    assert len(info["achievements"]) == ACHIEVEMENTS
    assert {"frame", "inventory", "vitals", "local_view", "position", "facing",
            "achievements", "step", "daylight"} <= set(info["observation_fields"])


def test_episodes_check_names_a_corrupt_file(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    victim = sorted((copy / "episodes").rglob("part-*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    proc = run_cli("episodes", "check", str(copy), check=False)
    assert proc.returncode == 1 and victim.name in proc.stderr
    ok = run_cli("episodes", "check", str(run_dir))
    assert "0 corrupt" in ok.stdout


def test_a_run_without_the_student_does_not_import_torch(tmp_path):
    """torch costs a second at start-up; only the student (and MiniLM) need it."""
    code = ("import sys; from steve.cli import main; sys.argv = ['steve', 'run', '--agent', 'random', "
            f"'--episodes', '1', '--max-steps', '20', '--out', {str(tmp_path / 'r')!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "summary.json").exists()


def test_eval_plays_without_learning_and_scores_against_another_run(run_dir, tmp_path):
    """``steve eval``: the steve agent reads its store and adds nothing to it, whatever
    --set says; the score, and against the module's random run (seeds 5-6) the paired
    difference on the seed both played."""
    out = tmp_path / "e"
    report = json.loads(run_cli("eval", "--agent", "steve", "--episodes", "2", "--seed", "6", "--max-steps", "150",
                                "--out", str(out), "--set", "agent.learn=true", "--against", str(run_dir),
                                "--json").stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert [e["learned"] for e in summary["per_episode"]] == [{}, {}]
    assert report["a"]["episodes"] == 2 and report["a"]["crafter_score"] == pytest.approx(summary["crafter_score"])
    paired = report["paired"]
    assert (paired["seeds"], paired["only_a"], paired["only_b"]) == (1, 1, 1)  # seed 6 in common
    assert paired["difference"] == pytest.approx(paired["score_a"] - paired["score_b"])
    learning = tmp_path / "l"  # the same agent, run: what it learns is written
    run_cli("run", "--agent", "steve", "--episodes", "1", "--seed", "6", "--max-steps", "150", "--out", str(learning))
    assert json.loads((learning / "summary.json").read_text())["per_episode"][0]["learned"]
    proc = run_cli("eval", "--agent", "random", "--out", str(tmp_path / "never"), "--against", str(tmp_path / "nope"),
                   check=False)  # refused before anything plays
    assert proc.returncode == 2 and "nope" in proc.stderr and not (tmp_path / "never").exists()

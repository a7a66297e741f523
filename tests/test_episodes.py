from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import envs
from envs.base import Wrapper
from envs.episodes import (
    STEP_SCHEMA, CorruptEpisodeError, carried_out, decode_frames, iter_episodes, part_files, read_index, read_steps,
    verify_run,
)
from envs.recorder import EpisodeRecorder


def _record(run_dir: Path, seeds=(0,), steps=120, flush_every=50, probs=False):
    env = EpisodeRecorder(envs.make("crafter", max_steps=steps), run_dir, agent="test",
                          config_hash="abcdef0123456789", flush_every=flush_every, task="collect wood")
    seen = []
    rng = np.random.default_rng(0)
    for seed in seeds:
        obs, info = env.reset(seed)
        env.annotate(subgoal="find tree", plan="1. find tree 2. collect wood")
        frames, actions, rewards = [], [], []
        done = False
        while not done:
            a = int(rng.integers(0, 6))
            frames.append(obs.frame.copy())
            p = np.full(len(env.action_names), 1 / len(env.action_names)) if probs else None
            obs, r, term, trunc, _ = env.step(a, teacher_probs=p)
            actions.append(a)
            rewards.append(r)
            done = term or trunc
        seen.append((info["episode_id"], np.stack(frames), actions, rewards))
    env.close()
    return seen


def test_round_trip(tmp_path):
    seen = _record(tmp_path, seeds=(0, 1), probs=True)
    episodes = list(iter_episodes([tmp_path]))
    assert [m.episode_id for m, _ in episodes] == [s[0] for s in seen]
    for (meta, table), (eid, frames, actions, rewards) in zip(episodes, seen):
        assert meta.length == len(actions) == table.num_rows
        assert meta.seed is not None and meta.env == "crafter" and meta.agent == "test"
        assert table.column("t").to_pylist() == list(range(len(actions)))
        assert np.array_equal(decode_frames(table.column("frame").to_pylist(), meta.frame_shape), frames)
        assert table.column("action").to_pylist() == actions
        assert np.allclose(table.column("reward").to_pylist(), rewards)
        assert meta.episode_return == pytest.approx(sum(rewards), abs=1e-5)
        assert table.column("truncated").to_pylist()[-1] or table.column("terminated").to_pylist()[-1]
        row = table.slice(3, 1).to_pylist()[0]
        assert row["task"] == "collect wood" and row["subgoal"] == "find tree"
        assert row["actor"] == "teacher" and len(row["teacher_probs"]) == 17
        assert json.loads(row["inventory"])["wood"] >= 0


def test_readable_by_plain_pandas_and_pyarrow(tmp_path):
    _record(tmp_path, seeds=(0, 1), steps=60)
    steps = pd.read_parquet(tmp_path / "episodes")
    assert len(steps) == 120 and set(steps.episode_id.unique()) == {m.episode_id for m in read_index(tmp_path)}
    shape = json.loads(pq.read_schema(part_files(tmp_path)[0]).metadata[b"steve.frame_shape"])
    assert np.frombuffer(steps.frame.iloc[0], np.uint8).reshape(shape).shape == (64, 64, 3)
    index = pd.read_parquet(tmp_path / "episodes.parquet")
    assert list(index.length) == [60, 60] and "return" in index.columns


def test_truncated_file_is_detected_by_name(tmp_path):
    _record(tmp_path, steps=120, flush_every=50)
    victim = part_files(tmp_path)[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptEpisodeError, match=str(victim.name)):
        read_steps(tmp_path)
    report = verify_run(tmp_path)
    assert len(report["corrupt"]) == 1 and str(victim) in report["corrupt"][0]


def test_flipped_bytes_are_detected_by_checksum(tmp_path):
    _record(tmp_path, steps=60, flush_every=100)
    victim = part_files(tmp_path)[0]
    data = bytearray(victim.read_bytes())
    mid = len(data) // 3
    data[mid:mid + 64] = bytes(64)  # inside the frame column's pages
    victim.write_bytes(bytes(data))
    with pytest.raises(CorruptEpisodeError, match=victim.name):
        read_steps(tmp_path)


_KILLED = textwrap.dedent("""
    import sys, time, envs
    from pathlib import Path
    from envs.recorder import EpisodeRecorder
    env = EpisodeRecorder(envs.make("crafter"), Path(sys.argv[1]), agent="k", config_hash="0" * 16,
                          flush_every=40)
    env.reset(0)
    for t in range(130):  # daylight, standing still: the episode cannot end yet
        env.step(0)
    print("ready", flush=True)
    time.sleep(60)  # killed here, with 10 steps not yet flushed
""")


def test_killed_process_loses_only_unflushed_steps(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    report = verify_run(tmp_path)
    assert report["corrupt"] == [] and len(report["incomplete"]) == 1
    open_steps = read_steps(Path(report["incomplete"][0]))
    # Every full part of 40 reached disk, in order, intact: only the 10 unflushed are lost.
    assert open_steps.column("t").to_pylist() == list(range(120))
    assert len(pd.read_parquet(tmp_path / "episodes")) == 120


class _Overrules(Wrapper):
    """Carries out a noop at every third step whatever it is given, and says so (as
    DAgger's mirror env says when the student acts)."""

    def __init__(self, env):
        super().__init__(env)
        self.n = 0

    def step(self, action):
        self.n += 1
        taken = 0 if self.n % 3 == 0 else int(action)
        obs, reward, terminated, truncated, info = self.env.step(taken)
        return obs, reward, terminated, truncated, dict(info, taken=taken)


def test_the_action_carried_out_is_kept_beside_the_label_and_replays(tmp_path):
    env = EpisodeRecorder(_Overrules(envs.make("crafter", max_steps=90)), tmp_path, agent="m", config_hash="0" * 16,
                          flush_every=30)
    obs, _ = env.reset(4)
    labels, frames = [int(a) for a in np.random.default_rng(1).integers(1, 5, size=90)], []
    for a in labels:
        frames.append(obs.frame.copy())
        obs, *_ = env.step(a)
    env.close()
    steps = read_steps(tmp_path)
    assert steps.column("action").to_pylist() == labels
    done = [0 if (t + 1) % 3 == 0 else a for t, a in enumerate(labels)]
    assert steps.column("taken").to_pylist() == done and carried_out(steps).tolist() == done
    assert sum(a != b for a, b in zip(labels, done)) >= 20
    # resuming replays what was carried out, not the labels: the frames agree
    again = EpisodeRecorder(envs.make("crafter", max_steps=90), tmp_path, agent="m", config_hash="0" * 16,
                            flush_every=30)
    seen = []
    obs, info = again.resume(4, 60, on_replay=lambda o: seen.append(o.frame.copy()))
    assert info["resumed_at"] == 60 and np.array_equal(obs.frame, frames[60])
    assert all(np.array_equal(a, b) for a, b in zip(seen, frames[1:61]))


def test_version_1_files_read_with_taken_null(tmp_path):
    """Files written before ``taken`` existed: every reader sees it null, so the
    actions carried out are the recorded ones."""
    seen = _record(tmp_path, steps=40, flush_every=25)
    for f in part_files(tmp_path):
        table = pq.read_table(f)
        pq.write_table(table.drop_columns(["taken"]).replace_schema_metadata(table.schema.metadata), f,
                       write_page_checksum=True)
    steps = read_steps(tmp_path)
    assert steps.schema.equals(STEP_SCHEMA, check_metadata=False)
    assert steps.column("taken").null_count == steps.num_rows == 40
    assert carried_out(read_steps(tmp_path, ["action", "taken"])).tolist() == seen[0][2]
    assert read_steps(tmp_path, ["taken", "t"]).column_names == ["taken", "t"]
    assert verify_run(tmp_path)["corrupt"] == []


def test_writing_twice_into_one_directory_is_refused(tmp_path):
    _record(tmp_path, steps=20, flush_every=10)
    with pytest.raises(FileExistsError):
        _record(tmp_path, steps=20, flush_every=10)


def test_readable_by_hugging_face_datasets(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    _record(tmp_path / "run", seeds=(0,), steps=30)
    files = [str(p) for p in part_files(tmp_path / "run")]
    ds = datasets.load_dataset("parquet", data_files=files, split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 30 and ds[0]["task"] == "collect wood" and len(ds[0]["frame"]) == 64 * 64 * 3

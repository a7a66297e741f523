from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from distill.config import DataConfig, ModelConfig
from distill.data import DistillDataset, build_tokenizer, describe, split
from distill.checks import parse_check
from distill.steps import concat_tables, load_steps
from distill.tokenizer import BOS, EOS, PAD
from envs.episodes import (
    ACTORS,
    CorruptEpisodeError,
    EpisodeMeta,
    EpisodeWriter,
    decode_frames,
    episode_dir,
    part_files,
    read_index,
    read_steps,
    write_index,
)

ALL = DataConfig(actors=list(ACTORS), skip_asleep=False)  # every recorded step


@pytest.fixture(scope="module")
def table(recorded_run):
    return load_steps([recorded_run.run_dir], ALL)


def _rows(table, episode_id):
    e = next(i for i, ep in enumerate(table.episodes) if ep.episode_id == episode_id)
    return np.flatnonzero(table.episode == e)


# -- synthetic episodes, written directly: every column chosen by hand -------------------

def _step(**over):
    row = {"task": "open", "subgoal": "", "plan": "", "action": 0, "action_name": "noop",
           "teacher_probs": None, "reward": 0.0, "terminated": False, "truncated": False,
           "inventory": {}, "achievements": [], "actor": "teacher"}
    row.update(over)
    return row


def write_episodes(run_dir: Path, episodes: list[tuple[str, list[dict], dict]]) -> list[EpisodeMeta]:
    """Episodes of (id, step rows, index fields) with 4x4 random frames; returns the index."""
    rng = np.random.default_rng(1)
    metas = []
    for eid, rows, fields in episodes:
        meta = EpisodeMeta(episode_id=eid, seed=0, env="crafter", agent="synthetic",
                           config_hash="f" * 16, frame_shape=[4, 4, 3], **fields)
        writer = EpisodeWriter(run_dir, meta, flush_every=7)
        for t, row in enumerate(rows):
            row = dict(row, inventory=json.dumps(row["inventory"]), episode_id=eid, t=t)
            writer.append(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), **row)
        meta = writer.finish()
        meta.length = len(rows)
        metas.append(meta)
    write_index(run_dir, metas)
    return metas


def _plan(name, check):
    return f"1. [x] done already (until inventory sapling >= 1, 10 steps)\n2. [ ] {name} (until {check}, 200 steps)" \
           f"\n3. [ ] later (until achievement defeat_zombie, 300 steps)"


# -- loading -----------------------------------------------------------------------------

def test_frames_round_trip_exactly(recorded_run, table):
    assert len(table.episodes) == 3 and len(table) == sum(len(e.actions) for e in recorded_run.episodes)
    for rec in recorded_run.episodes:
        rows = _rows(table, rec.episode_id)
        on_disk = read_steps(episode_dir(recorded_run.run_dir, rec.episode_id))
        decoded = decode_frames(on_disk.column("frame").to_pylist(), [64, 64, 3])
        frames = np.stack([table.frame(i) for i in rows])
        assert frames.dtype == np.uint8 and frames.shape == rec.frames.shape
        assert np.array_equal(frames, decoded) and np.array_equal(frames, rec.frames)
    # Compressed in memory: well under the 12 KB of a raw frame.
    assert table.frame_data.nbytes < 0.6 * len(table) * 64 * 64 * 3


def test_columns_follow_the_recording(recorded_run, table):
    assert table.n_actions == len(recorded_run.action_names) == 17
    assert table.action.dtype == np.int16 and table.teacher_probs.dtype == np.float16
    for rec in recorded_run.episodes:
        rows = _rows(table, rec.episode_id)
        assert table.t[rows].tolist() == list(range(len(rec.actions)))
        assert table.action[rows].tolist() == rec.actions
        assert [table.subgoal_text(i) for i in rows] == rec.subgoals
        assert {table.task_text(i) for i in rows} == {rec.task}
        assert [ACTORS[a] for a in table.actor[rows]] == rec.actors
        has = [p is not None for p in rec.probs]
        assert table.has_probs[rows].tolist() == has
        for i, p in zip(rows, rec.probs):
            expected = np.zeros(17) if p is None else p
            assert np.allclose(table.teacher_probs[i], expected, atol=1e-3)
    for a, name in table.action_names.items():
        assert recorded_run.action_names[a] == name
    meta = {m.episode_id: m for m in read_index(recorded_run.run_dir)}
    for ep in table.episodes:
        assert ep.seed == meta[ep.episode_id].seed and ep.run_dir == recorded_run.run_dir
        assert ep.episode_return == pytest.approx(meta[ep.episode_id].episode_return)
        assert ep.frame_shape == (64, 64, 3)


def test_actor_filter(recorded_run, table):
    default = load_steps([recorded_run.run_dir], DataConfig(skip_asleep=False))  # teacher + expert-relabelled
    assert set(default.actor.tolist()) == {ACTORS.index("teacher"), ACTORS.index("expert-relabelled")}
    assert len(default) == len(table) - 10 * len(recorded_run.episodes)
    student = load_steps([recorded_run.run_dir], DataConfig(actors=["student"]))
    assert len(student) == 30 and set(student.t.tolist()) == set(range(30, 40))
    first = next(i for i in range(len(default)) if default.t[i] == 40)
    assert np.array_equal(default.frame(first), recorded_run.episodes[0].frames[40])


def test_steps_taken_asleep_are_dropped(tmp_path):
    sleep = lambda **kw: _step(action=6, action_name="sleep", **kw)  # noqa: E731
    student = lambda taken, **kw: dict(actor="expert-relabelled", taken=taken, **kw)  # noqa: E731
    write_episodes(tmp_path, [("e", [_step(action=1, action_name="move_left"), sleep(), sleep(), sleep(),
                                     _step(action=0, action_name="noop"), sleep(),
                                     sleep(**student(5)),  # the student chose "do", awake: a decision
                                     sleep(**student(6)), sleep(**student(6)),
                                     _step(**student(6))], {})])  # asleep, whatever the teacher said
    table = load_steps([tmp_path], DataConfig())
    assert table.pos.tolist() == [0, 1, 4, 5, 6, 7]  # the first sleep carried out of each run is a decision
    assert describe(table)["dropped"]["steps_asleep"] == 4
    assert table.history(2, 3).tolist() == [6, 6, 6]  # the history still holds the steps asleep
    assert len(load_steps([tmp_path], DataConfig(skip_asleep=False))) == 10


def test_joined_tables_equal_one_read_of_all_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_episodes(a, [("a0", [_step(subgoal="collect wood", action=1), _step(subgoal="place table", action=2),
                               _step(actor="student", action=3), _step(subgoal="collect wood", action=4)], {})])
    write_episodes(b, [("b0", [_step(subgoal="drink water", action=5), _step(actor="student", action=6),
                               _step(subgoal="collect wood", action=7)], {}),
                       ("b1", [_step(task="collect_stone", subgoal="place table", action=8)], {})])
    cfg = DataConfig()  # teacher steps only: the student's are dropped, their actions stay in the history
    joined, whole = concat_tables([load_steps([a], cfg), load_steps([b], cfg)]), load_steps([a, b], cfg)
    assert len(joined) == len(whole) == 6 and len(joined.episodes) == 3
    for i in range(len(whole)):
        assert joined.task_text(i) == whole.task_text(i) and joined.subgoal_text(i) == whole.subgoal_text(i)
        assert np.array_equal(joined.frame(i), whole.frame(i))
        assert np.array_equal(joined.history(i, 3), whole.history(i, 3))
        assert joined.episodes[joined.episode[i]] == whole.episodes[whole.episode[i]]
    for col in ("t", "pos", "action", "teacher_probs", "has_probs", "actor"):
        assert np.array_equal(getattr(joined, col), getattr(whole, col)), col
    with pytest.raises(ValueError, match="action counts"):
        concat_tables([joined, dataclasses.replace(whole, n_actions=5)])


def test_episode_filters(tmp_path):
    write_episodes(tmp_path, [
        ("poor", [_step()] * 3, {"return": 0.5, "achievements": ["collect_wood"]}),
        ("rich", [_step()] * 4, {"return": 3.0, "achievements": ["collect_wood", "place_table"]}),
        ("rich_few", [_step()] * 5, {"return": 2.0, "achievements": []}),
    ])
    ids = lambda t: sorted(ep.episode_id for ep in t.episodes)
    assert ids(load_steps([tmp_path], DataConfig())) == ["poor", "rich", "rich_few"]
    assert ids(load_steps([tmp_path], DataConfig(min_return=1.0))) == ["rich", "rich_few"]
    assert ids(load_steps([tmp_path], DataConfig(min_achievements=1))) == ["poor", "rich"]
    both = load_steps([tmp_path], DataConfig(min_return=1.0, min_achievements=2))
    assert ids(both) == ["rich"] and len(both) == 4
    assert describe(both)["dropped"]["episodes_below_min_return"] == 1
    with pytest.raises(ValueError, match=r"no steps left .*success_only False\)$"):
        load_steps([tmp_path], DataConfig(min_return=10.0))
    # another actor's steps: the error names the actors there are, and only a few of many runs
    run = re.escape(str(tmp_path))
    with pytest.raises(ValueError, match=rf"in {run}, {run}, {run} and 2 more .*the steps' actors: \['teacher'\]\)$"):
        load_steps([tmp_path] * 5, DataConfig(actors=["student"]))


def test_success_only_keeps_the_segments_that_reached_their_subgoal(tmp_path):
    wood = {"subgoal": "collect wood", "plan": _plan("collect wood", "inventory wood >= 2")}
    stone = {"subgoal": "collect stone", "plan": _plan("collect stone", "inventory stone >= 1")}
    table_ = {"subgoal": "place table", "plan": _plan("place table", "achievement place_table")}
    rest = {"subgoal": "sleep", "plan": _plan("sleep", "energy >= 6")}  # a vital: not parsed
    drink = {"subgoal": "drink water", "plan": _plan("drink water", "inventory drink >= 9")}
    steps = (
        [_step(**wood, inventory={"wood": k}) for k in range(3)]  # wood 2 after: reached
        + [_step(**stone, inventory={"wood": 2}) for _ in range(2)]  # stone 0 after: not reached
        + [_step(**table_, inventory={"wood": 2}) for _ in range(2)]
        + [_step(**rest, inventory={"wood": 1}, achievements=["place_table"]) for _ in range(2)]  # unparsed
        + [_step(**drink, inventory={}, achievements=["place_table"]) for _ in range(2)]  # last, truncated
    )
    steps[-1]["truncated"] = True
    died = [_step(**wood, inventory={"wood": k}) for k in range(3)] \
        + [_step(**stone, inventory={"wood": 2, "stone": 5}) for _ in range(2)]  # ends the episode
    died[-1]["terminated"] = True
    write_episodes(tmp_path, [("a", steps, {}), ("b", died, {})])
    every = load_steps([tmp_path], DataConfig())
    kept = load_steps([tmp_path], DataConfig(success_only=True))
    texts = lambda t, e: [t.subgoal_text(i) for i in np.flatnonzero(t.episode == e)]
    assert texts(kept, 0) == ["collect wood"] * 3 + ["place table"] * 2 + ["sleep"] * 2 + ["drink water"] * 2
    assert texts(kept, 1) == ["collect wood"] * 3  # the last segment of a death is a failure
    assert kept.pos[kept.episode == 0].tolist() == [0, 1, 2, 5, 6, 7, 8, 9, 10]
    assert len(every) == 16 and describe(kept)["dropped"]["steps_subgoal_not_reached"] == 4


def test_parse_check():
    plan = "1. [x] collect wood (until inventory wood >= 1, 100 steps)\n" \
           "2. [ ] collect stone (until inventory stone >= 2, 250 steps)\n" \
           "3. [ ] place stone (until achievement place_stone, 200 steps)"
    assert parse_check(plan) == ("inventory", "stone", 2.0)
    assert parse_check(plan, "place stone") == ("achievement", "place_stone", 1.0)
    assert parse_check("1. [ ] rest (until energy >= 6, 90 steps)") is None
    assert parse_check("") is None


def test_missing_or_empty_run_is_a_value_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=str(missing)):
        load_steps([missing], DataConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_steps([tmp_path / "empty"], DataConfig())


def test_truncated_part_raises_corrupt_episode_error(recorded_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(recorded_run.run_dir, run)
    victim = part_files(run)[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptEpisodeError, match=victim.name):
        load_steps([run], ALL)
    victim.unlink()  # a part gone: fewer steps than the index row says
    with pytest.raises(CorruptEpisodeError, match=victim.parent.name):
        load_steps([run], ALL)


def test_bad_status_and_missing_files_raise(tmp_path):
    metas = write_episodes(tmp_path, [("a", [_step()] * 3, {})])
    metas[0].status = "open"
    write_index(tmp_path, metas)
    with pytest.raises(CorruptEpisodeError, match="status 'open'"):
        load_steps([tmp_path], DataConfig())
    metas[0].status = "complete"
    write_index(tmp_path, metas)
    shutil.rmtree(episode_dir(tmp_path, "a"))
    with pytest.raises(CorruptEpisodeError, match="episodes/a"):
        load_steps([tmp_path], DataConfig())


# -- split, tokenizer, summary -----------------------------------------------------------

@pytest.fixture(scope="module")
def many(tmp_path_factory):
    run = tmp_path_factory.mktemp("many")
    write_episodes(run, [(f"ep{k:02d}", [_step(subgoal="collect wood")] * 3, {}) for k in range(30)])
    return load_steps([run], DataConfig())


def _val_episodes(table, val):
    return {table.episodes[e].episode_id for e in set(table.episode[val].tolist())}


def test_split_is_deterministic_disjoint_and_by_episode(many):
    train, val = split(many, 0.2, seed=0)
    again = split(many, 0.2, seed=0)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(len(many)))
    assert not set(many.episode[train].tolist()) & set(many.episode[val].tolist())
    assert 1 <= len(_val_episodes(many, val)) <= 15
    others = [_val_episodes(many, split(many, 0.2, seed=s)[1]) for s in range(1, 6)]
    assert any(o != _val_episodes(many, val) for o in others)


def test_split_keeps_both_sides_non_empty(table, many):
    for seed in range(20):
        train, val = split(table, 0.001, seed)
        assert len(val) and len(train)
        train, val = split(table, 0.999, seed)
        assert len(val) and len(train)
    train, val = split(many, 0.0, 0)
    assert len(val) == 0 and len(train) == len(many)
    with pytest.raises(ValueError):
        split(many, 1.0, 0)


def test_tokenizer_and_describe(recorded_run, table):
    tok = build_tokenizer(table, min_count=1)
    for word in ("collect", "wood", "make", "wood_pickaxe", "eat", "cow", "open", "diamond"):
        assert word in tok.ids
    assert "diamond" not in build_tokenizer(table, min_count=61).ids  # its task: 60 steps
    info = describe(table)
    actors = [a for rec in recorded_run.episodes for a in rec.actors]
    assert info["episodes"] == 3 and info["steps"] == len(actors) == len(table)
    assert info["actors"] == {a: actors.count(a) for a in ACTORS}
    assert info["with_probs"] == pytest.approx(table.has_probs.mean())
    assert 0.6 < info["with_probs"] < 0.7


# -- samples -----------------------------------------------------------------------------

def test_sample_shapes_and_values(recorded_run, table):
    cfg = ModelConfig(history=8, max_task_len=4, max_subgoal_len=6)
    tok = build_tokenizer(table)
    ds = DistillDataset(table, np.arange(len(table)), tok, cfg)
    rec = recorded_run.episodes[1]
    i = int(_rows(table, rec.episode_id)[7])
    s = ds[i]
    assert s["frame"].dtype == torch.uint8 and s["frame"].shape == (3, 64, 64)
    assert torch.equal(s["frame"], torch.from_numpy(rec.frames[7]).permute(2, 0, 1))
    assert s["task"].shape == (4,) and tok.decode(s["task"]) == "open" and s["task"][1:].eq(PAD).all()
    assert s["action"].dtype == torch.long and s["action"].shape == () and int(s["action"]) == rec.actions[7]
    assert s["has_probs"].dtype == torch.bool and bool(s["has_probs"]) == (rec.probs[7] is not None)
    assert s["teacher_probs"].dtype == torch.float32 and s["teacher_probs"].shape == (17,)
    assert np.allclose(s["teacher_probs"].numpy(), rec.probs[7], atol=1e-3)
    j = int(_rows(table, rec.episode_id)[9])  # 9 % 3 == 0: no teacher distribution
    assert not ds[j]["has_probs"] and ds[j]["teacher_probs"].eq(0).all()
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch["frame"].shape == (5, 3, 64, 64) and batch["history"].shape == (5, 8)
    assert batch["subgoal_out"].shape == (5, 6) and batch["action"].shape == (5,)


def test_a_batch_read_at_once_equals_its_samples_stacked(recorded_run, table):
    # Episode starts (history before the first step), the middle of episodes and steps of
    # every episode, in a shuffled order with a repeat, as the trainer's sampler draws them.
    teacher = load_steps([recorded_run.run_dir], DataConfig(actors=["teacher"]))
    for tab in (table, teacher):
        ds = DistillDataset(tab, np.arange(len(tab))[::-1], build_tokenizer(tab), ModelConfig(history=8))
        ks = np.random.default_rng(0).permutation(len(ds))[:40].tolist() + [0, len(ds) - 1, 0]
        batch = ds[ks]
        for key, column in batch.items():
            single = torch.stack([ds[k][key] for k in ks])
            assert column.dtype == single.dtype and torch.equal(column, single), key


def test_history_starts_each_episode_empty(recorded_run, table):
    ds = DistillDataset(table, np.arange(len(table)), build_tokenizer(table), ModelConfig(history=8))
    none = table.n_actions
    for rec in recorded_run.episodes:
        rows = _rows(table, rec.episode_id)
        assert ds[int(rows[0])]["history"].tolist() == [none] * 8  # nothing from the previous episode
        assert ds[int(rows[3])]["history"].tolist() == [none] * 5 + rec.actions[:3]
        assert ds[int(rows[50])]["history"].tolist() == rec.actions[42:50]
    assert DistillDataset(table, [0], build_tokenizer(table), ModelConfig(history=0))[0]["history"].shape == (0,)


def test_history_includes_filtered_out_steps(recorded_run):
    teacher = load_steps([recorded_run.run_dir], DataConfig(actors=["teacher"]))
    ds = DistillDataset(teacher, np.arange(len(teacher)), build_tokenizer(teacher), ModelConfig(history=8))
    rec = recorded_run.episodes[2]
    row = next(i for i in _rows(teacher, rec.episode_id) if teacher.t[i] == 45)  # after 15 other steps
    assert ds[int(row)]["history"].tolist() == rec.actions[37:45]


def test_subgoal_in_and_out_line_up(table):
    tok = build_tokenizer(table)
    for length in (8, 3, 2):
        ds = DistillDataset(table, np.arange(len(table)), tok, ModelConfig(max_subgoal_len=length))
        for text in ("make wood_pickaxe", "collect wood", ""):
            i = next(k for k in range(len(table)) if table.subgoal_text(k) == text)
            s = ds[i]
            sin, sout = s["subgoal_in"].tolist(), s["subgoal_out"].tolist()
            assert len(sin) == len(sout) == length and sin[0] == BOS
            cut = tok.encode(text, max_len=length - 1)  # words that fit beside BOS or EOS
            assert sin == [BOS, *cut] + [PAD] * (length - 1 - len(cut))
            assert sout == [*cut, EOS] + [-100] * (length - 1 - len(cut))
            for j in range(len(cut)):  # position j predicts the token fed at j + 1
                assert sout[j] == sin[j + 1]
            if length == 8:
                assert tok.decode(sin) == text and tok.decode([x for x in sout if x != -100]) == text


def test_relabelled_steps_under_skipped_subgoals_are_dropped(tmp_path):
    """``relabelled_skip`` drops DAgger's labels under the named subgoals, and only
    theirs: the teacher's own steps under those subgoals stay."""
    relabelled = dict(actor="expert-relabelled", taken=1)
    write_episodes(tmp_path, [("e", [_step(subgoal="build shelter"), _step(subgoal="build shelter", **relabelled),
                                     _step(subgoal="eat cow", **relabelled), _step(subgoal="place plant", **relabelled),
                                     _step(subgoal="build shelter", **relabelled)], {})])
    assert len(load_steps([tmp_path], DataConfig())) == 5
    table = load_steps([tmp_path], DataConfig(relabelled_skip=["build shelter", "place plant", "unheard of"]))
    assert table.pos.tolist() == [0, 2]
    assert [table.subgoal_text(i) for i in range(len(table))] == ["build shelter", "eat cow"]
    assert describe(table)["dropped"]["steps_relabelled_skipped"] == 3

"""The student playing Crafter, the mirror env, teacher-labelled rollouts and DAgger rounds."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import envs
from distill import checkpoint as ck
from distill.agent import StudentAgent
from distill.config import PLAY_TEMPERATURE, DistillConfigError, load
from distill.dagger import run_dagger
from distill.rollouts import InlinePool, LocalPool, MirrorEnv, NoisyEnv, RolloutJob, play, record_teacher, rollout
from distill.trainer import train
from envs.base import Wrapper
from envs.episodes import decode_frames, episode_dir, read_index, read_steps


@pytest.fixture(scope="module")
def student_ckpt(run_dir, tmp_path_factory) -> Path:
    """A tiny student, a few steps trained: it plays (badly) and its choices vary."""
    out = tmp_path_factory.mktemp("student") / "ckpt"
    train(load("tiny", ["train.steps=4"]), [run_dir], out)
    return out


def _episode(run: Path) -> tuple[object, dict[str, list]]:
    """The one episode of a run directory: its index row and its step columns."""
    (meta,) = read_index(run)
    steps = read_steps(episode_dir(run, meta.episode_id))
    cols = steps.select(["action", "action_name", "actor", "subgoal", "t", "taken"]).to_pydict()
    cols["frame"] = decode_frames(steps.column("frame").to_pylist(), meta.frame_shape)
    return meta, cols


def _play_student(agent: StudentAgent, seed: int, max_steps: int = 200) -> list[int]:
    env = envs.make("crafter", max_steps=max_steps)
    agent.env = env
    obs, _ = env.reset(seed)
    agent.reset(obs, seed)
    actions, done = [], False
    while not done:
        a = agent.act(obs)
        actions.append(a)
        obs, _, term, trunc, _ = env.step(a)
        done = term or trunc
    env.close()
    return actions


# -- the student agent --------------------------------------------------------------------

def test_student_plays_crafter_reproducibly(student_ckpt):
    agent = StudentAgent(envs.make("crafter", max_steps=200), student_ckpt, sample=True)
    first = _play_student(agent, seed=3)
    n_actions = len(envs.make("crafter").action_names)
    assert 20 <= len(first) <= 200 and all(0 <= a < n_actions for a in first)
    assert len(set(first)) > 3  # sampled: not one action over and over
    assert agent.passes >= len(first)  # at least one forward pass per decision
    assert list(agent.history) == first[-agent.history.maxlen:]
    again = StudentAgent(None, student_ckpt, sample=True)
    assert _play_student(again, seed=3) == first  # the same seed, the same episode
    assert _play_student(agent, seed=4) != first  # the same agent, reset: another seed
    assert _play_student(agent, seed=3) == first  # and back: reset re-seeds the sampling


def test_the_traced_pass_decides_as_the_plain_one(student_ckpt):
    """The student traces its model's pass at its first decision (Student.trace_for_play)
    and plays by the trace: the same actions and the same numbers, to the bit, as the
    plain pass, a subgoal written word by word from the kept keys and values included;
    inputs of other shapes (two at once) take the plain pass."""
    traced, plain = StudentAgent(None, student_ckpt, sample=True), StudentAgent(None, student_ckpt, trace=False)
    assert _play_student(traced, seed=5) == _play_student(plain, seed=5)
    assert traced.model._traced is not None and plain.model._traced is None
    assert pickle.loads(pickle.dumps(traced.model))._traced is None  # a traced student still pickles
    env = envs.make("crafter", max_steps=50)
    obs, _ = env.reset(5)
    history = torch.tensor([list(traced.history)])
    rewritten = 0
    for a in [0, 1, 2, 3, 4] * 6:
        frame = torch.from_numpy(obs.frame.copy()).permute(2, 0, 1)[None]
        for draft in (None, traced.draft):  # from nothing: a pass per word; a kept subgoal: one
            got = traced.model.decide(frame, traced.task, history, draft)
            want = plain.model.decide(frame, plain.task, history, draft)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]) and got[2] == want[2]
            rewritten += got[2] > 1
        obs, *_ = env.step(a)
    assert rewritten > 0
    two = (torch.cat([frame, frame]), traced.task.expand(2, -1), history.expand(2, -1))
    assert torch.equal(traced.model.decide(*two)[1], plain.model.decide(*two)[1])
    env.close()


def test_greedy_student_picks_the_most_likely_action(student_ckpt):
    agent = StudentAgent(None, student_ckpt, sample=False)
    env = envs.make("crafter", max_steps=60)
    obs, _ = env.reset(0)
    agent.reset(obs, 0)
    assert list(agent.history) == [agent.ckpt.n_actions] * agent.history.maxlen  # "no action yet"
    done, steps = False, 0
    while not done:
        frame = torch.from_numpy(obs.frame.copy()).permute(2, 0, 1)[None]
        history = torch.tensor([list(agent.history)])
        sub, logits, _ = agent.model.decide(frame, agent.task, history, agent.draft)
        action = agent.act(obs)
        assert action == int(logits[0].argmax()), steps
        assert agent.subgoal == agent.ckpt.tokenizer.decode(sub[0].tolist())
        obs, _, term, trunc, _ = env.step(action)
        done, steps = term or trunc, steps + 1
    assert steps == 60


def test_a_student_without_history_never_reads_its_last_actions(student_ckpt):
    """history=False: every decision sees "no action" in the history, so the same frames
    give the same choices whatever came before; a student reading its history differs."""
    blind = StudentAgent(None, student_ckpt, sample=True, history=False)
    actions = _play_student(blind, seed=5, max_steps=80)
    assert list(blind.history) == [blind.ckpt.n_actions] * blind.history.maxlen
    assert len(set(actions)) > 3
    assert _play_student(blind, seed=5, max_steps=80) == actions  # reproducible, as with history
    reading = StudentAgent(None, student_ckpt, sample=True)
    assert _play_student(reading, seed=5, max_steps=80) != actions
    env = envs.make("crafter", max_steps=20)
    obs, _ = env.reset(0)
    blind.reset(obs, 0)
    frame = torch.from_numpy(obs.frame.copy()).permute(2, 0, 1)[None]
    none = torch.full((1, blind.history.maxlen), blind.ckpt.n_actions)
    _, want, _ = blind.model.decide(frame, blind.task, none)
    for a in (1, 2, 5):  # whatever it did before, this frame gets the logits of no history
        blind.observe(a)
        _, got, _ = blind.model.decide(frame, blind.task, torch.tensor([list(blind.history)]))
        torch.testing.assert_close(got, want)


def test_asleep_the_history_holds_sleep_whatever_the_student_chose(student_ckpt):
    """Crafter carries out "sleep" until the player is rested; the history says so, as
    the teacher's episodes do, instead of what the student chose in its sleep."""
    env = envs.make("crafter", max_steps=50)
    names = list(env.action_names)
    left, sleep = names.index("move_left"), names.index("sleep")
    agent = StudentAgent(None, student_ckpt, sample=True)
    obs, _ = env.reset(3)
    agent.reset(obs, 3)
    agent.choose(obs)
    agent.observe(left)  # awake: the choice is what happened
    assert agent.history[-1] == left
    env._env._player.inventory["energy"] = 8
    obs, *_ = env.step(sleep)
    asleep = 0
    while obs.vitals["energy"] < 9:  # ~11 steps asleep to gain the point
        assert obs.extras["sleeping"]
        agent.choose(obs)
        agent.observe(left)
        assert agent.history[-1] == sleep
        before = obs.facing
        obs, *_ = env.step(left)
        assert obs.facing == before  # the game did not carry out the move
        asleep += 1
    assert asleep > 3 and obs.extras["sleeping"]
    agent.choose(obs)  # rested: this step wakes the player and carries out the move
    agent.observe(left)
    assert agent.history[-1] == left
    obs, *_ = env.step(left)
    assert obs.facing == (-1, 0) and not obs.extras["sleeping"]
    env.close()


def test_min_p_sampling_never_draws_the_unlikely_actions(student_ckpt):
    env = envs.make("crafter", max_steps=100)
    obs, _ = env.reset(1)
    agents = {m: StudentAgent(None, student_ckpt, sample=True, temperature=3.0, min_p=m) for m in (0.0, 0.9)}
    drawn: dict[float, set[int]] = {m: set() for m in agents}
    for agent in agents.values():
        agent.reset(obs, 1)
    for step in range(40):
        for m, agent in agents.items():
            frame = torch.from_numpy(obs.frame.copy()).permute(2, 0, 1)[None]
            _, logits, _ = agent.model.decide(frame, agent.task, torch.tensor([list(agent.history)]), agent.draft)
            probs = torch.softmax(logits[0] / 3.0, -1)
            action = agent.choose(obs)
            drawn[m].add(action)
            if m:
                assert probs[action] >= 0.9 * probs.max(), step
        obs, _, term, trunc, _ = env.step(action)
        for agent in agents.values():
            agent.observe(action)
    assert len(drawn[0.0]) > len(drawn[0.9])  # the cut is what narrows the draws
    with pytest.raises(ValueError, match="min_p"):
        StudentAgent(None, student_ckpt, min_p=1.0)


def test_a_subgoal_temperature_applies_under_that_subgoal_alone(student_ckpt, tmp_path):
    from agents.runner import _make_agent
    from steve.config import load as load_run

    env = envs.make("crafter", max_steps=100)
    obs, _ = env.reset(1)
    hot = StudentAgent(None, student_ckpt, sample=True, temperature=5.0)
    hot.reset(obs, 1)
    first = hot.choose(obs)  # decides its subgoal (the draft, kept while the frame is the same)
    said = hot.subgoal
    greedy = int(hot.model.decide(torch.from_numpy(obs.frame.copy()).permute(2, 0, 1)[None], hot.task,
                                  torch.tensor([list(hot.history)]), hot.draft)[1][0].argmax())
    other = next(w for w in hot.ckpt.tokenizer.vocab[4:] if w not in said.split())
    drawn = {}
    for temps in ({}, {other: 0.0}, {said: 0.0}):
        agent = StudentAgent(None, student_ckpt, sample=True, temperature=5.0, subgoal_temperature=temps)
        agent.reset(obs, 1)
        drawn[len(temps) and next(iter(temps))] = [agent.choose(obs) for _ in range(60)]
    assert drawn[0][0] == first and drawn[other] == drawn[0] and len(set(drawn[0])) > 3  # elsewhere: as before
    assert set(drawn[said]) == {greedy}
    for bad, match in (({"fly away": 0.5}, "never saw: fly, away"), ({said: -1.0}, "0 .the most likely")):
        with pytest.raises(ValueError, match=match):
            StudentAgent(None, student_ckpt, subgoal_temperature=bad)
    config = load_run(overrides=["agent.name=student", f"agent.checkpoint={student_ckpt}",
                                 f"agent.subgoal_temperature.{said.upper()}=0.4"])  # read as the student says it
    assert _make_agent(config, env, tmp_path, None).subgoal_temperature == {said: 0.4}
    env.close()


def test_a_student_played_from_the_command_line_samples_at_the_play_temperature(student_ckpt, tmp_path):
    """`steve run --agent student` samples at PLAY_TEMPERATURE (0.8, session 47) unless told
    otherwise; so do the rollouts and the bench, whose defaults name the same constant."""
    from agents.runner import _make_agent
    from steve.config import load as load_run

    env = envs.make("crafter", max_steps=10)
    played = {}
    for sets in ([], ["agent.temperature=1.0"]):
        config = load_run(overrides=["agent.name=student", f"agent.checkpoint={student_ckpt}", *sets])
        played[len(sets)] = _make_agent(config, env, tmp_path, None).temperature
    env.close()
    assert played == {0: PLAY_TEMPERATURE, 1: 1.0} and PLAY_TEMPERATURE < 1.0
    assert RolloutJob(seed=0, out="x", beta=0.5, checkpoint="c").temperature == PLAY_TEMPERATURE


@pytest.fixture(scope="module")
def landmark_ckpt(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landmark_student") / "ckpt"
    train(load("tiny", ["train.steps=4", "model.landmarks=15"]), [run_dir], out)
    return out


@pytest.mark.parametrize("which", ["student_ckpt", "landmark_ckpt"])  # reads the frame / its class map
def test_a_student_that_avoids_lava_never_moves_onto_it(which, request):
    ckpt = request.getfixturevalue(which)
    env = envs.make("crafter", max_steps=100)
    env.reset(1)
    world, (x, y) = env._env._world, env._env._player.pos
    world[(x - 1, y)] = world[(x, y + 1)] = "lava"  # on its left and below it
    names = list(env.action_names)
    obs, *_ = env.step(names.index("noop"))
    assert obs.vitals["health"] > 0
    fatal = {names.index("move_left"), names.index("move_down")}
    drawn = {}
    for avoid in (False, True):
        agent = StudentAgent(None, ckpt, sample=True, temperature=5.0, avoid_lava=avoid)
        agent.reset(obs, 0)
        drawn[avoid] = {agent.choose(obs) for _ in range(300)}
    assert set(agent._into_lava(obs).nonzero().ravel().tolist()) == fatal
    assert fatal <= drawn[False] and not fatal & drawn[True] and len(drawn[True]) > 5
    # greedy, with the lava moves the most likely: the best of the others
    agent.sample, decide = False, agent.model.decide
    order = [*fatal, names.index("move_up")]

    def keen(*args, **kwargs):
        sub, logits, passes = decide(*args, **kwargs)
        logits = logits.clone()
        logits[0, order] = torch.tensor([30.0, 29.0, 28.0])
        return sub, logits, passes

    agent.model.decide = keen
    assert agent.choose(obs) == names.index("move_up")


def test_student_task_is_cut_like_the_training_data(student_ckpt):
    n = ck.read(student_ckpt).config.model.max_task_len
    a = StudentAgent(None, student_ckpt, task=" ".join(["collect"] * n + ["diamond"]))
    b = StudentAgent(None, student_ckpt, task=" ".join(["collect"] * n + ["wood", "now"]))
    assert a.task.shape == (1, n) and torch.equal(a.task, b.task)
    c = StudentAgent(None, student_ckpt, task="collect diamond")
    assert c.task[0, 2:].eq(0).all() and not torch.equal(a.task, c.task)  # short: PAD-filled


class _Renamed(Wrapper):
    @property
    def action_names(self):
        return tuple(reversed(self.env.action_names))


def test_student_refuses_other_actions(student_ckpt):
    with pytest.raises(ValueError, match="actions"):
        StudentAgent(_Renamed(envs.make("crafter")), student_ckpt)
    with pytest.raises(ValueError, match="checkpoint"):
        StudentAgent(envs.make("crafter"), None)
    with pytest.raises(ck.CheckpointError):
        StudentAgent(None, student_ckpt.parent / "nothing-here")


# -- the mirror env -----------------------------------------------------------------------

class _Log(Wrapper):
    """Remembers the actions that reach the env."""

    def __init__(self, env):
        super().__init__(env)
        self.actions: list[int] = []

    def step(self, action):
        self.actions.append(int(action))
        return self.env.step(action)


class _Scripted:
    """A stand-in student that always wants ``action`` and logs what it is told."""

    def __init__(self, action: int):
        self.action, self.observed, self.resets = action, [], []

    def reset(self, obs, seed):
        self.resets.append(seed)

    def choose(self, obs):
        return self.action

    def observe(self, action):
        self.observed.append(int(action))


def _drive(beta: float, student, steps: int = 60, seed: int = 2, **window):
    log = _Log(envs.make("crafter", max_steps=1000))
    mirror = MirrorEnv(log, student, beta, seed, **window)
    mirror.reset(seed)
    rng = np.random.default_rng(0)
    teacher = [int(a) for a in rng.integers(1, 5, size=steps)]  # moves: never the student's noop
    for a in teacher:
        mirror.step(a)
    return mirror, log.actions, teacher


@pytest.mark.parametrize("beta", [1.0, 0.0, 0.5])
def test_mirror_env_executes_by_beta(beta):
    student = _Scripted(0)
    mirror, executed, teacher = _drive(beta, student)
    assert student.resets == [2]
    assert student.observed == executed  # the student's history holds what was done
    assert mirror.steps == len(teacher) and mirror.agreed == 0
    from_student = [e == 0 for e in executed]
    assert mirror.student_steps == sum(from_student)
    assert all(e == t for e, t, s in zip(executed, teacher, from_student) if not s)
    if beta == 1.0:
        assert executed == teacher
    elif beta == 0.0:
        assert executed == [0] * len(teacher)
    else:
        assert 0.3 < mirror.student_steps / mirror.steps < 0.7
        assert _drive(beta, _Scripted(0))[1] == executed  # the coin is seeded


def test_mirror_env_hands_the_student_only_the_steps_of_its_window():
    student = _Scripted(0)
    mirror, executed, teacher = _drive(0.0, student, steps=90, window=(20, 50))
    assert [i for i, e in enumerate(executed) if e == 0] == list(range(20, 50))
    assert executed[:20] == teacher[:20] and executed[50:] == teacher[50:]
    assert mirror.student_steps == 30 and student.observed == executed


def test_student_window_must_lie_inside_a_day():
    for bad in ("[50,20]", "[0,301]", "[-1,10]"):
        with pytest.raises(DistillConfigError, match="dagger.student_window"):
            load("tiny", [f"dagger.student_window={bad}"])
    assert load("tiny", ["dagger.student_window=[120,300]"]).dagger.student_window == (120, 300)


def test_dagger_needs_a_round():
    """--rounds 0 once wrote a dagger.json and printed an empty table: a typo, refused."""
    with pytest.raises(DistillConfigError, match="dagger.rounds"):
        load("tiny", ["dagger.rounds=0"])
    assert load("tiny", ["dagger.rounds=1"]).dagger.rounds == 1


def test_mirror_env_without_student_is_the_teacher():
    mirror, executed, teacher = _drive(0.0, None)
    assert executed == teacher and mirror.student_steps == 0


def test_mirror_env_feeds_the_real_student_its_history(student_ckpt):
    student = StudentAgent(None, student_ckpt, sample=True)
    mirror, executed, _ = _drive(0.5, student, steps=40)
    assert list(student.history) == executed[-student.history.maxlen:]
    assert 0 < mirror.student_steps < 40


def test_mirror_env_counts_the_steps_the_student_writes_the_teacher_s_subgoal(student_ckpt):
    """Here "the teacher" says at each step the student's previous subgoal: the count is of
    the awake steps whose subgoal is the one before, read as the student reads text."""
    student = StudentAgent(None, student_ckpt, sample=True)
    mirror = MirrorEnv(envs.make("crafter", max_steps=60), student, 0.0, 0,
                       subgoals=lambda: f"  {student.subgoal.upper()} ")
    mirror.reset(0)
    written, awake, done = [], [], False
    while not done:
        awake.append(not mirror.obs.asleep)
        *_, term, trunc, _ = mirror.step(0)
        written.append(student.subgoal)
        done = term or trunc
    said = sum(a == b and w for a, b, w in zip(["", *written], written, awake))
    assert mirror.said == said and said >= 30 and mirror.awake == sum(awake)
    assert student.wrote(written[-1]) and not student.wrote("fly " + written[-1])
    mirror.follow = True
    mirror.step(0)
    assert student.subgoal == written[-1] and mirror.said == said


class _Sleeper(_Scripted):
    """A stand-in student that wants ``sleep`` at its first choice, then ``action``."""

    def __init__(self, action: int, sleep: int):
        super().__init__(action)
        self.sleep = sleep

    def choose(self, obs):
        return self.action if self.observed else self.sleep


def test_mirror_env_records_sleep_while_the_player_sleeps_and_counts_agreement_awake():
    """Asleep, the game carries out ``sleep`` whatever was chosen: so the step is recorded
    (what the replay, the history and the training data read), and the student's choice
    there counts neither for nor against its agreement with the teacher."""
    env = envs.make("crafter", max_steps=100)
    names = list(env.action_names)
    left, sleep = names.index("move_left"), names.index("sleep")
    student = _Sleeper(left, sleep)
    mirror = MirrorEnv(env, student, 0.0, 0)
    mirror.reset(0)
    env._env._player.inventory["energy"] = 8  # tired enough to fall asleep
    asleep, taken = [], []
    for _ in range(30):  # the teacher asks for move_left throughout
        asleep.append(mirror.obs.asleep)
        taken.append(mirror.step(left)[-1]["taken"])
    assert asleep[0] is False and 3 < sum(asleep) < 29 and not asleep[-1]  # slept, then woke
    assert taken == [sleep] + [sleep if a else left for a in asleep[1:]]
    assert student.observed == taken
    assert mirror.steps == 30 and mirror.awake == 30 - sum(asleep)
    assert mirror.agreed == mirror.awake - 1  # awake, only the first choice (sleep) was not the teacher's
    env.close()


class _Painted(Wrapper):
    """Crafter with lava painted left of, right of and above the player in every view it
    reports, and the player reported asleep on steps 50-59."""

    def reset(self, seed=None):
        obs, info = self.env.reset(seed)
        return self._paint(obs), info

    def step(self, action):
        obs, *rest = self.env.step(action)
        return (self._paint(obs), *rest)

    @staticmethod
    def _paint(obs):
        view = obs.local_view.copy()
        r, c = obs.player_cell
        view[r, c - 1] = view[r, c + 1] = view[r - 1, c] = "lava"
        return dataclasses.replace(obs, local_view=view, extras={"sleeping": 50 <= obs.step < 60})


def _push(noise: float, steps: int = 200, seed: int = 3):
    log = _Log(_Painted(envs.make("crafter", max_steps=1000)))
    noisy = NoisyEnv(log, noise, seed)
    noisy.reset(seed)
    infos = [noisy.step(0)[-1] for _ in range(steps)]  # the teacher asks for noop throughout
    return noisy, log.actions, infos


def test_noisy_env_pushes_a_random_move_never_onto_lava_nor_asleep():
    noisy, executed, infos = _push(0.5)
    down = envs.make("crafter").action_names.index("move_down")
    assert set(executed) == {0, down}  # the only move whose cell is not lava
    pushed = [i for i, a in enumerate(executed) if a == down]
    assert noisy.pushes == len(pushed) and 0.35 < len(pushed) / 190 < 0.65
    assert not set(pushed) & set(range(50, 60))  # the game sleeps whatever it is given
    assert [i for i, info in enumerate(infos) if "taken" in info] == pushed
    assert all(infos[i]["taken"] == down for i in pushed)
    assert _push(0.5)[1] == executed  # the coin and the move are seeded
    assert _push(0.1)[0].pushes < noisy.pushes
    with pytest.raises(ValueError, match="noise"):
        NoisyEnv(envs.make("crafter"), 1.0, 0)


# -- rollouts -----------------------------------------------------------------------------

def test_rollout_records_the_teacher_labels_of_the_student_states(student_ckpt, tmp_path):
    """beta 0: the student acts at every step, the recorded action is the teacher's.
    Replaying the student (same seed, same sampling) from scratch reproduces every
    recorded frame, so the frames are the student's states; the labels differ from
    what the student did."""
    out = tmp_path / "roll"
    result = rollout(RolloutJob(seed=1, out=str(out), beta=0.0, checkpoint=str(student_ckpt), max_steps=150))
    meta, cols = _episode(out)
    n = meta.length
    assert result["length"] == n > 10 and result["student_steps"] == n
    assert set(cols["actor"]) == {"expert-relabelled"}
    assert meta.seed == 1 and meta.agent == "dagger"

    env = envs.make("crafter", max_steps=150)
    student = StudentAgent(None, student_ckpt, sample=True)
    obs, _ = env.reset(1)
    student.reset(obs, 1)
    done_by_student, awake = [], []
    sleep = list(env.action_names).index("sleep")
    for t in range(n):
        assert np.array_equal(obs.frame, cols["frame"][t]), t
        a = student.act(obs)
        awake.append(not obs.asleep)
        done_by_student.append(a if awake[-1] else sleep)  # asleep, the game sleeps on
        obs, *_ = env.step(a)
    labels = cols["action"]
    agree = np.mean([a == b for a, b, w in zip(labels, done_by_student, awake) if w])
    assert agree < 0.9  # labels are not the executed actions
    assert result["agreement"] == pytest.approx(agree)  # of the steps awake
    assert cols["taken"] == done_by_student  # which are kept beside them

    # Training reads the labels as targets and what was done as the history, and the
    # nights replay what was done (the labels would walk another path).
    from distill.config import DataConfig
    from distill.nights import night_report
    from distill.steps import load_steps

    from distill.steps import _crafter_actions
    from distill.visual_memory import episode_memories, move_vectors

    table = load_steps([out], DataConfig(skip_asleep=False), memory=11)
    assert table.action.tolist() == labels
    assert table.histories(np.arange(n), 1)[1:, 0].tolist() == done_by_student[:-1]
    moves = move_vectors(_crafter_actions(), 17)
    walked = episode_memories(cols["frame"], np.array(done_by_student), moves, 11)
    assert np.array_equal(table.memory, walked)  # the map follows the student's own walk
    assert not np.array_equal(walked, episode_memories(cols["frame"], np.array(labels), moves, 11))
    assert night_report([out])["episodes"] == 1


def test_record_teacher_plays_and_annotates(tmp_path):
    played = record_teacher(tmp_path, [0], max_steps=80, prior="full", pool=InlinePool())
    assert len(played["episodes"]) == 1 and played["agreement"] is None
    assert 0.0 <= played["crafter_score"] <= 100.0 and played["mean_length"] == 80
    meta, cols = _episode(tmp_path / "seed-0")
    assert meta.agent == "teacher" and meta.length == 80
    assert set(cols["actor"]) == {"teacher"}
    assert sum(bool(s) for s in cols["subgoal"]) > 40  # the plain loop annotates subgoals
    # beta 1: the recorded actions are the executed ones: replaying them gives the frames
    env = envs.make("crafter", max_steps=80)
    obs, _ = env.reset(0)
    for t, a in enumerate(cols["action"]):
        assert np.array_equal(obs.frame, cols["frame"][t]), t
        obs, *_ = env.step(a)


def test_a_noisy_teacher_labels_the_way_back(tmp_path):
    """``noise``: some steps carry out a random move, kept as ``taken`` beside the teacher's
    label; what was done replays the episode and is the history training reads, and the
    episodes say so in their config hash."""
    record_teacher(tmp_path, [0], max_steps=200, prior="full", pool=InlinePool(), noise=0.2)
    meta, cols = _episode(tmp_path / "seed-0")
    assert meta.config_hash == "b1-e0.2" and set(cols["actor"]) == {"teacher"}
    done = [a if t is None else t for a, t in zip(cols["action"], cols["taken"])]
    pushed = [i for i, t in enumerate(cols["taken"]) if t is not None]
    names = envs.make("crafter").action_names
    assert 20 < len(pushed) < 60 and all(names[done[i]].startswith("move_") for i in pushed)
    assert all(done[i] != cols["action"][i] for i in pushed)
    env = envs.make("crafter", max_steps=200)
    obs, _ = env.reset(0)
    for t, a in enumerate(done):
        assert np.array_equal(obs.frame, cols["frame"][t]), t
        obs, *_ = env.step(a)
    from distill.config import DataConfig
    from distill.steps import load_steps

    table = load_steps([tmp_path / "seed-0"], DataConfig(skip_asleep=False))
    assert table.action.tolist() == cols["action"]
    assert table.histories(np.arange(meta.length), 1)[1:, 0].tolist() == done[:-1]
    with pytest.raises(ValueError, match="noise"):
        rollout(RolloutJob(seed=0, out=str(tmp_path / "x"), beta=0.5, checkpoint="ckpt", noise=0.1, max_steps=10))


def test_a_teacher_without_dusk_farming_shelters_without_planting(student_ckpt, tmp_path):
    """Seed 0's teacher plants a sapling at dusk (step 127) before it walls itself in;
    with ``farm_at_dusk=False`` it plays the same day and then goes straight to shelter.
    Its episodes say so, and DAgger refuses to label them with the other teacher."""
    steps, metas = {}, {}
    for farm in (True, False):
        record_teacher(tmp_path / str(farm), [0], max_steps=160, prior="full", pool=InlinePool(), farm_at_dusk=farm)
        metas[farm], steps[farm] = _episode(tmp_path / str(farm) / "seed-0")
    night = {farm: [(a, s) for a, s, t in zip(c["action_name"], c["subgoal"], c["t"]) if t >= 120]
             for farm, c in steps.items()}
    assert ("place_plant", "place plant") in night[True] and "place_plant" not in {a for a, _ in night[False]}
    assert {s for _, s in night[False]} >= {"build shelter", "sleep"}  # its evening, part by part
    assert steps[True]["action"][:120] == steps[False]["action"][:120]  # the same day until dusk
    assert (metas[True].config_hash, metas[False].config_hash) == ("b1", "b1-plain")
    cfg = load("tiny", ["dagger.rounds=1", "dagger.episodes=1", "dagger.max_steps=20"])
    with pytest.raises(ValueError, match="dagger.teacher_farm_at_dusk=false"):
        run_dagger(cfg, [tmp_path / "False" / "seed-0"], student_ckpt, tmp_path / "dg", pool=InlinePool())
    with pytest.raises(ValueError, match="with and without"):
        run_dagger(cfg, [tmp_path / str(farm) / "seed-0" for farm in (False, True)], student_ckpt, tmp_path / "dg",
                   pool=InlinePool())
    # unless told to label with another teacher: the farming one labels the plain episodes
    other = load("tiny", ["dagger.rounds=1", "dagger.episodes=1", "dagger.max_steps=20", "dagger.teacher_check=false"])
    assert len(run_dagger(other, [tmp_path / "False" / "seed-0"], student_ckpt, tmp_path / "other",
                          pool=InlinePool())) == 1
    (labelled,) = read_index(tmp_path / "other" / "round-0" / "rollouts" / "seed-0")
    assert labelled.config_hash == "b0.5"  # no -plain: the teacher that labelled farms at dusk
    # today's teacher labels: accepted, also with the "rest in shelter" its planner plans
    # when health runs low (session 28: that word alone had DAgger refuse every teacher run)
    (part,) = episode_dir(tmp_path / "True" / "seed-0", metas[True].episode_id).glob("part-*.parquet")

    def relabel(change) -> None:
        table = pq.read_table(part)
        labels = [change(t, s) for t, s in enumerate(table.column("subgoal").to_pylist())]
        table = table.set_column(table.schema.get_field_index("subgoal"), "subgoal", pa.array(labels, pa.string()))
        pq.write_table(table, part, write_page_checksum=True)

    relabel(lambda t, s: "rest in shelter" if t == 5 else s)
    history = run_dagger(cfg, [tmp_path / "True" / "seed-0"], student_ckpt, tmp_path / "ok", pool=InlinePool())
    assert len(history) == 1
    # the same episode as an older teacher labelled it (the whole evening "sleep"): refused,
    # so that DAgger's labels do not give "sleep" two meanings
    relabel(lambda t, s: "sleep" if s in ("build shelter", "place plant") else s)
    with pytest.raises(ValueError, match="record them again with steve distill teacher"):
        run_dagger(cfg, [tmp_path / "True" / "seed-0"], student_ckpt, tmp_path / "dg", pool=InlinePool())


@pytest.mark.parametrize("option, value, mark, key", [("memory", 0, "-m0", "memory"),
                                                     ("near_pocket", 4, "-n4", "near_pocket")])
def test_a_teacher_option_plays_otherwise_and_says_so(student_ckpt, tmp_path, option, value, mark, key):
    """``memory=0``: the teacher's map holds only the view; ``near_pocket=4``: it shelters
    within 4 cells first. Its episodes are marked, and DAgger labels them only with the
    same teacher."""
    steps, metas = {}, {}
    for v in (None, value):
        record_teacher(tmp_path / str(v), [0], max_steps=200, prior="full", pool=InlinePool(), **{option: v})
        metas[v], steps[v] = _episode(tmp_path / str(v) / "seed-0")
    assert (metas[None].config_hash, metas[value].config_hash) == ("b1", "b1" + mark)
    assert steps[None]["action"] != steps[value]["action"]
    cfg = load("tiny", ["dagger.rounds=1", "dagger.episodes=1", "dagger.max_steps=20"])
    with pytest.raises(ValueError, match=f"dagger.teacher_{key}={value}"):
        run_dagger(cfg, [tmp_path / str(value) / "seed-0"], student_ckpt, tmp_path / "dg", pool=InlinePool())
    with pytest.raises(ValueError, match=f"dagger.teacher_{key}=null"):
        run_dagger(cfg.model_copy(update={"dagger": cfg.dagger.model_copy(update={f"teacher_{key}": value})}),
                   [tmp_path / "None" / "seed-0"], student_ckpt, tmp_path / "dg", pool=InlinePool())
    with pytest.raises(ValueError, match=f"different --{option.replace('_', '-')}"):
        run_dagger(cfg, [tmp_path / str(v) / "seed-0" for v in (None, value)], student_ckpt, tmp_path / "dg",
                   pool=InlinePool())


def test_a_student_given_a_subgoal_acts_on_it(student_ckpt):
    """``choose(obs, subgoal)``: the action head's pass on that subgoal (the student's own
    plan level unused), the same logits as the plain pass on it, and other logits under
    another subgoal."""
    from distill.tokenizer import PAD

    agent = StudentAgent(None, student_ckpt, sample=False)
    n = agent.ckpt.config.model.max_subgoal_len
    env = envs.make("crafter", max_steps=40)
    obs, _ = env.reset(2)
    agent.reset(obs, 2)
    done, steps = False, 0
    while not done:
        given = ("collect wood", "eat cow")[steps // 10 % 2]
        frame = torch.from_numpy(obs.frame.copy()).permute(2, 0, 1)[None]
        history = torch.tensor([list(agent.history)])
        logits = {}
        for text in ("collect wood", "eat cow"):
            ids = agent.ckpt.tokenizer.encode(text, max_len=n, bos=True)
            sub = torch.tensor([ids + [PAD] * (n - len(ids))])
            with torch.inference_mode():
                logits[text] = agent.model(frame, agent.task, history, sub).action_logits[0]
        action = agent.choose(obs, given)  # the first call traces the pass
        assert action == int(logits[given].argmax()) and agent.subgoal == given
        assert torch.equal(agent.model.act_on(frame, agent.task, history, agent._given(given))[0], logits[given])
        assert not torch.equal(logits["collect wood"], logits["eat cow"])
        agent.observe(action)
        obs, _, term, trunc, _ = env.step(action)
        done, steps = term or trunc, steps + 1
    assert agent.passes == steps  # one pass a decision, none to write a subgoal
    env.close()


def test_a_student_on_the_teacher_plans_is_given_each_step_s_label(student_ckpt, tmp_path, monkeypatch):
    """``teacher_plans``: at every step the student is handed the subgoal the teacher's step
    is recorded under, and what it chose is what was done; own plans are given nothing."""
    given, chosen = [], []
    plain = StudentAgent.choose

    def spy(self, obs, subgoal=None):
        given.append(subgoal)
        chosen.append(plain(self, obs, subgoal))
        return chosen[-1]

    monkeypatch.setattr(StudentAgent, "choose", spy)
    result = rollout(RolloutJob(seed=3, out=str(tmp_path / "tp"), beta=0.0, checkpoint=str(student_ckpt),
                                max_steps=120, teacher_plans=True, label="student-teacher-plans"))
    meta, cols = _episode(tmp_path / "tp")
    assert given == cols["subgoal"] and len(set(given)) > 1 and all(given)
    assert cols["taken"] == chosen and result["student_steps"] == meta.length == len(given)
    assert meta.config_hash == "b0-tplans" and meta.agent == "student-teacher-plans"
    given.clear()
    rollout(RolloutJob(seed=3, out=str(tmp_path / "own"), beta=0.0, checkpoint=str(student_ckpt), max_steps=30))
    assert given and set(given) == {None}
    with pytest.raises(ValueError, match="beta < 1"):
        rollout(RolloutJob(seed=3, out=str(tmp_path / "t"), teacher_plans=True, max_steps=10))


def test_rollout_needs_a_checkpoint_below_beta_one(tmp_path):
    with pytest.raises(ValueError, match="checkpoint"):
        rollout(RolloutJob(seed=0, out=str(tmp_path / "x"), beta=0.5, checkpoint=None, max_steps=10))


def test_run_dagger_one_round(run_dir, student_ckpt, tmp_path):
    cfg = load("tiny", ["dagger.rounds=1", "dagger.episodes=2", "dagger.max_steps=120", "dagger.beta=[0.0]",
                        "dagger.steps_per_round=3", "dagger.seed=5", "dagger.student_window=[60,300]",
                        "dagger.teacher_stop_when_sealed=true", "dagger.teacher_replan=true"])
    seen = []
    rounds = run_dagger(cfg, [run_dir], student_ckpt, tmp_path / "dg", pool=InlinePool(), on_round=seen.append)
    assert len(rounds) == 1 and seen == rounds
    r = rounds[0]
    assert r["round"] == 0 and r["beta"] == 0.0 and r["runs"] == 3
    assert 0.0 <= r["rollout_agreement"] <= 1.0 and 0.0 <= r["action_agreement"] <= r["action_agreement_any"] <= 1.0
    for seed in (5, 6):
        meta, cols = _episode(tmp_path / "dg" / "round-0" / "rollouts" / f"seed-{seed}")
        assert meta.seed == seed and meta.agent == "dagger-0" and set(cols["actor"]) == {"expert-relabelled"}
        # the teacher played the first 60 steps; sealed, it sleeps; overruled, it starts its night over
        assert meta.config_hash == "b0w60-300-sealed-replan"
    new = ck.read(tmp_path / "dg" / "round-0" / "student")
    assert new.step == 3 and Path(r["checkpoint"]) == tmp_path / "dg" / "round-0" / "student"
    assert new.tokenizer.vocab == ck.read(student_ckpt).tokenizer.vocab  # fine-tuned from the student
    assert new.extra["runs"][-2:] == [str(tmp_path / "dg" / "round-0" / "rollouts" / f"seed-{s}") for s in (5, 6)]
    lines = (tmp_path / "dg" / "dagger.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(json.dumps(r))]


@pytest.mark.slow
def test_local_pool_matches_inline(student_ckpt, tmp_path):
    def jobs(where):
        return [RolloutJob(seed=s, out=str(tmp_path / where / f"seed-{s}"), beta=0.5, checkpoint=str(student_ckpt),
                           max_steps=100) for s in (0, 1)]

    inline = play(jobs("inline"), InlinePool())
    pooled = play(jobs("pool"), LocalPool(2))
    for a, b in zip(inline["episodes"], pooled["episodes"]):
        assert {k: v for k, v in a.items() if k != "run"} == {k: v for k, v in b.items() if k != "run"}
    assert inline["crafter_score"] == pooled["crafter_score"]
    for s in (0, 1):
        (_, x), (_, y) = _episode(tmp_path / "inline" / f"seed-{s}"), _episode(tmp_path / "pool" / f"seed-{s}")
        assert x["action"] == y["action"] and np.array_equal(x["frame"], y["frame"])
    assert inline["episodes"][0]["student_steps"] > 0


def test_student_refuses_frames_of_another_size(student_ckpt):
    env = envs.make("crafter", size=96, max_steps=10)
    obs, _ = env.reset(0)
    with pytest.raises(ValueError, match="64x64"):
        StudentAgent(env, student_ckpt).reset(obs, 0)

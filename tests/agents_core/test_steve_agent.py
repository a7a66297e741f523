"""The self-evolving agent end to end: tiny real runs through the graph."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

import envs
from agents.evolving.agent import SteveAgent
from envs.episodes import verify_run
from envs.recorder import EpisodeRecorder
from memory import ExperienceStore
from memory.config import MemoryConfig
from tests.conftest import ROOT, run_cli

HASHING = "memory.embedder=hashing"


def test_run_writes_summary_plots_memory_and_annotated_steps(tmp_path):
    out = tmp_path / "run"
    run_cli("run", "--agent", "steve", "--episodes", "2", "--seed", "1", "--max-steps", "300",
            "--out", str(out), "--set", HASHING)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agent"] == "steve" and summary["episodes"] == 2
    for ep in summary["per_episode"]:
        assert ep["subgoals"] > 3 and 0 < ep["subgoal_success_rate"] <= 1 and ep["replans"] >= 0
    assert summary["crafter_score"] > 5  # the random agent scores ~1.6
    assert {p.name for p in (out / "plots").iterdir()} == {"learning_curve.png", "success_rates.png"}
    steps = pd.read_parquet(out / "episodes")
    assert (steps.subgoal != "").mean() > 0.9 and steps.plan.str.contains(r"1\. \[").any()
    assert steps.teacher_probs.notna().any()
    probs = steps.teacher_probs.dropna().iloc[0]
    assert abs(sum(probs) - 1) < 1e-5
    store = ExperienceStore.open(MemoryConfig(path=str(out / "memory"), embedder="hashing"), create=False)
    try:
        stats = store.stats()
        assert stats.experiences == sum(e["subgoals"] for e in summary["per_episode"])
        assert stats.skills > 0
    finally:
        store.close()


def _agent(tmp_path, store, learn=True, name="run"):
    env = EpisodeRecorder(envs.make("crafter", max_steps=250), tmp_path / name, agent="steve",
                          config_hash="0" * 16)
    return env, SteveAgent(env, store=store, learn=learn)


def test_a_skill_learned_in_one_episode_is_retrieved_in_the_next(tmp_path):
    store = ExperienceStore.open(MemoryConfig(path=str(tmp_path / "mem"), embedder="hashing"))
    env, agent = _agent(tmp_path, store)
    first = agent.play(env, seed=1)
    first_experiences = {r.id for r in store.list_experiences(limit=10_000)}
    assert first["learned"].get("skills_added", 0) > 0
    seen: list = []
    original = store.retrieve

    def spy(ctx):
        got = original(ctx)
        seen.extend(s.record for s in got.skills)
        return got

    store.retrieve = spy
    agent.play(env, seed=2)
    env.close()
    reused = [s for s in seen if set(s.source_experiences) & first_experiences]
    assert reused, "no skill distilled in episode 1 was retrieved in episode 2"
    store.close()


def test_no_learn_reads_but_writes_nothing(tmp_path):
    store = ExperienceStore.open(MemoryConfig(path=str(tmp_path / "mem"), embedder="hashing"))
    env, agent = _agent(tmp_path, store, learn=False)
    state = agent.play(env, seed=1)
    env.close()
    assert len(state["history"]) > 3 and not state["learned"]
    assert store.stats().experiences == 0 and store.stats().skills == 0
    store.close()


def _checkpoints(path) -> int:
    try:
        with sqlite3.connect(path) as conn:
            return conn.execute("select count(*) from checkpoints").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_resume_after_sigkill_continues_and_loses_no_step(tmp_path):
    args = ["--agent", "steve", "--episodes", "1", "--seed", "3", "--max-steps", "4000",
            "--set", HASHING, "--set", "run.flush_every=50"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "steve.cli", "run", *args, "--out", str(killed)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, COLUMNS="200"))
    deadline = time.time() + 120
    while time.time() < deadline and _checkpoints(killed / "checkpoints.sqlite") < 60:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert verify_run(killed)["incomplete"], "the episode ended before it could be killed"
    on_disk = len(pd.read_parquet(killed / "episodes"))
    assert on_disk > 0

    resumed = run_cli("-v", "run", "--resume", str(killed))
    match = re.search(r"resuming \S+ at step (\d+)", resumed.stderr)
    assert match, "did not resume from a checkpoint"
    at = int(match.group(1))
    assert 0 < at <= on_disk
    whole = tmp_path / "whole"
    run_cli("run", *args, "--out", str(whole))
    a = pd.read_parquet(killed / "episodes").sort_values("t")
    b = pd.read_parquet(whole / "episodes").sort_values("t")
    assert list(a.t) == list(range(len(a)))  # no step lost or doubled
    # Up to the checkpoint, the very steps an uninterrupted run takes. (After it the runs
    # may part: memory writes still pending at the kill are lost, and memory steers.)
    assert list(a.action[:at]) == list(b.action[:at])
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["episodes"] == 1 and summary["per_episode"][0]["length"] == len(a)


def test_a_store_held_by_another_process_is_a_one_line_error(tmp_path):
    store = ExperienceStore.open(MemoryConfig(path=str(tmp_path / "mem"), embedder="hashing"))
    try:
        proc = run_cli("run", "--agent", "steve", "--episodes", "1", "--max-steps", "50", "--out",
                       str(tmp_path / "run"), "--memory", str(tmp_path / "mem"), "--set", HASHING, check=False)
    finally:
        store.close()
    assert proc.returncode == 2 and "another process" in proc.stderr and "Traceback" not in proc.stderr


def test_the_none_prior_learns_the_first_recipes_from_its_own_failures(tmp_path):
    """Nothing known but names: a few short episodes of failing, guessing and succeeding
    leave in memory what a table, a wood pickaxe and stone need (the mechanism behind
    the self-evolution bench). A fresh tree taught from the store alone checks it."""
    from agents.planners import experience
    from agents.techtree import TechTree

    store = ExperienceStore.open(MemoryConfig(path=str(tmp_path / "mem"), embedder="hashing"))
    env = EpisodeRecorder(envs.make("crafter", max_steps=300), tmp_path / "run", agent="steve",
                          config_hash="0" * 16)
    agent = SteveAgent(env, prior="none", store=store)
    for seed in range(8):  # 5 are enough now; some slack for changes that alter trajectories
        agent.play(env, seed=seed)
    env.close()
    fresh = TechTree.load("none")
    assert fresh.requirements("wood_pickaxe") == {}
    experience.apply(fresh, store.list_skills(), store.list_guardrails())
    store.close()
    truth = TechTree.load("full")
    assert fresh.requirements("wood_pickaxe") == truth.requirements("wood_pickaxe") == {"wood": 1, "table": 1}
    assert fresh.requirements("table", "place") == truth.requirements("table", "place")
    assert fresh.requirements("stone") == {"wood_pickaxe": 1}


def _requirement_store(path):
    """A store holding one guess (a wood pickaxe needs a table) and one recipe (a table
    uses 2 wood)."""
    from memory.models import Guardrail, Skill, Trigger

    store = ExperienceStore.open(MemoryConfig(path=str(path), embedder="hashing", require_evidence=False))
    store.upsert_guardrail(Guardrail(trigger=Trigger(subgoal_kind="craft", subgoal_target="wood_pickaxe"),
                                     failure_cause="missing_requirement", risk_pattern=["!near:table"],
                                     repair="first get a table nearby", confidence=0.4))
    store.upsert_skill(Skill(name="place table", trigger=Trigger(subgoal_kind="place", subgoal_target="table"),
                             preconditions=["wood>=2"], steps=["place_table"], confidence=0.9))
    return store


def test_a_new_agent_is_taught_every_requirement_in_memory(tmp_path):
    """Requirements are rules, not situational advice: an agent opening a memory learns
    all of them before its first step, not when retrieval happens to rank one first."""
    store = _requirement_store(tmp_path / "mem")
    agent = SteveAgent(envs.make("crafter"), prior="none", store=store, learn=False)
    assert agent.tree.requirements("wood_pickaxe") == {}
    learned = agent.teach_from_memory()  # play() and resume() start with it
    store.close()
    assert agent.tree.requirements("wood_pickaxe") == {"table": 1}
    assert agent.tree.requirements("table", "place") == {"wood": 2}
    assert learned == ["wood_pickaxe needs table nearby", "table uses 2 wood"]


def test_memory_rules_shows_what_the_agent_believes_against_the_game(tmp_path):
    _requirement_store(tmp_path / "mem").close()
    out = run_cli("memory", "--memory", str(tmp_path / "mem"), "rules", "--prior", "none", "--json").stdout
    rows = {r["rule"]: r for r in json.loads(out)}
    assert rows["make wood_pickaxe"]["believed"] == {"table": 1} and not rows["make wood_pickaxe"]["right"]
    assert rows["make wood_pickaxe"]["game"] == {"wood": 1, "table": 1}
    assert rows["place table"]["right"] and rows["collect wood"]["right"]
    assert not rows["collect stone"]["right"]  # nothing taught it the wood pickaxe
    table = run_cli("memory", "--memory", str(tmp_path / "mem"), "rules").stdout
    assert "differs" in table and "of 17 right" in table
    bad = run_cli("memory", "--memory", str(tmp_path / "mem"), "rules", "--prior", "some", check=False)
    assert bad.returncode == 2 and "--prior must be one of" in bad.stderr

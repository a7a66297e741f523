"""The self-evolving agent as the runner sees it: plays whole episodes through the graph."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from agents.evolving.context import AgentContext, Live
from agents.evolving.graph import RECURSION_LIMIT, build_graph
from agents.evolving.pending import PendingWrites
from agents.executor import Executor
from agents.planners import experience
from agents.planners.graph import GraphPlanner
from agents.techtree import TechTree
from envs import Env

log = logging.getLogger(__name__)


class SteveAgent:
    """Steve-Evolving: retrieve -> plan -> act -> diagnose -> anchor -> distil, per subgoal.

    ``store`` is an open :class:`memory.ExperienceStore` (or None: no memory at all);
    ``learn=False`` reads the store but writes nothing (the no-learning baseline).
    ``checkpoint`` is a SQLite file for LangGraph's saver (resume after a kill).
    """

    name = "steve"

    def __init__(self, env: Env, planner: str = "graph", prior: str = "full", task: str = "open",
                 store: Any = None, learn: bool = True, checkpoint: Path | None = None,
                 llm: Any = None, run_dir: Path | None = None, write_every: int = 25):
        self.task = task
        self.tree = TechTree.load(prior)
        self.executor = Executor(self.tree, action_names=env.action_names)
        graph_planner = GraphPlanner(self.tree, prior=prior)
        self.min_confidence = graph_planner.min_confidence
        self.planner: Any = graph_planner
        if planner == "llm":
            self.planner = _llm_planner(llm, graph_planner, env.action_names, run_dir)
        elif planner != "graph":
            raise ValueError(f"unknown planner {planner!r}; known: graph, llm")
        self.store = store
        self.learn = learn
        self.write_every = write_every
        self._conn = sqlite3.connect(str(checkpoint), check_same_thread=False) if checkpoint else None
        saver = None
        if self._conn is not None:
            # WAL without fsync: a commit survives the process being killed (the OS has
            # it), not a power cut; it makes a checkpoint per node ~5x cheaper.
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=OFF")
            from langgraph.checkpoint.sqlite import SqliteSaver

            saver = SqliteSaver(self._conn)
        self.graph = build_graph(saver)
        self.last_state: dict[str, Any] = {}

    def play(self, env: Env, seed: int, on_step: Any = None) -> dict[str, Any]:
        """One episode from ``seed``; returns the graph's final state. ``on_step(action,
        probs)`` is called after every env step (progress bars, captions)."""
        self.teach_from_memory()
        obs, info = env.reset(seed)
        self.executor.reset(obs)
        if hasattr(self.planner, "use_world"):
            self.planner.use_world(self.executor.world)
        episode_id = info.get("episode_id") or f"{env.name}-s{seed}"
        ctx = AgentContext(env=env, planner=self.planner, executor=self.executor, tree=self.tree,
                           store=self.store, learn=self.learn, on_step=on_step, live=self._live(obs))
        state = self._initial_state(episode_id, seed)
        config = {"configurable": {"thread_id": episode_id}, "recursion_limit": RECURSION_LIMIT}
        # "sync": each checkpoint is on disk before the next node runs, so a SIGKILL
        # loses at most the subgoal in progress.
        extra = {"durability": "sync"} if self._conn is not None else {}
        return self._invoke(ctx, state, config, **extra)

    def resume(self, env: Any, seed: int, on_step: Any = None) -> dict[str, Any]:
        """Continue the episode of ``seed`` that a killed process left open.

        The graph restarts from its last checkpoint at a subgoal boundary whose steps are
        all on disk; the recorder cuts what was recorded after it and replays the kept
        actions (episodes are reproducible), and the executor's map is rebuilt from the
        replayed observations. Without such a checkpoint the episode starts over.
        """
        self.teach_from_memory()
        recorder = _recorder(env)
        episode_id = recorder.episode_id_for_seed(seed)
        config = {"configurable": {"thread_id": episode_id}, "recursion_limit": RECURSION_LIMIT}
        on_disk = recorder.steps_on_disk(episode_id)
        snap = next((s for s in self.graph.get_state_history(config)
                     if s.next == ("perceive",) and s.values.get("step", 0) <= on_disk), None)
        keep = snap.values["step"] if snap is not None else 0
        seen: list[Any] = []
        obs, _ = recorder.resume(seed, keep, on_replay=seen.append)
        self.executor.reset(seen[0] if seen else obs)
        for o in seen[1:]:
            self.executor.world.update(o)
        if hasattr(self.planner, "use_world"):
            self.planner.use_world(self.executor.world)
        ctx = AgentContext(env=env, planner=self.planner, executor=self.executor, tree=self.tree,
                           store=self.store, learn=self.learn, on_step=on_step, live=self._live(obs))
        if snap is None:
            return self._invoke(ctx, self._initial_state(episode_id, seed), config, durability="sync")
        log.info("resuming %s at step %d", episode_id, keep)
        return self._invoke(ctx, None, snap.config | {"recursion_limit": RECURSION_LIMIT}, durability="sync")

    def _invoke(self, ctx: AgentContext, state: dict[str, Any] | None, config: dict[str, Any],
                **extra: Any) -> dict[str, Any]:
        try:
            self.last_state = self.graph.invoke(state, config, context=ctx, **extra)
        finally:
            if ctx.live.pending is not None:
                ctx.live.pending.close()  # the episode's last batch is on disk, the thread gone
        return self.last_state

    def teach_from_memory(self) -> list[str]:
        """Teach the tree every requirement memory holds: the guesses of missing-requirement
        guardrails and the recipes skills state. They are rules of the game, not advice
        for one situation, so they should not wait for retrieval to rank them first (with
        MiniLM that once took twice as many episodes). One read per episode."""
        if self.store is None:
            return []
        skills, rails = experience.requirement_records(self.store, self.task, self.min_confidence)
        return experience.apply(self.tree, skills, rails, self.min_confidence)

    def _live(self, obs: Any) -> Live:
        return Live(obs=obs, pending=PendingWrites(self.store, self.write_every) if self.store else None)

    def _initial_state(self, episode_id: str, seed: int) -> dict[str, Any]:
        return {"task": self.task, "episode_id": episode_id, "seed": seed, "step": 0, "plan": None,
                "cursor": 0, "history": [], "attempts": 0, "successes": 0, "replans": 0, "learned": {},
                "done": False}

    def episode_stats(self) -> dict[str, Any]:
        """Subgoals attempted and succeeded, replans and knowledge written, last episode."""
        attempts = self.last_state.get("attempts", 0)
        done = self.last_state.get("successes", 0)
        return {"subgoals": attempts, "subgoal_success_rate": done / attempts if attempts else 0.0,
                "replans": self.last_state.get("replans", 0), "learned": self.last_state.get("learned", {})}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _recorder(env: Any) -> Any:
    """The EpisodeRecorder inside ``env`` (a video wrapper may sit outside it)."""
    from envs.recorder import EpisodeRecorder

    while not isinstance(env, EpisodeRecorder):
        if not hasattr(env, "env"):
            raise ValueError("resuming needs an env recorded by envs.recorder.EpisodeRecorder")
        env = env.env
    return env


def _llm_planner(llm: Any, fallback: Any, actions: Any, run_dir: Path | None) -> Any:
    from agents.llm import CallLog, ChatClient
    from agents.planners.llm import LLMPlanner

    calls = CallLog(run_dir / "llm_calls.jsonl" if run_dir else None)
    return LLMPlanner(ChatClient(llm, calls), llm, fallback=fallback, actions=actions)

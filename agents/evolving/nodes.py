"""The nodes of the graph: one pass per subgoal, each a small function of (state, context).

The per-step loop lives inside ``act`` (the executor), so the graph costs nothing per
env step.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from langgraph.graph import END
from langgraph.runtime import Runtime

from agents.diagnosis import AttemptTrace, diagnose
from agents.evolving.context import AgentContext
from agents.evolving.knowledge import (
    guardrail_from_failure,
    skill_from_success,
    stations_near,
)
from agents.evolving.state import AgentState, AttemptRecord
from agents.plan import Check, Plan, PlanContext, Subgoal
from agents.planners import experience
from agents.replan import Attempt, replan_reason
from envs import Observation
from envs.text import nearest_things
from memory.models import Diagnosis, ExperienceTuple, Skill, StateSnapshot, SubgoalRef
from memory.retrieval import RetrievalContext

log = logging.getLogger(__name__)
MAX_ACTIONS_KEPT = 200  # per experience tuple: enough to see what happened, bounded
IDLE_LIMIT = 3  # subgoals in a row that could not take a step before a noop is taken (each costs a graph pass)


def _slug(text: str) -> str:
    return text.strip().lower().replace(" ", "_")


def _ref(subgoal: Subgoal) -> SubgoalRef:
    return SubgoalRef(name=subgoal.name, kind=subgoal.kind, target=_slug(subgoal.target))


def _snapshot(obs: Observation, facts: list[str]) -> StateSnapshot:
    return StateSnapshot(inventory={k: v for k, v in obs.inventory.items() if v},
                         vitals=dict(obs.vitals), position=list(obs.position), facts=facts,
                         nearby=sorted(nearest_things(obs)))


def _facts(obs: Observation, ctx: AgentContext, subgoal: Subgoal | None) -> list[str]:
    """The state facts that matter for ``subgoal``: its requirements as held or not,
    the stations next to the player, night and low vitals."""
    facts: list[str] = []
    if subgoal is not None:
        kind = "place" if subgoal.kind == "place" else None
        for item, need in ctx.tree.requirements(subgoal.target, kind).items():
            if item in ("table", "furnace"):
                continue
            have = obs.inventory.get(item, 0)
            facts.append(f"{item}>={need}" if have >= need else f"{item}<{need}")
    facts += [f"near:{s}" for s in stations_near(obs)]
    if obs.daylight < 0.35:
        facts.append("night")
    facts += [f"{k}<4" for k, v in obs.vitals.items() if v < 4]
    return facts


def _plan(state: AgentState) -> Plan | None:
    return Plan.model_validate(state["plan"]) if state.get("plan") else None


def _next_subgoal(state: AgentState) -> Subgoal | None:
    plan = _plan(state)
    cursor = state.get("cursor", 0)
    return plan.subgoals[cursor] if plan and cursor < len(plan.subgoals) else None


def _plan_context(state: AgentState, ctx: AgentContext) -> PlanContext:
    return PlanContext(task=state["task"], obs=ctx.live.obs, skills=ctx.live.skills,
                       guardrails=ctx.live.guardrails,
                       history=[h["line"] for h in state.get("history", [])[-ctx.history_len:]])


IDLE = Subgoal(name="wander", kind="explore", target="frontier",
               check=Check(type="achievement", key="__never__"), budget=10000)


# -- nodes -------------------------------------------------------------------------------
def perceive(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    obs = runtime.context.live.obs
    return {"step": obs.step, "outcome": None, "replan_reason": None}


def retrieve(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    if ctx.store is None or not ctx.retrieve:
        return {}
    subgoal = _next_subgoal(state)
    obs = ctx.live.obs
    causes = [h["failure_cause"] for h in state.get("history", [])[-4:] if h["failure_cause"]]
    got = ctx.store.retrieve(RetrievalContext(
        task=_slug(state["task"]), subgoal=_ref(subgoal) if subgoal else None,
        facts=_facts(obs, ctx, subgoal), position=list(obs.position), recent_causes=causes))
    ctx.live.skills = [s.record for s in got.skills]
    ctx.live.guardrails = [g.record for g in got.guardrails]
    return {"retrieved": {"skills": [s.id for s in ctx.live.skills],
                          "guardrails": [g.id for g in ctx.live.guardrails]}}


def plan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A fresh plan when there is none, it is finished, or the last subgoal succeeded
    (planning is cheap next to acting, so survival needs and opportunities get their turn)."""
    last = (state.get("history") or [None])[-1]
    current = _plan(state)
    if current is not None and state.get("cursor", 0) < len(current.subgoals) and not (last and last["success"]):
        return {}
    new = runtime.context.planner.plan(_plan_context(state, runtime.context))
    if not new.subgoals:
        new = new.model_copy(update={"subgoals": [IDLE]})
    return {"plan": new.model_dump(mode="json"), "cursor": 0}


def act(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    subgoal = _next_subgoal(state)
    obs = ctx.live.obs
    ctx.live.pre = obs
    if subgoal is None or subgoal.check.holds(obs):
        ctx.live.result = None
        return {"cursor": state.get("cursor", 0) + 1, "outcome": None}
    if hasattr(ctx.env, "annotate"):
        ctx.env.annotate(task=state["task"], subgoal=subgoal.name, plan=_plan(state).text(state.get("cursor", 0)))
    result = ctx.executor.run(ctx.env, obs, subgoal, guardrails=ctx.live.guardrails, on_step=ctx.on_step)
    ctx.live.obs, ctx.live.result = result.obs, result
    idle = state.get("idle", 0) + 1 if result.steps == 0 else 0
    if idle >= IDLE_LIMIT and not result.done:  # nothing can start here: let the world move on
        obs, _, terminated, truncated, _ = ctx.env.step(ctx.env.action_names.index("noop"))
        result.obs, result.done, idle = obs, terminated or truncated, 0
        ctx.live.obs = obs
    if hasattr(ctx.env, "flush"):
        ctx.env.flush()  # every step before this subgoal's end is on disk before the checkpoint
    return {"step": result.obs.step, "done": result.done, "idle": idle,
            "outcome": {"subgoal": subgoal.model_dump(mode="json"), "success": result.success,
                        "steps": result.steps, "reason": result.reason}}


def diagnose_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    live = runtime.context.live
    if not state.get("outcome") or live.result is None:
        return {}
    res = live.result
    subgoal = Subgoal.model_validate(state["outcome"]["subgoal"])
    trace = AttemptTrace(actions=res.actions, positions=res.positions, steps_used=res.steps,
                         budget=subgoal.budget, check_held=res.success, episode_done=res.done,
                         died=res.terminated, damage_taken=res.damage, executor_reason=res.reason)
    diag = diagnose(subgoal, live.pre, res.obs, trace)
    return {"outcome": state["outcome"] | {"diagnosis": diag.model_dump(mode="json")}}


def anchor(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    out = state.get("outcome")
    if not out or "diagnosis" not in out or ctx.store is None or not ctx.learn:
        return {}
    subgoal = Subgoal.model_validate(out["subgoal"])
    res, pre = ctx.live.result, ctx.live.pre
    names = ctx.env.action_names
    exp = ExperienceTuple(
        id=f"{state['episode_id']}-a{state.get('attempts', 0)}", episode_id=state["episode_id"], task=_slug(state["task"]),
        subgoal=_ref(subgoal), pre_state=_snapshot(pre, _facts(pre, ctx, subgoal)),
        actions=[names[a] for a in res.actions[-MAX_ACTIONS_KEPT:]],
        diagnosis=Diagnosis.model_validate(out["diagnosis"]),
        post_state=_snapshot(res.obs, _facts(res.obs, ctx, subgoal)),
        step_start=pre.step, step_end=res.obs.step)
    ctx.live.pending.add_experience(exp)
    return {"outcome": out | {"experience_id": exp.id}}


def distill(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    out = state.get("outcome")
    if not out or "experience_id" not in out:
        return {}
    subgoal = Subgoal.model_validate(out["subgoal"])
    diag = Diagnosis.model_validate(out["diagnosis"])
    res, pre = ctx.live.result, ctx.live.pre
    if diag.outcome == "success":
        names = ctx.env.action_names
        record = skill_from_success(subgoal, pre, res.obs, diag, out["experience_id"], ctx.tree,
                                    [names[a] for a in res.actions], last_pre=res.before_last)
    else:
        record = guardrail_from_failure(subgoal, pre, diag, out["experience_id"], ctx.tree, state["task"])
    if record is not None:
        ctx.live.pending.add_knowledge(record)
        # what it teaches about the rules holds from now on, not from its next retrieval
        is_skill = isinstance(record, Skill)
        experience.apply(ctx.tree, [record] if is_skill else [], [] if is_skill else [record])
    if not (ctx.live.pending.due() or state.get("done")):
        return {}
    learned = dict(state.get("learned") or {})
    for key, n in ctx.live.pending.flush(wait=bool(state.get("done"))).items():
        learned[key] = learned.get(key, 0) + n
    return {"learned": learned}


def route(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    out = state.get("outcome")
    history = list(state.get("history", []))
    if out and "diagnosis" in out:
        diag = out["diagnosis"]
        sg = out["subgoal"]
        ok = diag["outcome"] == "success"
        line = f"{'ok' if ok else 'failed (' + str(diag.get('failure_cause')) + ')'} {sg['name']} ({out['steps']} steps)"
        history.append(AttemptRecord(subgoal=sg["name"], kind=sg["kind"], target=sg["target"], success=ok,
                                     failure_cause=diag.get("failure_cause"), stagnant=diag["stagnant"],
                                     steps=out["steps"], line=line))
        history = history[-4 * runtime.context.history_len:]
        counts = {"attempts": state.get("attempts", 0) + 1, "successes": state.get("successes", 0) + ok}
    else:
        counts = {}
    attempts = [Attempt(h["subgoal"], h["success"], h["failure_cause"], h["stagnant"]) for h in history]
    reason = replan_reason(attempts) if out and "diagnosis" in out and not out["success"] else None
    update: dict[str, Any] = {"history": history, "replan_reason": reason, **counts}
    if out and not out.get("success") and not reason:
        # No trigger: the planner hears of the failure (it holds the target back for a
        # while) and the next pass plans afresh, as after a success.
        ctx = runtime.context
        if hasattr(ctx.planner, "note_failure"):
            ctx.planner.note_failure(_plan_context(state, ctx), Subgoal.model_validate(out["subgoal"]),
                                     out.get("reason") or "")
        update["cursor"] = len(_plan(state).subgoals)
    return update


def next_after_route(state: AgentState) -> Literal["replan", "perceive", "__end__"]:
    if state.get("done"):
        return END
    return "replan" if state.get("replan_reason") else "perceive"


def replan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Repair only the unfinished part of the plan (the planner keeps what is done)."""
    ctx = runtime.context
    current = _plan(state)
    cursor = state.get("cursor", 0)
    new = ctx.planner.repair(_plan_context(state, ctx), current, cursor, state["replan_reason"] or "")
    if cursor >= len(new.subgoals):
        new = ctx.planner.plan(_plan_context(state, ctx))
        cursor = 0
    log.debug("replan (%s): %s", state["replan_reason"], new.text(cursor))
    return {"plan": new.model_dump(mode="json"), "cursor": cursor, "replans": state.get("replans", 0) + 1}

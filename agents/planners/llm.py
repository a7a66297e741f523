"""The ``llm`` planner: task -> subgoals from a chat model, with a fallback planner.

The model sees the task, the observation, the retrieved skills and guardrails, recent
outcomes, and the JSON schema of its reply. A reply that is not valid JSON for the
schema is shown back to the model with the validation error (``llm.parse_retries``
times); after that, or after the endpoint stays unavailable, the step goes to the
fallback planner (normally the ``graph`` planner) and the fallback is logged. A
rejected API key or an unknown model raises :class:`agents.llm.LLMError` instead:
falling back for a whole run would hide a broken configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, create_model

from agents.llm.client import ChatClient
from agents.llm.config import LLMConfig
from agents.llm.render import PromptSet, context_values, render_subgoals, schema_text
from agents.llm.structured import ask
from agents.plan import SUBGOAL_KINDS, Check, Plan, PlanContext, Planner, Subgoal

logger = logging.getLogger(__name__)

CHECK_TYPES: tuple[str, ...] = Check.model_fields["type"].annotation.__args__  # type: ignore[union-attr]


class PlanReply(BaseModel):
    """What the model writes: the subgoals (and why). The task is ours, not the model's:
    an echoed ``task`` is accepted and ignored."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = ""
    subgoals: list[Subgoal] = Field(min_length=1)
    task: str | None = None


def plan_reply_schema(max_subgoals: int) -> type[PlanReply]:
    """:class:`PlanReply` with the configured plan length limit, in the schema the model sees too."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        "PlanReply",
        __base__=PlanReply,
        subgoals=(list[Subgoal], Field(min_length=1, max_length=max_subgoals)),
    )


class LLMPlanner:
    """Plans with the ``planner`` role's model; ``fallback`` plans when it cannot.

    ``config`` is the ``llm`` section (prompts, parse retries, limits); it defaults to the
    client's. ``actions`` are the env's action names, shown so the model knows what the
    executor can do. The client is injected, never built here, so tests and other
    backends can swap it.
    """

    name = "llm"

    def __init__(
        self,
        client: ChatClient,
        config: LLMConfig | None,
        fallback: Planner,
        actions: Sequence[str] = (),
        prompts: PromptSet | None = None,
    ) -> None:
        self.client = client
        self.config = config or client.config
        self.fallback = fallback
        self.actions = tuple(actions)
        self.prompts = prompts or PromptSet(self.config.prompts_dir)
        self.schema = plan_reply_schema(self.config.max_subgoals)
        self.fallbacks = 0  # steps handed to the fallback planner, for run summaries

    def messages(self, ctx: PlanContext, request: str) -> list[dict[str, str]]:
        """The chat messages for one planning request (``request``: the rendered
        ``[plan]`` or ``[repair]`` section)."""
        return self.prompts.messages(
            "planner",
            **context_values(ctx, self.config.history),
            actions=", ".join(self.actions) or "(not given)",
            subgoal_kinds=", ".join(SUBGOAL_KINDS),
            check_types=", ".join(CHECK_TYPES),
            max_subgoals=self.config.max_subgoals,
            schema=schema_text(self.schema),
            request=request,
        )

    def plan(self, ctx: PlanContext) -> Plan:
        """Subgoals for ``ctx.task`` from the model, or from the fallback planner."""
        request = self.prompts.section("planner", "plan", max_subgoals=self.config.max_subgoals)
        reply = self._ask(self.messages(ctx, request), "plan")
        if reply is None:
            return self.fallback.plan(ctx)
        return Plan(task=ctx.task, subgoals=reply.subgoals, rationale=reply.rationale)

    def note_failure(self, ctx: PlanContext, failed: Subgoal, reason: str) -> None:
        """The model reads failures in the history lines; the fallback planner holds them back."""
        if hasattr(self.fallback, "note_failure"):
            self.fallback.note_failure(ctx, failed, reason)

    def repair(self, ctx: PlanContext, plan: Plan, done: int, reason: str) -> Plan:
        """Keeps ``plan.subgoals[:done]``; asks the model only for what replaces the rest."""
        done = max(0, min(done, len(plan.subgoals)))
        request = self.prompts.section(
            "planner",
            "repair",
            reason=reason or "(not given)",
            done=render_subgoals(plan.subgoals[:done]),
            remaining=render_subgoals(plan.subgoals[done:], start=done + 1),
            max_subgoals=self.config.max_subgoals,
        )
        reply = self._ask(self.messages(ctx, request), "repair")
        if reply is None:
            return self.fallback.repair(ctx, plan, done, reason)
        return Plan(task=ctx.task, subgoals=[*plan.subgoals[:done], *reply.subgoals], rationale=reply.rationale)

    def _ask(self, messages: list[dict[str, str]], purpose: str) -> PlanReply | None:
        fallback_name = getattr(self.fallback, "name", type(self.fallback).__name__)
        reply = ask(self.client, "planner", messages, self.schema, purpose=purpose,
                    retries=self.config.parse_retries, fallback=f"the {fallback_name} planner")
        if reply is None:
            self.fallbacks += 1
        return reply

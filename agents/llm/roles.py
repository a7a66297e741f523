"""The critic and the skill writer: two small LLM roles beside the planner.

Both follow the planner's pattern (schema-validated JSON, re-asked on bad output) and
return ``None`` when the model gives nothing usable, so the caller derives what it needs
from the diagnosis instead.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.llm.client import ChatClient
from agents.llm.config import LLMConfig
from agents.llm.render import PromptSet, context_values, schema_text
from agents.llm.structured import ask
from agents.plan import PlanContext, Subgoal
from memory import facts as factlib
from memory.models import FAILURE_CAUSES

FailureCause = Literal[FAILURE_CAUSES]  # type: ignore[valid-type]


class Critique(BaseModel):
    """Why a subgoal attempt failed, and what to do instead."""

    model_config = ConfigDict(extra="forbid")

    failure_cause: FailureCause  # type: ignore[valid-type]
    explanation: str = Field(min_length=1, max_length=1000)
    repair: str = Field(min_length=1, max_length=1000, description="what to do instead, next time")


class SkillDraft(BaseModel):
    """A reusable way to achieve a subgoal, written from one successful attempt."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    preconditions: list[str] = Field([], description="state facts, e.g. wood>=1, near:table, !near:zombie")
    steps: list[str] = Field(min_length=1, max_length=20)
    verification: str = Field("", description="how success shows, e.g. wood_pickaxe>=1")

    @field_validator("preconditions")
    @classmethod
    def _facts(cls, value: list[str]) -> list[str]:
        # The memory stores preconditions in its fact language; reject anything else
        # here, so the model is re-asked with the reason instead of the store failing later.
        for fact in value:
            try:
                factlib.parse(fact)
            except factlib.FactError as err:
                raise ValueError(f"{fact!r} is not a fact ({err}); write e.g. wood>=1 or near:table") from None
        return value


class LLMCritic:
    """The ``critic`` role: explains a failed subgoal attempt."""

    def __init__(self, client: ChatClient, config: LLMConfig | None = None, prompts: PromptSet | None = None) -> None:
        self.client = client
        self.config = config or client.config
        self.prompts = prompts or PromptSet(self.config.prompts_dir)

    def critique(self, ctx: PlanContext, subgoal: Subgoal, outcome_text: str) -> Critique | None:
        """A :class:`Critique` of ``subgoal``'s attempt, or ``None`` (caller: use the diagnosis)."""
        messages = self.prompts.messages(
            "critic",
            **context_values(ctx, self.config.history),
            subgoal=subgoal.describe(),
            outcome=outcome_text,
            failure_causes=", ".join(FAILURE_CAUSES),
            schema=schema_text(Critique),
        )
        return ask(self.client, "critic", messages, Critique, purpose="critique",
                   retries=self.config.parse_retries, fallback="the diagnosis")


class LLMSkillWriter:
    """The ``skill_writer`` role: turns a successful attempt into a skill draft."""

    def __init__(self, client: ChatClient, config: LLMConfig | None = None, prompts: PromptSet | None = None) -> None:
        self.client = client
        self.config = config or client.config
        self.prompts = prompts or PromptSet(self.config.prompts_dir)

    def write_skill(self, ctx: PlanContext, subgoal: Subgoal, outcome_text: str) -> SkillDraft | None:
        """A :class:`SkillDraft` for ``subgoal`` from what happened (``outcome_text``: the
        actions taken and the state change), or ``None`` (caller: derive from the diagnosis)."""
        messages = self.prompts.messages(
            "skill_writer",
            **context_values(ctx, self.config.history),
            subgoal=subgoal.describe(),
            outcome=outcome_text,
            schema=schema_text(SkillDraft),
        )
        return ask(self.client, "skill_writer", messages, SkillDraft, purpose="write_skill",
                   retries=self.config.parse_retries, fallback="the diagnosis")

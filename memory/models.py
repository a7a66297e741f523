"""The records of the experience store: plain facts, validated, with a schema version.

Tier 1 holds :class:`ExperienceTuple` (one per subgoal attempt), tier 2 :class:`Skill`
and :class:`Guardrail` (knowledge distilled from tier 1, each citing its evidence), and
tier 3 :class:`Summary` (rolling counts per task, subgoal kind and region).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memory import facts as factlib

SCHEMA_VERSION = 1

SUBGOAL_KINDS = ("collect", "craft", "place", "eat", "drink", "sleep", "fight", "explore")
FAILURE_CAUSES = ("missing_requirement", "target_not_found", "path_blocked", "took_damage", "died",
                  "timeout", "stagnation", "loop", "unknown")

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9][a-z0-9_:.\-]*$")]


def _now() -> float:
    return time.time()


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _check_facts(value: list[str]) -> list[str]:
    try:
        return [factlib.canonical(f) for f in value]
    except factlib.FactError as err:
        raise ValueError(str(err)) from None


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)

    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(f"schema version {value} is newer than this code ({SCHEMA_VERSION})")
        return value


class SubgoalRef(BaseModel):
    """Which subgoal an experience attempted: ``collect wood`` is kind collect, target wood."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Name = Field(description=f"one of {', '.join(SUBGOAL_KINDS)} (others are allowed)")
    target: Name | None = None


class StateSnapshot(BaseModel):
    """The state before or after a subgoal, as plain facts."""

    model_config = ConfigDict(extra="forbid")

    inventory: dict[str, int] = {}
    vitals: dict[str, float] = {}
    position: list[float] | None = Field(None, min_length=2, max_length=3, description="x, y[, z]")
    facts: list[str] = Field([], description="the facts that matter for the subgoal, e.g. wood>=1, near:table")
    nearby: list[str] = []
    biome: str | None = None

    @field_validator("facts")
    @classmethod
    def _canonical_facts(cls, value: list[str]) -> list[str]:
        return _check_facts(value)


class Diagnosis(Record):
    """What a subgoal attempt produced: outcome, cause, continuous indicators."""

    outcome: Literal["success", "failure", "partial"]
    state_diff: dict[str, float] = Field({}, description="e.g. {'inventory.wood': 1, 'vitals.health': -2}")
    failure_cause: Name | None = Field(None, description=f"e.g. {', '.join(FAILURE_CAUSES)}")
    indicators: dict[str, float] = Field({}, description="progress, distance_to_target, steps_used, budget...")
    stagnant: bool = False
    looping: bool = False
    explanation: str = ""

    @model_validator(mode="after")
    def _cause_matches_outcome(self) -> Diagnosis:
        if self.outcome == "failure" and not self.failure_cause:
            raise ValueError("failure_cause: a failure needs a cause ('unknown' if none is known)")
        if self.outcome == "success" and self.failure_cause:
            raise ValueError("failure_cause: a success has no failure cause")
        return self


class ExperienceTuple(Record):
    """One subgoal attempt: pre-state, actions, diagnosis, post-state, and its indices.

    ``condition_signature``, ``spatial_cell`` and the automatic tags are filled by the
    store (:func:`memory.indices.index_experience`) when left empty.
    """

    id: str = Field(default_factory=lambda: new_id("ex"), min_length=1, max_length=200)
    episode_id: str = Field(min_length=1)
    task: Name
    subgoal: SubgoalRef
    pre_state: StateSnapshot = StateSnapshot()
    actions: list[str] = []
    diagnosis: Diagnosis
    post_state: StateSnapshot = StateSnapshot()
    condition_signature: str = ""
    spatial_cell: str | None = None
    tags: list[str] = []
    started_at: float = Field(default_factory=_now)
    ended_at: float = Field(default_factory=_now)
    step_start: int | None = Field(None, ge=0)
    step_end: int | None = Field(None, ge=0)

    @property
    def success(self) -> bool:
        return self.diagnosis.outcome == "success"


class Trigger(BaseModel):
    """When a skill or guardrail applies: a subgoal (kind, target), optionally a task or places."""

    model_config = ConfigDict(extra="forbid")

    subgoal_kind: Name
    subgoal_target: Name | None = None
    task: Name | None = Field(None, description="None: any task")
    cells: list[str] = Field([], description="spatial cells it is about; empty: anywhere")
    text: str = ""
    tags: list[str] = []


class Knowledge(Record):
    """What skills and guardrails share: a trigger, support, confidence, evidence."""

    trigger: Trigger
    support: int = Field(1, ge=1, description="how many times this knowledge was distilled")
    confidence: float = Field(0.5, ge=0.0, le=1.0)
    source_experiences: list[str] = Field([], description="ids of the experiences behind it")
    condition_signature: str = ""
    tags: list[str] = []
    created_at: float = Field(default_factory=_now)
    updated_at: float = Field(default_factory=_now)


class Skill(Knowledge):
    """A way to achieve a subgoal, distilled from successes."""

    id: str = ""
    name: str = Field(min_length=1, max_length=200)
    preconditions: list[str] = Field([], description="facts that must hold, e.g. wood>=1, near:table")
    steps: list[str] = Field(min_length=1)
    verification: str = Field("", description="how success shows, e.g. wood_pickaxe>=1")
    version: int = Field(1, ge=1)

    @field_validator("preconditions")
    @classmethod
    def _canonical_preconditions(cls, value: list[str]) -> list[str]:
        return factlib.canonical_set(_check_facts(value))

    def key(self) -> str:
        """What makes two skills the same knowledge: trigger, preconditions and steps."""
        t = self.trigger
        return "|".join(["skill", t.subgoal_kind, t.subgoal_target or "*", t.task or "*",
                         ",".join(self.preconditions), ">".join(s.strip().lower() for s in self.steps)])

    @model_validator(mode="after")
    def _derived(self) -> Skill:
        self.id = self.id or "sk-" + _digest(self.key())
        self.condition_signature = self.condition_signature or factlib.signature(self.preconditions)
        return self


class Guardrail(Knowledge):
    """A failure to avoid, distilled from failures: cause, risk pattern, repair."""

    id: str = ""
    failure_cause: Name
    risk_pattern: list[str] = Field([], description="facts under which the failure happens, e.g. !near:table")
    repair: str = Field(min_length=1, description="what to do instead")
    scope: Literal["subgoal", "task"] = "subgoal"
    version: int = Field(1, ge=1)

    @field_validator("risk_pattern")
    @classmethod
    def _canonical_risk(cls, value: list[str]) -> list[str]:
        return factlib.canonical_set(_check_facts(value))

    def key(self) -> str:
        """What makes two guardrails the same knowledge: trigger, scope, cause, risk pattern."""
        t = self.trigger
        return "|".join(["guardrail", self.scope, t.subgoal_kind, t.subgoal_target or "*", t.task or "*",
                         self.failure_cause, ",".join(self.risk_pattern)])

    @model_validator(mode="after")
    def _derived(self) -> Guardrail:
        if self.scope == "task" and not self.trigger.task:
            raise ValueError("trigger.task: a task-scoped guardrail names its task")
        self.id = self.id or "gr-" + _digest(self.key())
        self.condition_signature = self.condition_signature or factlib.signature(self.risk_pattern)
        return self


class Summary(Record):
    """Rolling counts of experiences for one task, subgoal kind or region (tier 3)."""

    id: str = ""
    scope: Literal["task", "kind", "region"]
    key: str = Field(min_length=1)
    count: int = Field(0, ge=0)
    successes: int = Field(0, ge=0)
    failures: int = Field(0, ge=0)
    causes: dict[str, int] = {}
    actions: int = Field(0, ge=0, description="actions taken over all counted attempts")
    first_at: float | None = None
    last_at: float | None = None

    @model_validator(mode="after")
    def _derived(self) -> Summary:
        self.id = self.id or f"su-{self.scope}-{self.key}"
        return self

    @property
    def success_rate(self) -> float:
        return self.successes / self.count if self.count else 0.0

    def add(self, other: Summary) -> Summary:
        """The sum of two summaries of the same key (counts are additive)."""
        causes = dict(self.causes)
        for cause, n in other.causes.items():
            causes[cause] = causes.get(cause, 0) + n
        firsts = [t for t in (self.first_at, other.first_at) if t is not None]
        lasts = [t for t in (self.last_at, other.last_at) if t is not None]
        return self.model_copy(update=dict(
            count=self.count + other.count, successes=self.successes + other.successes,
            failures=self.failures + other.failures, causes=causes, actions=self.actions + other.actions,
            first_at=min(firsts) if firsts else None, last_at=max(lasts) if lasts else None))

    @property
    def text(self) -> str:
        label = {"task": "task", "kind": "subgoal kind", "region": "region"}[self.scope]
        parts = [f"{label} {self.key}: {self.count} attempts, {self.success_rate:.0%} success"]
        if self.count:
            parts.append(f"{self.actions / self.count:.1f} actions each")
        top = sorted(self.causes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        if top:
            parts.append("failures: " + ", ".join(f"{c} ({n})" for c, n in top))
        return "; ".join(parts)


KIND_MODELS: dict[str, type[Record]] = {
    "experience": ExperienceTuple, "skill": Skill, "guardrail": Guardrail, "summary": Summary,
}


class RecordError(ValueError):
    """An invalid record; the message names the field."""


def explain(err: ValidationError, what: str = "record") -> str:
    """``skill: steps: List should have at least 1 item`` from a pydantic error."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if loc and msg.startswith(loc + ":"):
        msg = msg[len(loc) + 1:].strip()
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{what}: {loc + ': ' if loc else ''}{msg}{more}"


def validate(kind: str, data: object) -> Record:
    """Build a record of ``kind`` from plain data, or raise :class:`RecordError`."""
    model = KIND_MODELS[kind]
    if isinstance(data, model):  # validated when it was built
        return data
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RecordError(explain(err, kind)) from None

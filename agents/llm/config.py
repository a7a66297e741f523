"""The ``llm`` section of the run configuration (defaults in ``configs/llm.yaml``).

Three roles talk to a model: the ``planner`` (task -> subgoals), the ``critic``
(why a subgoal failed) and the ``skill_writer`` (a successful attempt -> a skill).
The planner's settings are complete; the other two only say what differs, so one local
server serves all three unless a role names another model or endpoint.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["planner", "critic", "skill_writer"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]


class RoleSettings(BaseModel):
    """Where one role's requests go and how they are made."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible endpoint, ending in /v1")
    model: str = Field("Qwen/Qwen2.5-7B-Instruct", description="model name as the server knows it")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        description="NAME of the env var holding the key (read at call time, never stored); "
        "unset -> a placeholder, which local servers accept",
    )
    timeout_s: float = Field(60.0, gt=0, description="seconds per request before it counts as a timeout")
    max_retries: int = Field(2, ge=0, le=10, description="retries after a timeout, connection error, 429 or 5xx")
    backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles per retry (capped at 60 s)")
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int | None = Field(1024, ge=1, description="reply length limit; null: the server's default")
    json_mode: bool = Field(False, description="send response_format json_object (if the server supports it)")


class RoleOverrides(BaseModel):
    """A role's differences from the planner's settings; ``null`` means "as the planner"."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    backoff_s: float | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    json_mode: bool | None = None


class LLMConfig(BaseModel):
    """Settings of the LLM planner, critic and skill writer."""

    model_config = ConfigDict(extra="forbid")

    planner: RoleSettings = RoleSettings()
    critic: RoleOverrides = RoleOverrides()
    skill_writer: RoleOverrides = RoleOverrides()
    parse_retries: int = Field(2, ge=0, le=5, description="re-asks after a reply that is not valid JSON for the schema")
    history: int = Field(8, ge=0, description="recent subgoal outcomes shown in prompts")
    max_subgoals: int = Field(12, ge=1, description="longest plan accepted from the model")
    prompts_dir: str | None = Field(None, description="folder of prompt files overriding the packaged ones")
    log_text: bool = Field(False, description="also keep prompts and replies in the call log")

    @model_validator(mode="after")
    def _roles_resolve(self) -> LLMConfig:
        # Resolve every role now, so a bad override (e.g. timeout_s: -1) fails when the
        # config is loaded, not at the first critique an hour into a run.
        for role in ROLES:
            self.role(role)
        return self

    def role(self, name: str) -> RoleSettings:
        """The complete settings of ``name``: the planner's, with the role's overrides."""
        if name not in ROLES:
            raise ValueError(f"unknown LLM role {name!r}; known: {', '.join(ROLES)}")
        if name == "planner":
            return self.planner
        overrides: RoleOverrides = getattr(self, name)
        merged = self.planner.model_dump() | overrides.model_dump(exclude_none=True)
        return RoleSettings.model_validate(merged)

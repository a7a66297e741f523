"""Config composition: YAML defaults per concern, a ``--config`` file, ``--set`` overrides.

Each component owns its section's schema (``envs.config.EnvConfig``,
``memory.config.MemoryConfig``, ...); this module only stacks the layers and validates
the result, so an unknown key or a wrong type is a one-line error before anything runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.llm.config import LLMConfig
from distill.config import PLAY_TEMPERATURE, merge, read_yaml
from distill.config import parse_override as _parse_override
from envs.config import EnvConfig
from memory.config import MemoryConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A configuration problem, phrased for the command line."""


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["random", "steve", "student"] = Field("random", description="which agent plays")
    planner: Literal["graph", "llm"] = Field("graph", description="steve: the planner (llm falls back to graph)")
    prior: Literal["full", "partial", "none"] = Field("full", description="steve: what the graph planner knows")
    task: str = Field("open", description="steve: 'open' (every achievement) or one achievement name")
    learn: bool = Field(True, description="steve: write experiences and distil skills and guardrails")
    checkpoint: str | None = Field(None, description="student: the trained student's checkpoint directory")
    sample: bool = Field(True, description="student: sample its action (false: the most likely one)")
    temperature: float = Field(PLAY_TEMPERATURE, gt=0, description="student: temperature of that sampling")
    min_p: float = Field(0.0, ge=0, lt=1, description="student: never sample an action less than min_p "
                         "times as likely as the most likely one")
    keep_subgoal: float = Field(0.0, ge=0, description="student: keep its subgoal unless the greedy one is at least "
                                "this many times as likely (above 1; 0: plain greedy)")
    subgoal_temperature: dict[str, float] = Field(default_factory=dict, description="student: the temperature "
                                                  "under these subgoals (0: the most likely action), "
                                                  "e.g. --set 'agent.subgoal_temperature.build shelter=0.4'")
    avoid_lava: bool = Field(False, description="student: never move onto a cell it reads as lava (Crafter)")
    history: bool = Field(True, description="student: read its last actions (false: frame, task and subgoal "
                          "alone; for a student trained with train.history_dropout)")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episodes: int = Field(1, ge=1, description="episodes to play; episode i uses seed + i")
    seed: int = Field(0, ge=0, description="seed of the first episode (and of the agent)")
    out: str | None = Field(None, description="run directory")
    video: bool = Field(False, description="write an MP4 per episode")
    video_scale: int = Field(4, ge=1, le=16, description="upscaling of frames in videos")
    flush_every: int = Field(500, ge=1, description="steps buffered before they reach disk")
    workers: int = Field(1, ge=1, description="processes playing episodes side by side (random, student, and "
                         "steve without learning; the same episodes as one after another)")


class Config(BaseModel):
    """The resolved configuration of a run; written to ``RUN_DIR/config.yaml``."""

    model_config = ConfigDict(extra="forbid")

    env: EnvConfig = EnvConfig()
    agent: AgentConfig = AgentConfig()
    run: RunConfig = RunConfig()
    memory: MemoryConfig = MemoryConfig()
    llm: LLMConfig = LLMConfig()

    @model_validator(mode="after")
    def _steve_plays_in_turn(self) -> Config:
        if self.run.workers > 1 and self.agent.name == "steve" and self.agent.learn:
            raise ValueError("run.workers: the steve agent that learns plays one episode after another (each "
                             "learns from the ones before); use --workers 1, or --no-learn (as steve eval does)")
        return self

    def digest(self) -> str:
        """A hash of what decides an episode besides its seed: not the run's bookkeeping
        (how many episodes, where they go, videos), so one episode keeps one id."""
        data = self.model_dump(mode="json")
        data.pop("run")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


SECTIONS = tuple(Config.model_fields)


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml(path, ConfigError)


def parse_override(text: str) -> dict[str, Any]:
    """``a.b=c`` -> ``{"a": {"b": c}}`` with ``c`` read as YAML (numbers, bools, lists)."""
    return _parse_override(text, ConfigError, "run.episodes=3")


def defaults(config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    """The per-concern YAML files, ``configs/<section>.yaml``, as one mapping."""
    data: dict[str, Any] = {}
    for section in SECTIONS:
        path = config_dir / f"{section}.yaml"
        if path.exists():
            data[section] = _read_yaml(path)
    return data


def _explain(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"config: unknown key {loc!r}"
    got = first.get("input")
    got_txt = f" (got {got!r})" if not isinstance(got, dict) else ""
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    if not loc:  # a rule across sections: its message names the keys
        return f"config: {first['msg'].removeprefix('Value error, ')}{more}"
    return f"config: {loc}: {first['msg']}{got_txt}{more}"


def validate(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err)) from None


def load(
    files: list[Path] | None = None,
    overrides: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> Config:
    """Defaults, then each ``--config`` file, then ``extra`` (CLI flags), then ``--set``."""
    data = defaults(config_dir)
    for path in files or []:
        data = merge(data, _read_yaml(Path(path)))
    if extra:
        data = merge(data, extra)
    for text in overrides or []:
        data = merge(data, parse_override(text))
    return validate(data)

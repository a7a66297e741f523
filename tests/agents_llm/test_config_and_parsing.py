"""The llm config section, JSON extraction, and rendering of memory records."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from agents.llm import LLMConfig, PromptError, PromptSet, RoleOverrides, RoleSettings, extract_json
from agents.llm.client import redact_url
from agents.llm.render import render_guardrails, render_skills

ROOT = Path(__file__).resolve().parents[2]


def test_yaml_defaults_validate_and_roles_inherit_the_planner():
    config = LLMConfig.model_validate(yaml.safe_load((ROOT / "configs" / "llm.yaml").read_text()))
    assert config == LLMConfig()  # the YAML and the model say the same
    assert config.role("critic") == config.planner == config.role("skill_writer")
    assert config.planner.api_key_env == "OPENAI_API_KEY"


def test_role_overrides_merge_and_are_validated_at_load():
    config = LLMConfig(critic={"model": "big", "timeout_s": 120})
    critic = config.role("critic")
    assert (critic.model, critic.timeout_s, critic.base_url) == ("big", 120, config.planner.base_url)
    with pytest.raises(ValidationError, match="timeout_s"):
        LLMConfig(skill_writer={"timeout_s": -1})
    with pytest.raises(ValidationError, match="extra"):
        LLMConfig(critic={"api_key": "sk-..."})  # keys never go in a config, only env var names
    with pytest.raises(ValueError, match="unknown LLM role"):
        config.role("judge")


def test_overrides_and_settings_have_the_same_fields():
    assert set(RoleOverrides.model_fields) == set(RoleSettings.model_fields)


@pytest.mark.parametrize("text", [
    '{"a": 1}',
    'Here you go: {"a": 1} hope it helps',
    '```json\n{"a": 1}\n```',
    '```\n{"a": 1}\n```',
    'Thinking {about it}... then {"a": 1}',
    '{"a": 1, "b": "has } and { inside"}',
])
def test_extract_json_finds_the_object(text):
    assert extract_json(text)["a"] == 1


@pytest.mark.parametrize("text", ["", "no json here", "[1, 2]", "{broken"])
def test_extract_json_gives_none_without_an_object(text):
    assert extract_json(text) is None


def test_redact_url_drops_credentials():
    assert redact_url("https://user:pw@host:8443/v1?key=abc") == "https://host:8443/v1"


def test_memory_records_render():
    models = pytest.importorskip("memory.models")
    skill = models.Skill(trigger=models.Trigger(subgoal_kind="collect", subgoal_target="wood"),
                         name="chop tree", preconditions=["near:tree"], steps=["walk to tree", "do"],
                         verification="wood>=1", confidence=0.8)
    guard = models.Guardrail(trigger=models.Trigger(subgoal_kind="place", subgoal_target="table"),
                             failure_cause="missing_requirement", risk_pattern=["wood<1"],
                             repair="collect wood first", confidence=0.6)
    assert render_skills([skill]) == ("- chop tree (confidence 0.80): when collect wood; needs near:tree;"
                                      " steps 1) walk to tree 2) do; verify wood>=1")
    assert render_guardrails([guard]) == ("- [subgoal] when place table: risk wood<1 (cause missing_requirement);"
                                          " instead collect wood first (confidence 0.60)")
    assert render_skills([]) == "(none yet)"
    as_dict = {"trigger": "any fight", "failure_cause": "died", "repair": "eat first", "scope": "task"}
    assert render_guardrails([as_dict]) == "- [task] when any fight: risk - (cause died); instead eat first"


def test_packaged_prompts_have_their_sections():
    prompts = PromptSet()
    assert set(prompts.sections("planner")) == {"system", "user", "plan", "repair"}
    assert set(prompts.sections("critic")) == {"system", "user"}
    assert set(prompts.sections("skill_writer")) == {"system", "user"}
    with pytest.raises(PromptError, match="no prompt file"):
        prompts.sections("judge")
    with pytest.raises(PromptError, match="placeholder"):
        prompts.section("critic", "user", task="only this")

"""LLMPlanner, critic and skill writer against the scripted server."""

from __future__ import annotations

import json
import logging

import pytest

from agents.llm import Critique, LLMCritic, LLMError, LLMSkillWriter, SkillDraft
from agents.plan import Plan
from agents.planners.llm import LLMPlanner
from tests.agents_llm.helpers import VALID_PLAN, Scripted, subgoal

ACTIONS = ("noop", "move_left", "move_right", "do", "place_table", "make_wood_pickaxe")


def planner(client, fallback) -> LLMPlanner:
    return LLMPlanner(client, client.config, fallback, actions=ACTIONS)


def user_prompt(request: dict) -> str:
    return next(m["content"] for m in request["body"]["messages"] if m["role"] == "user")


def test_prompt_holds_task_observation_skills_guardrails_and_schema(server, make_client, ctx, tiny):
    server.push(json.dumps(VALID_PLAN))
    planner(make_client(), tiny).plan(ctx)
    messages = server.requests[0]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    text = user_prompt(server.requests[0])
    assert "make a wood pickaxe" in text
    assert ctx.obs.text() in text  # the observation rendering, grid included
    assert "chop tree (confidence 0.90)" in text and "1) walk to the nearest tree" in text
    assert "collect wood until wood>=1 before placing a table" in text and "missing_requirement" in text
    assert "place table: failed (missing_requirement)" in text  # history
    assert "collect, craft, place, eat, drink, sleep, fight, explore" in text
    assert "inventory, vital, achievement, nearby" in text and "make_wood_pickaxe" in text
    assert '"subgoals"' in text and '"maxItems":12' in text  # the JSON schema, with the plan limit
    assert "$" not in text.replace("$ref", "").replace("$defs", "")  # every placeholder filled


def test_valid_reply_parses_into_plan(server, make_client, ctx, tiny):
    server.push(json.dumps(VALID_PLAN | {"task": "echoed by the model"}))
    client = make_client()
    plan = planner(client, tiny).plan(ctx)
    assert isinstance(plan, Plan) and plan.task == ctx.task
    assert [s.name for s in plan.subgoals] == ["collect wood", "place table", "make wood pickaxe"]
    assert plan.subgoals[1].check.type == "nearby" and plan.subgoals[2].budget == 300
    assert tiny.calls == [] and [r.outcome for r in client.log.records] == ["ok"]


def test_fenced_json_with_prose_parses(server, make_client, ctx, tiny):
    server.push("Sure! Here is the plan:\n```json\n" + json.dumps(VALID_PLAN, indent=2) + "\n```\nGood luck {:}")
    plan = planner(make_client(), tiny).plan(ctx)
    assert len(plan.subgoals) == 3 and tiny.calls == []


def test_malformed_reply_is_retried_with_the_validation_error(server, make_client, ctx, tiny):
    bad = json.loads(json.dumps(VALID_PLAN))
    bad["subgoals"][0]["kind"] = "mine"
    server.push(json.dumps(bad), json.dumps(VALID_PLAN))
    client = make_client()
    plan = planner(client, tiny).plan(ctx)
    assert plan.subgoals[0].kind == "collect" and tiny.calls == []
    second = server.requests[1]["body"]["messages"]
    assert second[:2] == server.requests[0]["body"]["messages"]  # same conversation, continued
    assert second[2] == {"role": "assistant", "content": json.dumps(bad)}
    assert "subgoals.0.kind" in second[3]["content"] and "'collect'" in second[3]["content"]
    assert [r.outcome for r in client.log.records] == ["invalid", "ok"]


def test_persistent_garbage_falls_back_and_logs_it(server, make_client, ctx, tiny, caplog):
    server.push("I think you should chop trees.", "{not json", '{"subgoals": []}')
    client = make_client()
    with caplog.at_level(logging.WARNING):
        plan = planner(client, tiny).plan(ctx)
    assert plan.rationale == "tiny" and tiny.calls == ["plan"]
    assert len(server.requests) == 3  # parse_retries=2: one ask, two re-asks
    assert [r.outcome for r in client.log.records] == ["refusal", "refusal", "invalid", "fallback"]
    assert "falling back to the tiny planner" in caplog.text
    assert client.log.records[-1].purpose == "plan" and client.log.totals()["calls"] == 3


def test_refusal_is_treated_like_a_malformed_reply(server, make_client, ctx, tiny):
    server.push(Scripted(refusal="I can't help with that."), json.dumps(VALID_PLAN))
    client = make_client()
    plan = planner(client, tiny).plan(ctx)
    assert len(plan.subgoals) == 3
    assert "refused" in server.requests[1]["body"]["messages"][-1]["content"]
    assert [r.outcome for r in client.log.records] == ["refusal", "ok"]


def test_repair_keeps_done_subgoals_and_asks_for_the_rest(server, make_client, ctx, tiny):
    old = Plan(task=ctx.task, subgoals=[subgoal("collect wood", "collect", "wood", "wood", 3),
                                        subgoal("place table", "place", "table", "table", 1, "nearby"),
                                        subgoal("make wood pickaxe", "craft", "wood_pickaxe", "wood_pickaxe")])
    server.push(json.dumps({"subgoals": VALID_PLAN["subgoals"][1:], "rationale": "retry the table"}))
    plan = planner(make_client(), tiny).repair(ctx, old, 1, "place table failed: missing_requirement")
    assert plan.subgoals[0] == old.subgoals[0] and len(plan.subgoals) == 3
    assert plan.rationale == "retry the table"
    text = user_prompt(server.requests[0])
    assert "place table failed: missing_requirement" in text
    done, todo = text.split("Done, and kept as they are:")[1].split("Not done, to be replaced:")
    assert "1. collect wood" in done and "place table" not in done
    assert "2. place table" in todo and "3. make wood pickaxe" in todo


def test_repair_falls_back_to_the_fallback_repair(server, make_client, ctx, tiny):
    server.push(*["no"] * 3)
    old = tiny.plan(ctx)
    plan = planner(make_client(), tiny).repair(ctx, old, 1, "stagnation")
    assert tiny.calls[-2:] == ["repair", "plan"] and plan.subgoals[0] == old.subgoals[0]


def test_timeout_retries_then_falls_back(server, make_client, ctx, tiny, sleeps, caplog):
    server.push(*[Scripted(content=json.dumps(VALID_PLAN), delay=1.0)] * 2)
    client = make_client(planner={"timeout_s": 0.25, "max_retries": 1})
    plan = planner(client, tiny).plan(ctx)
    assert tiny.calls == ["plan"] and plan.rationale == "tiny" and sleeps == [0.5]
    error, fallback = client.log.records
    assert error.outcome == "error" and "timed out after 2 tries" in error.error
    assert fallback.outcome == "fallback" and "timed out" in caplog.text


def test_rejected_key_raises_instead_of_falling_back(server, make_client, ctx, tiny):
    server.push(Scripted(status=401, content="invalid key"))
    with pytest.raises(LLMError, match="rejected the API key"):
        planner(make_client(), tiny).plan(ctx)
    assert tiny.calls == []


def test_each_role_uses_its_own_model(server, make_client, ctx, tiny):
    client = make_client(critic={"model": "critic-model"}, skill_writer={"model": "writer-model",
                                                                          "temperature": 0.0})
    server.push(json.dumps(VALID_PLAN),
                json.dumps({"failure_cause": "missing_requirement", "explanation": "no wood",
                            "repair": "collect wood first"}),
                json.dumps({"name": "place table", "preconditions": ["wood>=1", "!near:water"],
                            "steps": ["stand on grass", "place_table"], "verification": "near:table"}))
    sg = subgoal("place table", "place", "table", "table", 1, "nearby")
    planner(client, tiny).plan(ctx)
    critique = LLMCritic(client).critique(ctx, sg, "failed after 3 steps: inventory wood 0")
    draft = LLMSkillWriter(client).write_skill(ctx, sg, "actions: place_table; table appeared")
    assert server.models() == ["plan-model", "critic-model", "writer-model"]
    assert server.requests[2]["body"]["temperature"] == 0.0 and server.requests[1]["body"]["temperature"] == 0.2
    assert isinstance(critique, Critique) and critique.failure_cause == "missing_requirement"
    assert isinstance(draft, SkillDraft) and draft.preconditions == ["wood>=1", "!near:water"]
    assert [r.role for r in client.log.records] == ["planner", "critic", "skill_writer"]
    critic_prompt = user_prompt(server.requests[1])
    assert "place table (until table within 1 cells" in critic_prompt and "inventory wood 0" in critic_prompt
    assert "missing_requirement, target_not_found" in critic_prompt


def test_critic_with_unknown_cause_is_reasked_then_gives_none(server, make_client, ctx, caplog):
    server.push(*[json.dumps({"failure_cause": "bad luck", "explanation": "x", "repair": "y"})] * 3)
    client = make_client()
    sg = subgoal("collect wood", "collect", "wood", "wood")
    assert LLMCritic(client).critique(ctx, sg, "timeout") is None
    assert "failure_cause" in server.requests[1]["body"]["messages"][-1]["content"]
    assert client.log.records[-1].outcome == "fallback" and client.log.records[-1].role == "critic"
    assert "falling back to the diagnosis" in caplog.text


def test_skill_writer_reasks_when_preconditions_are_not_facts(server, make_client, ctx):
    server.push(json.dumps({"name": "x", "preconditions": ["have some wood please"], "steps": ["do"]}),
                json.dumps({"name": "x", "preconditions": ["wood>=1"], "steps": ["do"]}))
    draft = LLMSkillWriter(make_client()).write_skill(ctx, subgoal("collect wood", "collect", "wood", "wood"), "ok")
    assert draft is not None and draft.preconditions == ["wood>=1"]
    assert "is not a fact" in server.requests[1]["body"]["messages"][-1]["content"]


def test_prompts_dir_overrides_the_packaged_prompts(server, make_client, ctx, tiny, tmp_path):
    (tmp_path / "planner.md").write_text("[system]\nBe brief.\n[user]\nTask: $task\n$request\n$schema\n"
                                         "[plan]\nPlan it.\n[repair]\n$reason\n")
    server.push(json.dumps(VALID_PLAN))
    planner(make_client(prompts_dir=str(tmp_path)), tiny).plan(ctx)
    assert user_prompt(server.requests[0]).startswith("Task: make a wood pickaxe\nPlan it.")

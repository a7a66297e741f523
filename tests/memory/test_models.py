"""Records: validation names the field, derived ids and signatures are canonical."""

from __future__ import annotations

import pytest

from memory.models import (SCHEMA_VERSION, Diagnosis, ExperienceTuple, Guardrail, RecordError, Skill,
                           Summary, Trigger, validate)
from memory.synthetic import skill_for


def _exp(**over):
    data = {"episode_id": "ep1", "task": "collect_diamond",
            "subgoal": {"name": "collect wood", "kind": "collect", "target": "wood"},
            "diagnosis": {"outcome": "success"}}
    data.update(over)
    return data


@pytest.mark.parametrize("over, field", [
    ({"task": ""}, "task"),
    ({"subgoal": {"name": "x", "kind": "Not A Kind"}}, "subgoal.kind"),
    ({"diagnosis": {"outcome": "won"}}, "diagnosis.outcome"),
    ({"diagnosis": {"outcome": "failure"}}, "failure_cause"),
    ({"pre_state": {"facts": ["wood>>1"]}}, "pre_state.facts"),
    ({"pre_state": {"position": [1.0]}}, "pre_state.position"),
    ({"surprise": 1}, "surprise"),
    ({"schema_version": SCHEMA_VERSION + 1}, "schema_version"),
])
def test_invalid_experience_names_the_field(over, field):
    with pytest.raises(RecordError) as err:
        validate("experience", _exp(**over))
    assert field in str(err.value)
    assert str(err.value).startswith("experience: ")


def test_invalid_knowledge_names_the_field():
    with pytest.raises(RecordError, match="skill: steps"):
        validate("skill", {"name": "s", "trigger": {"subgoal_kind": "craft"}, "steps": []})
    with pytest.raises(RecordError, match="confidence"):
        validate("skill", {"name": "s", "trigger": {"subgoal_kind": "craft"}, "steps": ["a"], "confidence": 1.5})
    with pytest.raises(RecordError, match="trigger.task"):
        validate("guardrail", {"trigger": {"subgoal_kind": "craft"}, "failure_cause": "died", "repair": "r",
                               "scope": "task"})


def test_skill_id_and_signature_do_not_depend_on_fact_order():
    a = Skill(name="s", trigger=Trigger(subgoal_kind="craft", subgoal_target="wood_pickaxe"),
              preconditions=["wood>=1", "near:table"], steps=["do"])
    b = Skill(name="other name", trigger=Trigger(subgoal_kind="craft", subgoal_target="wood_pickaxe"),
              preconditions=["near:table", "wood >= 1", "wood>=1"], steps=["do"])
    c = Skill(name="s", trigger=Trigger(subgoal_kind="craft", subgoal_target="wood_pickaxe"),
              preconditions=["wood>=2", "near:table"], steps=["do"])
    assert a.id == b.id and a.condition_signature == b.condition_signature
    assert a.id != c.id and a.condition_signature != c.condition_signature
    assert a.id.startswith("sk-") and b.preconditions == ["near:table", "wood>=1"]


def test_guardrail_identity_includes_cause_and_scope():
    base = dict(trigger=Trigger(subgoal_kind="craft", task="t"), risk_pattern=["!near:table"], repair="go")
    ids = {Guardrail(failure_cause=c, scope=s, **base).id
           for c in ("missing_requirement", "died") for s in ("subgoal", "task")}
    assert len(ids) == 4


def test_diagnosis_outcome_and_cause_agree():
    with pytest.raises(ValueError, match="a success has no failure cause"):
        Diagnosis(outcome="success", failure_cause="died")
    assert Diagnosis(outcome="failure", failure_cause="timeout").failure_cause == "timeout"


def test_summary_add_is_a_sum():
    a = Summary(scope="task", key="t", count=3, successes=2, failures=1, causes={"died": 1}, actions=9,
                first_at=5.0, last_at=7.0)
    b = Summary(scope="task", key="t", count=2, successes=0, failures=2, causes={"died": 1, "timeout": 1},
                actions=4, first_at=1.0, last_at=6.0)
    s = a.add(b)
    assert (s.count, s.successes, s.failures, s.actions) == (5, 2, 3, 13)
    assert s.causes == {"died": 2, "timeout": 1} and (s.first_at, s.last_at) == (1.0, 7.0)
    assert s.id == "su-task-t" and "40% success" in s.text and "died (2)" in s.text


def test_round_trip_through_json_is_exact(gen):
    exp = gen.experience()
    again = ExperienceTuple.model_validate_json(exp.model_dump_json())
    assert again == exp
    skill = skill_for("craft wood_pickaxe", ["ex-1"], support=3)
    assert Skill.model_validate_json(skill.model_dump_json()) == skill

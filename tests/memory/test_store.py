"""The store API on an embedded store: tiers, merging, retrieval, folding, evidence."""

from __future__ import annotations

import pytest

from memory import ExperienceStore, RetrievalContext, SubgoalRef
from memory.errors import StoreLockedError
from memory.models import Guardrail, RecordError, Skill, Trigger
from memory.synthetic import TASKS, guardrail_for, knowledge, skill_for


def _counts(store):
    return {s.key: s.count for s in store.list_summaries("task")}


def test_add_counts_summaries_and_skips_known_ids(store, gen):
    exps = gen.experiences(300)
    assert store.add_experiences(exps[:200]) == 200
    assert store.add_experiences(exps[100:] + exps[:5]) == 100  # duplicates skipped
    assert store.stats().experiences == 300
    expected = {t: sum(e.task == t for e in exps) for t in TASKS}
    assert _counts(store) == {t: n for t, n in expected.items() if n}
    kinds = {s.key: s for s in store.list_summaries("kind")}
    collect = [e for e in exps if e.subgoal.kind == "collect"]
    assert kinds["collect"].count == len(collect)
    assert kinds["collect"].successes == sum(e.success for e in collect)
    assert sum(s.count for s in store.list_summaries("region")) == 300


def test_get_round_trips_every_tier(store, gen):
    exps = gen.experiences(20)
    store.add_experiences([e.model_dump() for e in exps])  # plain dicts are fine
    got = store.get(exps[3].id)
    assert got.id == exps[3].id and got.actions == exps[3].actions
    assert got.condition_signature and got.spatial_cell  # indices filled by the store
    skill = store.upsert_skill(skill_for("collect wood", [exps[0].id])).record
    assert store.get(skill.id) == skill
    assert store.get("su-task-" + exps[0].task).count >= 1
    assert store.get("ex-nope") is None


def test_invalid_record_in_a_batch_is_named(store, gen):
    good = gen.experience().model_dump()
    bad = dict(good, id="ex-bad", diagnosis={"outcome": "failure"})
    with pytest.raises(RecordError, match=r"experiences\[1\].*failure_cause"):
        store.add_experiences([good, bad])
    assert store.stats().experiences == 0


def test_same_skill_again_merges(store, gen):
    exps = gen.experiences(10)
    store.add_experiences(exps)
    first = store.upsert_skill(skill_for("collect wood", [exps[0].id, exps[1].id], support=2, confidence=0.9))
    again = store.upsert_skill(skill_for("collect wood", [exps[1].id, exps[2].id], support=1, confidence=0.6))
    assert (first.status, again.status) == ("added", "merged") and again.id == first.id
    merged = store.get(first.id)
    assert merged.support == 3 and merged.version == 2
    assert merged.confidence == pytest.approx((0.9 * 2 + 0.6 * 1) / 3)
    assert merged.source_experiences == [exps[0].id, exps[1].id, exps[2].id]
    assert store.stats().skills == 1


def test_knowledge_citing_unknown_experiences_is_rejected(store):
    result = store.upsert_guardrail(guardrail_for("place table", "wood>=1", ["ex-ghost"]))
    assert result.status == "rejected" and "ex-ghost" in result.reason
    assert store.stats().guardrails == 0


def test_contradicting_well_supported_knowledge_is_rejected(store):
    rail = store.upsert_guardrail(guardrail_for("craft wood_pickaxe", "near:table", support=5, confidence=0.9))
    assert rail.status == "added"
    sloppy = Skill(name="pickaxe anywhere", trigger=skill_for("craft wood_pickaxe").trigger,
                   preconditions=["wood>=1"], steps=["make_wood_pickaxe"])
    result = store.upsert_skill(sloppy)
    assert result.status == "rejected"
    assert rail.id in result.reason and "!near:table" in result.reason and "wood>=1" in result.reason
    # the careful skill does not contradict it (near:table rules the risk out)
    assert store.upsert_skill(skill_for("craft wood_pickaxe")).status == "added"
    # a weakly supported guardrail blocks nothing
    store.upsert_guardrail(guardrail_for("place table", "wood>=1", support=1, confidence=0.9))
    assert store.upsert_skill(Skill(name="t", trigger=skill_for("place table").trigger, steps=["place"])).accepted


def test_a_guardrail_contradicting_a_strong_skill_is_rejected(store):
    store.upsert_skill(skill_for("craft wood_pickaxe", support=6, confidence=0.95))
    # claims crafting fails whenever wood>=1: the skill succeeds in such states
    wrong = guardrail_for("craft wood_pickaxe", "wood<1")
    assert store.upsert_guardrail(wrong).status == "rejected"
    right = guardrail_for("craft wood_pickaxe", "near:table")  # risk !near:table: no overlap
    assert store.upsert_guardrail(right).status == "added"


def _batch(exp_ids):
    """Records whose fates depend on each other: a merge of two in the batch, a conflict
    with a record earlier in the same batch, a citation the store lacks, a plain add."""
    return [
        skill_for("craft wood_pickaxe", [exp_ids[0]], support=6, confidence=0.95),
        guardrail_for("craft wood_pickaxe", "wood<1", [exp_ids[1]]),  # contradicts the skill above
        skill_for("collect wood", [exp_ids[2]], support=2, confidence=0.9),
        skill_for("collect wood", [exp_ids[3]], support=1, confidence=0.6),  # merges into the one above
        guardrail_for("place table", "wood>=1", ["ex-ghost"]),  # cites nothing stored
        guardrail_for("craft wood_pickaxe", "near:table", [exp_ids[4]]),  # no overlap: added
    ]


def test_batch_upsert_matches_one_by_one(tmp_path, gen):
    exps = gen.experiences(10)
    outcomes = []
    for batched in (False, True):
        # the batch reads and writes in chunks of 2 here, as a large import would
        with ExperienceStore.open(tmp_path / f"m{batched}", embedder="hashing",
                                  write_batch_size=2 if batched else 5000) as store:
            store.add_experiences(exps)
            records = _batch([e.id for e in exps])
            results = store.upsert_knowledge(records) if batched else [
                (store.upsert_skill if isinstance(r, Skill) else store.upsert_guardrail)(r) for r in records]
            stored = sorted((k.id, k.support, k.version, tuple(k.source_experiences))
                            for k in store.list_skills() + store.list_guardrails())
            outcomes.append(([(r.status, r.id) for r in results], stored))
    assert outcomes[0] == outcomes[1]
    statuses = [s for s, _ in outcomes[1][0]]
    assert statuses == ["added", "rejected", "added", "merged", "rejected", "added"]


def _ctx(**over):
    data = dict(task="collect_diamond", facts=["wood==2", "near:table"],
                subgoal=SubgoalRef(name="craft wood_pickaxe", kind="craft", target="wood_pickaxe"))
    data.update(over)
    return RetrievalContext(**data)


@pytest.fixture
def known(store, gen):
    exps = gen.experiences(400)
    store.add_experiences(exps)
    skills, rails = knowledge(exps)
    for s in skills:
        assert store.upsert_skill(s).accepted
    for r in rails:
        assert store.upsert_guardrail(r).accepted
    return store


def test_retrieve_ranks_the_applicable_skill_first(known):
    out = known.retrieve(_ctx())
    assert out.skills and out.skills[0].record.name == "craft_wood_pickaxe"
    assert all(s.record.trigger.subgoal_kind == "craft" for s in out.skills)
    assert all(s.record.trigger.subgoal_target in (None, "wood_pickaxe") for s in out.skills)
    assert {g.record.trigger.subgoal_target for g in out.guardrails} == {"wood_pickaxe"}
    assert out.render().splitlines()[0].startswith("skill craft_wood_pickaxe")


def test_active_guardrails_and_recent_causes_rank_higher(known):
    # without a table nearby, the !near:table guardrail is live; with one, it is ruled out
    away = known.retrieve(_ctx(facts=["wood==2", "!near:table"], recent_causes=["missing_requirement"]))
    near = known.retrieve(_ctx(facts=["wood==2", "near:table"]))
    top_away = away.guardrails[0]
    assert top_away.record.risk_pattern == ["!near:table"] and top_away.parts["unmet"] == 0.0
    assert top_away.parts["cause"] == 1.0
    score_near = {g.record.id: g.score for g in near.guardrails}[top_away.record.id]
    assert top_away.score > score_near


def test_retrieve_respects_counts_and_token_budget(known):
    out = known.retrieve(_ctx(k_skills=1, k_guardrails=1))
    assert len(out.skills) <= 1 and len(out.guardrails) <= 1
    tiny = known.retrieve(_ctx(max_tokens=40))
    assert tiny.tokens <= 40
    assert len(tiny.skills) + len(tiny.guardrails) < len(known.retrieve(_ctx()).guardrails) + 1


def test_place_bound_guardrail_only_where_it_belongs(known):
    lava = Guardrail(trigger=Trigger(subgoal_kind="explore", cells=["8:5,5"]), failure_cause="took_damage",
                     repair="avoid the lava here", confidence=0.9)
    added = known.upsert_guardrail(lava)
    assert added.status == "added"
    here = known.retrieve(_ctx(position=[42, 44], subgoal=SubgoalRef(name="collect stone", kind="collect",
                                                                     target="stone")))
    there = known.retrieve(_ctx(position=[2, 2]))
    assert added.id in {g.record.id for g in here.guardrails}
    assert added.id not in {g.record.id for g in there.guardrails}
    assert {g.record.id: g.parts["cell"] for g in here.guardrails}[added.id] == 1.0


def test_evidence_chain_both_ways(known):
    skill = known.list_skills(subgoal_kind="craft", limit=1)[0]
    ev = known.evidence(skill.id)
    assert [e.id for e in ev.experiences] == skill.source_experiences and not ev.missing
    assert all(e.subgoal.name.replace(" ", "_") == skill.name and e.success for e in ev.experiences)
    back = known.evidence(ev.experiences[0].id)
    assert skill.id in {k.id for k in back.cited_by}
    assert known.evidence("sk-missing") is None


def test_list_filters(known):
    rails = known.list_guardrails(cause="missing_requirement", min_confidence=0.8)
    assert rails and all(r.failure_cause == "missing_requirement" and r.confidence >= 0.8 for r in rails)
    assert known.list_guardrails(cause="died") == []
    assert known.list_skills(min_confidence=0.95) == []
    wood = known.list_experiences(tag="target:wood", limit=500)
    assert wood and all(e.subgoal.target == "wood" for e in wood)
    failed = known.list_experiences(cause="missing_requirement", task="survive", limit=5)
    assert 0 < len(failed) <= 5 and all(e.task == "survive" and not e.success for e in failed)
    skills = known.list_skills()
    assert [s.confidence for s in skills] == sorted((s.confidence for s in skills), reverse=True)


def test_search_finds_by_meaning(known):
    hits = known.search("craft wood_pickaxe near table", limit=5)
    assert hits and "wood_pickaxe" in str(hits[0].record.model_dump())
    assert hits == sorted(hits, key=lambda h: -h.similarity)


def test_fold_keeps_cited_tuples_examples_and_summaries(store_path, gen):
    base = gen.experiences(3)  # three situations, a hundred times each
    exps = [base[i % 3].model_copy(update={"id": f"ex-f{i:04d}", "ended_at": 1e9 + i}) for i in range(300)]
    with ExperienceStore.open(store_path, embedder="hashing", max_experiences=200, fold_fraction=0.5) as s:
        s.add_experiences(exps[:150])
        cited = [exps[10].id, exps[11].id]
        assert s.upsert_skill(skill_for(exps[10].subgoal.name, cited)).accepted
        s.add_experiences(exps[150:])  # 300 > 200: fold down to 100
        st = s.stats()
        assert st.experiences == 100 and st.recorded == 300 and st.folded == 200 and st.situations == 3
        assert s.get(exps[10].id) and s.get(exps[11].id)  # evidence survives
        assert all(s.get(e.id) for e in exps[:3])  # each situation's example survives
        assert s.get(exps[3].id) is None and s.get(exps[-1].id)  # the oldest others went
        assert sum(x.count for x in s.list_summaries("task")) == 300
        similar = s.retrieve(RetrievalContext(task=exps[0].task, subgoal=exps[0].subgoal, k_experiences=3,
                                              facts=exps[0].pre_state.facts))
        assert similar.experiences[0].record.id == exps[0].id  # the example of the nearest situation
        assert s.check().ok


def test_store_persists_across_opens(store_path, gen):
    exps = gen.experiences(50)
    with ExperienceStore.open(store_path, embedder="hashing") as s:
        s.add_experiences(exps[:30])
    with ExperienceStore.open(store_path, embedder="auto") as s:  # auto: the store's own embedder
        assert s.embedder.name == "hashing"
        s.add_experiences(exps[30:])
        assert s.stats().experiences == 50 and sum(_counts(s).values()) == 50


def test_second_open_in_one_process_is_refused(store, store_path):
    with pytest.raises(StoreLockedError, match="open in another process"):
        ExperienceStore.open(store_path, embedder="hashing")
    store.close()
    ExperienceStore.open(store_path, embedder="hashing").close()  # free again


def test_context_facts_are_checked():
    with pytest.raises(ValueError, match="not a fact"):
        RetrievalContext(task="t", facts=["wood >> 2"])
    assert RetrievalContext(task="t", facts=["wood = 2"]).facts == ["wood==2"]


def test_retrieve_on_an_empty_store(store):
    out = store.retrieve(_ctx(k_experiences=3, summaries=True))
    assert out.skills == [] and out.guardrails == [] and out.experiences == [] and out.summaries == []

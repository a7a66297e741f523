"""MiniLM (offline, from its pip package): retrieval by meaning, not by shared words."""

from __future__ import annotations

import pytest

from memory import ExperienceStore, RetrievalContext
from memory.models import Skill, Trigger
from memory.synthetic import TREE

DESCRIPTIONS = {
    "collect wood": "chop a tree to get logs of wood",
    "collect drink": "drink from a lake when thirsty",
    "eat cow": "hunt a cow for food when hungry",
    "sleep": "go to bed and rest when tired at night",
    "craft wood_pickaxe": "build a wooden pickaxe at the crafting table",
    "collect diamond": "mine a diamond with an iron pickaxe",
}


@pytest.fixture(scope="module")
def minilm_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("minilm") / "memory"
    with ExperienceStore.open(path, embedder="minilm") as s:
        for name, text in DESCRIPTIONS.items():
            kind, target, needs = TREE[name]
            s.upsert_skill(Skill(name=name.replace(" ", "_"), trigger=Trigger(subgoal_kind=kind,
                                 subgoal_target=target, text=text), preconditions=needs, steps=[text]))
        yield s


# Paraphrases that share (almost) no word with the skill texts: the hashing embedder ranks
# none of them right; MiniLM ranks each first with a clear margin.
@pytest.mark.parametrize("query, expected", [
    ("I am starving, find some beef", "eat_cow"),
    ("cut down some trees for lumber", "collect_wood"),
    ("my throat is dry", "collect_drink"),
    ("find shiny gems deep underground", "collect_diamond"),
    ("I am exhausted and sleepy", "sleep"),
])
def test_minilm_retrieves_by_meaning(minilm_store, query, expected):
    out = minilm_store.retrieve(RetrievalContext(task="survive", text=query, k_skills=1))
    assert [s.record.name for s in out.skills] == [expected]
    assert minilm_store.search(query, kinds=("skill",), limit=1)[0].record.name == expected
    assert minilm_store.embedder.identity.startswith("minilm:all-MiniLM-L6-v2")

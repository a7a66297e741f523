"""Facts, condition signatures, spatial cells, tags."""

from __future__ import annotations

import pytest

from memory import facts, indices
from memory.synthetic import Generator


def test_canonical_forms():
    assert facts.canonical(" wood >= 1.0 ") == "wood>=1"
    assert facts.canonical("stone=2") == "stone==2"
    assert facts.canonical("!near:table") == "!near:table"
    with pytest.raises(facts.FactError):
        facts.parse("!wood>=1")
    with pytest.raises(facts.FactError):
        facts.parse("wood >> 1")


@pytest.mark.parametrize("a, b, ok", [
    (["wood>=1"], ["wood<1"], False),
    (["wood>1"], ["wood<2"], False),  # integers: wood>1 is wood>=2
    (["wood>=1"], ["wood<=1"], True),
    (["near:table"], ["!near:table"], False),
    (["near:table"], ["wood<1"], True),
    (["wood!=0"], ["wood==0"], False),
    (["wood!=0"], ["wood<=1", "wood>=0"], True),
])
def test_compatible(a, b, ok):
    assert facts.compatible(a, b) is ok
    assert facts.compatible(b, a) is ok


def test_met_counts_only_what_the_state_guarantees():
    state = facts.from_state({"wood": 3}, nearby=["table"])
    assert state == ["wood==3", "near:table"]
    assert facts.met(["wood>=1", "near:table"], state) == (2, 2)
    assert facts.met(["wood>=4", "near:table"], state) == (1, 2)
    assert facts.met(["stone>=1"], state) == (0, 1)  # unknown is not met


def test_signature_is_order_independent_and_discriminating():
    s = facts.signature
    assert s(["wood>=1", "near:table"]) == s(["near:table", "wood >= 1"])
    assert s(["wood>=1"]) != s(["wood>=2"]) != s([])
    assert s([]) == "any"


def test_spatial_cells_at_several_resolutions():
    assert indices.spatial_cells([9.0, -1.0], [8, 32]) == ["8:1,-1", "32:0,-1"]
    assert indices.spatial_cells([9, 70, 3], [8]) == ["8:1,8,0"]
    assert indices.spatial_cells(None, [8]) == []
    assert indices.cell_resolution("32:0,-1") == 32


def test_index_experience_fills_signature_cell_and_tags():
    exp = Generator(seed=1).experience()
    exp = exp.model_copy(update={"tags": ["Custom"]})
    done = indices.index_experience(exp, [8, 32])
    assert done.condition_signature == facts.signature(exp.pre_state.facts)
    assert done.spatial_cell == indices.spatial_cells(exp.pre_state.position, [8])[0]
    assert "custom" in done.tags and f"kind:{exp.subgoal.kind}" in done.tags
    assert f"outcome:{exp.diagnosis.outcome}" in done.tags
    if exp.diagnosis.failure_cause:
        assert f"cause:{exp.diagnosis.failure_cause}" in done.tags
    given = exp.model_copy(update={"condition_signature": "mine", "spatial_cell": "8:0,0"})
    kept = indices.index_experience(given, [8, 32])
    assert (kept.condition_signature, kept.spatial_cell) == ("mine", "8:0,0")

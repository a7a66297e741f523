"""The tech tree: the full prior is Crafter's rules; priors differ where documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agents.techtree import STATIONS, PlanError, TechTree, load_rules


@pytest.fixture(scope="module")
def crafter_rules() -> dict:
    import crafter

    return yaml.safe_load((Path(crafter.__file__).parent / "data.yaml").read_text())


def test_full_tree_is_crafters_own_rules(crafter_rules):
    tree = TechTree.load("full")
    for item, spec in crafter_rules["collect"].items():
        got = next(k for k in tree.rules["collect"] if tree.rules["collect"][k]["from"] == item)
        assert tree.recipe(got).tools == spec["require"], item
    for item, spec in crafter_rules["make"].items():
        r = tree.recipe(item)
        assert dict(r.uses) == spec["uses"] and set(r.stations) == set(spec["nearby"]), item
    for thing, spec in crafter_rules["place"].items():
        r = tree.recipe(thing, "place")
        assert dict(r.uses) == spec["uses"] and set(r.where) == set(spec["where"]), thing
    assert set(tree.achievements) == set(crafter_rules["achievements"])


def test_closure_puts_prerequisites_first():
    order = TechTree.load("full").closure("diamond")
    for a, b in [("wood_pickaxe", "stone_pickaxe"), ("stone_pickaxe", "iron_pickaxe"),
                 ("table", "wood_pickaxe"), ("furnace", "iron_pickaxe"), ("iron_pickaxe", "diamond"),
                 ("coal", "iron_pickaxe")]:
        assert order.index(a) < order.index(b), (a, b, order)
    assert order[-1] == "diamond"


def test_partial_prior_differs_where_documented():
    full, partial = TechTree.load("full"), TechTree.load("partial")
    assert full.requirements("iron") == {"stone_pickaxe": 1}
    assert partial.requirements("iron") == {"wood_pickaxe": 1}  # 1. thinks a wood pickaxe does
    assert partial.requirements("diamond") == {"stone_pickaxe": 1}  # 2.
    assert "furnace" not in partial.stations_for("iron_pickaxe")  # 3.
    assert "coal" not in partial.requirements("iron_sword")  # 4.
    assert partial.requirements("table", "place") == {"wood": 1}  # 5. (truth: 2)
    assert full.requirements("table", "place") == {"wood": 2}
    assert partial.requirements("furnace", "place") == {"stone": 1}  # 6. (truth: 4)
    assert partial.carry("wake_up") == {} and full.carry("wake_up")  # 7.
    same = [t for t in ("wood_pickaxe", "stone_pickaxe", "coal", "stone") if
            full.requirements(t) == partial.requirements(t)]
    assert same == ["wood_pickaxe", "stone_pickaxe", "coal", "stone"]


def test_none_prior_knows_names_only():
    tree = TechTree.load("none")
    for thing in ("wood_pickaxe", "iron_pickaxe", "diamond", "iron", "stone"):
        assert tree.requirements(thing) == {}
    assert tree.requirements("table", "place") == {}
    assert tree.source("wood") == "tree"  # what things are called is not a rule to learn
    assert set(tree.achievements) == set(TechTree.load("full").achievements)


def test_learned_requirement_wins_over_the_prior():
    tree = TechTree.load("partial")
    tree.learn_requirement("iron", "stone_pickaxe", 1)
    tree.learn_requirement("iron", "wood_pickaxe", 0)  # 0: it does not need that
    assert tree.requirements("iron") == {"stone_pickaxe": 1}
    tree.learn_station("iron_pickaxe", "furnace")
    tree.learn_requirement("iron_pickaxe", "coal", 1)
    assert set(tree.stations_for("iron_pickaxe")) == {"table", "furnace"}
    assert tree.requirements("iron_pickaxe")["coal"] == 1
    tree.learn_requirement("table", "wood", 2)
    assert tree.requirements("table", "place") == {"wood": 2}
    assert "stone_pickaxe" in tree.closure("iron")
    assert tree.learned["iron"] == {"stone_pickaxe": 1, "wood_pickaxe": 0}
    # a station named as a requirement of a crafted item becomes a nearby requirement
    tree.learn_requirement("iron_sword", "furnace", 1)
    assert "furnace" in tree.stations_for("iron_sword")


def test_steps_merge_collects_and_order_prerequisites():
    tree = TechTree.load("full")
    steps = tree.steps_for([("place", "table", 1), ("have", "wood_pickaxe", 1), ("have", "wood_sword", 1),
                            ("have", "stone_pickaxe", 1)], inventory={}, nearby=())
    names = [(s.kind, s.thing) for s in steps]
    assert names[0] == ("collect", "wood") and steps[0].level == 5  # 2 + 1 + 1 + 1, in one trip
    assert names.index(("place", "table")) < names.index(("make", "wood_pickaxe"))
    assert names.index(("make", "wood_pickaxe")) < names.index(("collect", "stone"))
    assert names.index(("collect", "stone")) < names.index(("make", "stone_pickaxe"))
    iron = tree.steps_for([("have", "iron_pickaxe", 1)], {"stone_pickaxe": 1, "wood_pickaxe": 1}, ["table"])
    kinds = [(s.kind, s.thing, s.station) for s in iron]
    assert ("place", "furnace", True) in kinds and ("place", "table", True) not in kinds
    assert kinds[-1] == ("make", "iron_pickaxe", False)


def test_a_scarce_item_is_collected_one_use_at_a_time():
    # iron for the pickaxe and iron for the sword: merged, the pickaxe would wait for a
    # second iron, which can take a long search
    tree = TechTree.load("full")
    assert "iron" in tree.scarce and not TechTree.load("none").scarce  # none: names only
    inv = {"wood": 3, "stone": 3, "coal": 2, "wood_pickaxe": 1, "stone_pickaxe": 1}
    steps = tree.steps_for([("have", "iron_pickaxe", 1), ("have", "iron_sword", 1)], inv, ["table", "furnace"])
    assert [(s.kind, s.thing, s.level) for s in steps] == [
        ("collect", "iron", 1), ("make", "iron_pickaxe", 1), ("collect", "iron", 1), ("make", "iron_sword", 1)]
    # wood, which is not scarce, is still fetched in one trip
    wood = tree.steps_for([("have", "wood_pickaxe", 1), ("have", "wood_sword", 1)], {}, ["table"])
    assert [(s.kind, s.thing, s.level) for s in wood][0] == ("collect", "wood", 2)


def test_cycles_and_unknown_things_raise():
    tree = TechTree(load_rules("full"))
    tree.learn_requirement("wood", "wood_pickaxe", 1)  # wood needs a pickaxe that needs wood
    with pytest.raises(PlanError):
        tree.steps_for([("have", "wood_pickaxe", 1)], {}, ())
    with pytest.raises(PlanError):
        tree.steps_for([("have", "unobtainium", 1)], {}, ())
    assert set(STATIONS) == {"table", "furnace"}

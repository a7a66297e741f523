"""Scores with intervals, and two runs compared seed by seed (``steve episodes score``)."""

from __future__ import annotations

import json

import crafter
import numpy as np
import pytest

from envs.compare import compare, compare_pairs, read_played, score_run, scores, seed_ranges
from envs.episodes import EpisodeMeta, write_index
from envs.score import crafter_score, success_rates
from tests.conftest import run_cli

NAMES = tuple(crafter.constants.achievements)


def _run(path, episodes, env="crafter"):
    """A run directory holding only its index: ``episodes`` is [(seed, achievements)]."""
    path.mkdir(parents=True)
    write_index(path, [EpisodeMeta(episode_id=f"e{i}", seed=seed, env=env, agent="test", config_hash="x",
                                   length=100 + i, achievements=sorted(unlocked))
                       for i, (seed, unlocked) in enumerate(episodes)])
    return path


def _ladder(seeds, extra=0):
    """Per seed, the first k achievements, k set by the seed (worlds of unequal difficulty);
    ``extra`` more on the seeds given as a set."""
    rng = np.random.default_rng(7)
    hard = {s: int(rng.integers(2, 18)) for s in seeds}
    return lambda s, more=(): (s, NAMES[:hard[s] + (extra if s in more else 0)])


def test_vectorised_score_is_the_crafter_score():
    rng = np.random.default_rng(0)
    for _ in range(20):
        table = rng.random((rng.integers(1, 60), len(NAMES))) < rng.random()
        rates = success_rates([[n for n, u in zip(NAMES, row) if u] for row in table], NAMES)
        assert scores(table) == pytest.approx(crafter_score(rates))
    stacked = rng.random((5, 30, len(NAMES))) < 0.4
    assert np.allclose(scores(stacked), [scores(t) for t in stacked])


def test_paired_difference_and_its_interval(tmp_path):
    seeds = range(100, 160)
    ep = _ladder(seeds, extra=1)
    better = set(range(100, 160, 2))  # A unlocks one achievement more on half the seeds
    a = read_played([_run(tmp_path / "a", [ep(s, better) for s in seeds])])
    b = read_played([_run(tmp_path / "b", [ep(s) for s in reversed(seeds)])])  # another order
    r = compare(a, b)
    want_a = crafter_score(success_rates([ep(s, better)[1] for s in seeds], NAMES))
    want_b = crafter_score(success_rates([ep(s)[1] for s in seeds], NAMES))
    assert r["seeds"] == 60 and r["seed_ranges"] == "100-159" and r["only_a"] == r["only_b"] == 0
    assert r["score_a"] == pytest.approx(want_a) and r["score_b"] == pytest.approx(want_b)
    assert r["difference"] == pytest.approx(want_a - want_b) and r["difference"] > 0
    lo, hi = r["interval"]
    assert 0 < lo < r["difference"] < hi  # never worse on any seed: every draw is >= 0
    # unpaired, the seeds' difficulty hides the gain: the two runs' own intervals overlap
    ia, ib = score_run(a)["interval"], score_run(b)["interval"]
    assert ia[0] < ib[1]
    assert hi - lo < (ia[1] - ia[0]) / 2
    for name in NAMES:
        gained = np.mean([name in ep(s, better)[1] for s in seeds]) - np.mean([name in ep(s)[1] for s in seeds])
        assert r["rates_a"][name] - r["rates_b"][name] == pytest.approx(100 * gained)


def test_only_common_seeds_are_paired_and_the_same_run_differs_by_nothing(tmp_path):
    ep = _ladder(range(0, 30))
    a = read_played([_run(tmp_path / "a", [ep(s) for s in range(0, 30)])])
    b = read_played([_run(tmp_path / "b", [ep(s) for s in range(10, 30)])])
    r = compare(a, b)
    assert r["seeds"] == 20 and r["only_a"] == 10 and r["only_b"] == 0
    assert r["difference"] == 0 and r["interval"] == [0, 0]
    assert r["rates_a"] == r["rates_b"] != score_run(a)["success_rates"]  # rates on the common seeds
    assert r["score_a"] == pytest.approx(crafter_score(success_rates([ep(s)[1] for s in range(10, 30)], NAMES)))


def test_a_run_scores_with_an_interval_over_its_episodes(tmp_path):
    ep = _ladder(range(40))
    runs = tmp_path / "teacher"  # a folder of run directories, as `steve distill teacher` writes
    for s in range(40):
        _run(runs / f"seed-{s}", [ep(s)])
    r = score_run(read_played([runs]))
    assert r["episodes"] == 40 and r["seeds"] == "0-39" and r["mean_length"] == 100
    assert r["crafter_score"] == pytest.approx(crafter_score(success_rates([ep(s)[1] for s in range(40)], NAMES)))
    assert r["interval"][0] < r["crafter_score"] < r["interval"][1]
    assert len(r["success_rates"]) == 22 and r["success_rates"][NAMES[0]] == 100


def test_bad_runs_are_one_line_errors(tmp_path):
    ep = _ladder(range(5))
    a = _run(tmp_path / "a", [ep(s) for s in range(5)])
    with pytest.raises(ValueError, match="seed 3 was played twice"):
        read_played([a, _run(tmp_path / "again", [ep(3)])])
    assert len(read_played([a, a]).seeds) == 5  # one run named twice counts once
    with pytest.raises(ValueError, match="no finished episodes"):
        read_played([_run(tmp_path / "empty", [])])
    with pytest.raises(ValueError, match="not found"):
        read_played([tmp_path / "missing"])
    with pytest.raises(ValueError, match="different worlds"):
        read_played([a, _run(tmp_path / "md", [(9, ["collect_log"])], env="minedojo")])
    with pytest.raises(ValueError, match="no seed played by both"):
        compare(read_played([a]), read_played([_run(tmp_path / "far", [(50, [])])]))


def test_another_world_scores_over_the_achievements_either_side_unlocked(tmp_path):
    a = read_played([_run(tmp_path / "a", [(1, ["collect_log"]), (2, [])], env="minedojo")])
    b = read_played([_run(tmp_path / "b", [(1, ["craft_planks"]), (2, [])], env="minedojo")])
    assert a.names == ("collect_log",)
    r = compare(a, b)
    assert list(r["rates_a"]) == ["collect_log", "craft_planks"]
    assert r["difference"] == 0 and r["score_a"] == pytest.approx(crafter_score({"x": 50.0, "y": 0.0}))
    nothing = read_played([_run(tmp_path / "c", [(3, [])], env="minedojo")])
    assert nothing.names == () and score_run(nothing)["crafter_score"] == 0


def test_where_the_gap_lies_one_achievement_at_a_time(tmp_path):
    seeds = range(10)
    # A: wood and a skeleton on every seed; B: wood, a plant eaten on every seed, a table on one
    a = _run(tmp_path / "a", [(s, ["collect_wood", "defeat_skeleton"]) for s in seeds])
    b = _run(tmp_path / "b", [(s, ["collect_wood", "eat_plant"] + (["place_table"] if s == 3 else [])) for s in seeds])
    r = compare(read_played([a]), read_played([b]))
    matched, n = r["score_a_if_matched"], len(NAMES)
    assert set(matched) == set(NAMES) and list(matched)[:2] == ["eat_plant", "place_table"]  # the largest first
    assert matched["collect_wood"] == matched["collect_coal"] == pytest.approx(r["score_a"])  # the same rate
    assert matched["eat_plant"] == pytest.approx(np.expm1(3 * np.log(101) / n))  # 0 % -> 100 %
    assert matched["place_table"] == pytest.approx(np.expm1((2 * np.log(101) + np.log(11)) / n))  # 0 % -> 10 %
    assert matched["defeat_skeleton"] == pytest.approx(np.expm1(np.log(101) / n))  # A's lead given up
    assert matched["eat_plant"] > matched["place_table"] > r["score_a"] > matched["defeat_skeleton"]
    text = run_cli("episodes", "score", str(a), "--against", str(b)).stdout
    rows = [line.split()[1] for line in text.splitlines() if line.startswith("│")]
    assert rows[:2] == ["eat_plant", "place_table"] and rows[-1] == "defeat_skeleton"  # the largest first
    assert "A's score at B's %" in text
    report = json.loads(run_cli("episodes", "score", str(a), "--against", str(b), "--json").stdout)
    assert report["paired"]["score_a_if_matched"]["eat_plant"] == pytest.approx(matched["eat_plant"])


def test_pairs_averaged_each_drawn_on_its_own_seeds(tmp_path):
    ep = _ladder(range(200), extra=1)
    better = set(range(0, 200, 2))
    on = [read_played([_run(tmp_path / f"a{i}", [ep(s, better) for s in seeds])]) for i, seeds in
          enumerate((range(0, 60), range(100, 140)))]
    off = [read_played([_run(tmp_path / f"b{i}", [ep(s) for s in seeds])]) for i, seeds in
           enumerate((range(0, 70), range(100, 140)))]
    same = read_played([_run(tmp_path / "same", [ep(s) for s in range(100, 140)])])
    r = compare_pairs([(on[0], off[0]), (on[1], off[1]), (same, off[1])])
    alone = [compare(on[0], off[0], seed=0), compare(on[1], off[1], seed=1), compare(same, off[1], seed=2)]
    for row, want in zip(r["pairs"], alone):  # each pair as `score --against` gives it, its draws seeded apart
        for key in ("seeds", "seed_ranges", "only_a", "only_b", "score_a", "score_b", "difference", "interval"):
            assert row[key] == want[key]
    assert r["pairs"][0]["only_b"] == 10 and r["pairs"][2]["difference"] == 0
    assert r["mean_difference"] == pytest.approx(np.mean([w["difference"] for w in alone]))
    assert r["above_zero"] == 2
    lo, hi = r["interval"]
    assert 0 <= lo < r["mean_difference"] < hi  # never worse on a seed: no draw's mean is below 0
    assert hi - lo < min(w["interval"][1] - w["interval"][0] for w in alone[:2])  # three pairs: a narrower mean
    with pytest.raises(ValueError, match="no seed played by both"):
        compare_pairs([(on[0], off[0]), (on[0], same)])
    with pytest.raises(ValueError, match="no pair"):
        compare_pairs([])


def test_cli_pairs(tmp_path):
    ep = _ladder(range(30), extra=2)
    a1 = _run(tmp_path / "a1", [ep(s, set(range(30))) for s in range(30)])
    b1, a2, b2 = (_run(tmp_path / name, [ep(s) for s in range(n)]) for name, n in (("b1", 30), ("a2", 10), ("b2", 10)))
    report = json.loads(run_cli("episodes", "pairs", str(a1), str(b1), str(a2), str(b2), "--json").stdout)
    assert [round(p["difference"], 9) > 0 for p in report["pairs"]] == [True, False]
    assert report["mean_difference"] == pytest.approx(report["pairs"][0]["difference"] / 2)
    text = run_cli("episodes", "pairs", str(a1), str(b1), str(a2), str(b2)).stdout
    assert "over 2 pairs: mean A - B +" in text and "above 0 in 1 of 2" in text and "left out" not in text
    text = run_cli("episodes", "pairs", str(a2), str(b1)).stdout  # b1 played 20 seeds more
    assert "pair 1: left out, played by one side only: 0 of A's seeds, 20 of B's" in text
    proc = run_cli("episodes", "pairs", str(a1), str(b1), str(a2), check=False)
    assert proc.returncode == 2 and "two by two" in proc.stderr and "Traceback" not in proc.stderr


def test_seed_ranges():
    assert seed_ranges([5, 0, 1, 2, 7, 8, None, 2]) == "0-2, 5, 7-8, 1 without a seed"
    assert seed_ranges([]) == "none"


def test_cli_scores_and_compares(tmp_path):
    ep = _ladder(range(20), extra=2)
    a = _run(tmp_path / "a", [ep(s, set(range(20))) for s in range(20)])
    b = _run(tmp_path / "b", [ep(s) for s in range(20)])
    report = json.loads(run_cli("episodes", "score", str(a), "--against", str(b), "--json").stdout)
    assert report["paired"]["difference"] == pytest.approx(report["a"]["crafter_score"] - report["b"]["crafter_score"])
    assert report["paired"]["interval"][0] > 0
    text = run_cli("episodes", "score", str(a), "--against", str(b)).stdout
    assert "paired over 20 seeds (0-19)" in text and "A - B +" in text
    proc = run_cli("episodes", "score", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2 and "run directory not found" in proc.stderr and "Traceback" not in proc.stderr
    b2 = _run(tmp_path / "b2", [ep(s) for s in range(20)])  # "A --against B B2": B2 read as one of A's
    proc = run_cli("episodes", "score", str(a), "--against", str(b), str(b2), check=False)
    assert proc.returncode == 2 and "--against takes one run: --against C --against D" in proc.stderr
    proc = run_cli("episodes", "score", str(a), str(b2), check=False)  # no --against: no such hint
    assert "was played twice" in proc.stderr and "--against takes" not in proc.stderr

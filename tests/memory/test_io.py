"""Export / import / check, and recovery of a write interrupted between its two steps."""

from __future__ import annotations

import json

import pytest

from memory import ExperienceStore
from memory.errors import ImportFileError
from memory.synthetic import knowledge


@pytest.fixture
def filled(store, gen):
    exps = gen.experiences(250)
    store.add_experiences(exps)
    skills, rails = knowledge(exps)
    for k in skills:
        store.upsert_skill(k)
    for r in rails:
        store.upsert_guardrail(r)
    store.upsert_skill(skills[0])  # a merged one: support and version change
    return store


def test_export_import_is_an_exact_round_trip(filled, tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    counts = filled.export_jsonl(first)
    assert counts["experience"] == 250 and counts["skill"] == 16 and counts["summary"] > 0
    with ExperienceStore.open(tmp_path / "copy", embedder="hashing") as copy:
        report = copy.import_jsonl(first)
        assert report.mode == "exact" and report.added["experience"] == 250
        copy.export_jsonl(second)
        assert copy.check().ok
        original, copied = filled.stats().to_dict(), copy.stats().to_dict()
        for key in ("experiences", "skills", "guardrails", "summaries", "recorded", "success_rate"):
            assert original[key] == copied[key]
    assert first.read_bytes() == second.read_bytes()


def test_malformed_lines_are_reported_and_nothing_is_imported(filled, tmp_path):
    path = tmp_path / "a.jsonl"
    filled.export_jsonl(path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:40]  # truncated JSON
    rec = json.loads(lines[5])
    rec["record"]["diagnosis"] = {"outcome": "maybe"}
    lines[5] = json.dumps(rec)
    lines[7] = json.dumps({"type": "spell", "record": {}})
    lines.append(lines[10])  # a duplicate id
    path.write_text("\n".join(lines) + "\n")
    with ExperienceStore.open(tmp_path / "copy", embedder="hashing") as copy:
        with pytest.raises(ImportFileError) as err:
            copy.import_jsonl(path)
        problems = {int(p.split(":")[0].removeprefix("line ")): p for p in err.value.problems}
        assert {4, 6, 8, len(lines)} <= set(problems)
        assert "not a record" in problems[4] and "diagnosis.outcome" in problems[6]
        assert "unknown type 'spell'" in problems[8]
        assert "duplicate" in problems[len(lines)] and "first on line 11" in problems[len(lines)]
        others = [p for n, p in problems.items() if n not in (4, 6, 8, len(lines))]
        assert all("cites unknown experience" in p for p in others)  # knowledge citing lines 4 and 6
        assert f"{len(problems)} bad line(s), nothing imported" in str(err.value)
        stats = copy.stats()
        assert stats.experiences == stats.skills == stats.summaries == 0


def test_import_rejects_dangling_evidence(filled, tmp_path):
    path = tmp_path / "a.jsonl"
    filled.export_jsonl(path)
    kept = [line for line in path.read_text().splitlines() if '"type":"experience"' not in line]
    path.write_text("\n".join(kept) + "\n")
    with ExperienceStore.open(tmp_path / "copy", embedder="hashing") as copy:
        with pytest.raises(ImportFileError, match="cites unknown experience"):
            copy.import_jsonl(path)


def test_import_into_a_non_empty_store_merges(filled, tmp_path, gen):
    path = tmp_path / "a.jsonl"
    filled.export_jsonl(path)
    with ExperienceStore.open(tmp_path / "other", embedder="hashing") as other:
        other.add_experiences(gen.experiences(10))  # not in the file
        other.add_experiences([filled.list_experiences(limit=1)[0]])  # in the file too
        report = other.import_jsonl(path)
        assert report.mode == "merge" and report.added["experience"] == 249
        st = other.stats()
        assert st.experiences == 260 and st.recorded == 260  # counted once each, summary lines unused
        assert st.skills == 16 and other.check().ok
        again = other.import_jsonl(path)  # knowledge merges: support adds up
        assert again.added["experience"] == 0 and again.merged == st.skills + st.guardrails


def test_check_finds_dangling_evidence_and_uncounted_rows(filled):
    skill = filled.list_skills(limit=1)[0]
    filled._cols["experiences"].delete(ids=[skill.source_experiences[0]])  # behind the store's back
    report = filled.check()
    assert not report.ok and any(skill.id in p and "missing experience" in p for p in report.problems)


def test_counts_lost_in_a_crash_are_recounted_on_open(store_path, gen):
    exps = gen.experiences(120)
    s = ExperienceStore.open(store_path, embedder="hashing", summary_every=100)
    s.add_experiences(exps[:110])  # 110 >= 100: counted on disk
    s.add_experiences(exps[110:])  # 10 counted in memory only
    assert s.book.pending == 10
    s.backend.close()  # the process dies: no flush
    with ExperienceStore.open(store_path, embedder="hashing") as again:
        assert again.recovered == 10
        st = again.stats()
        assert st.experiences == 120 and st.recorded == 120 and again.check().ok


def test_check_repairs_rows_a_dead_server_writer_left_uncounted(server_cfg, gen, monkeypatch):
    writer = ExperienceStore.open(server_cfg)
    writer.add_experiences(gen.experiences(30))
    monkeypatch.setattr(writer.book, "flush", lambda: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):
        writer.add_experiences(gen.experiences(20))  # rows written, their counts never
    with ExperienceStore.open(server_cfg, create=False) as other:
        report = other.check()
        assert not report.ok and f"20 experience(s) of writer {writer.writer} not counted" in report.problems[0]
        fixed = other.check(repair=True)
        assert fixed.repaired == [f"counted 20 experience(s) of {writer.writer}"]
        assert other.check().ok and other.stats().recorded == 50


def test_check_repairs_missing_situations(filled):
    exp = filled.list_experiences(limit=1)[0]
    sid = filled._cols["experiences"].get(ids=[exp.id])["metadatas"][0]["sit"]
    filled._cols["situations"].delete(ids=[sid])
    report = filled.check()
    assert not report.ok and "situation vector(s) missing" in report.problems[0]
    fixed = filled.check(repair=True)
    assert fixed.repaired and filled.check().ok

"""`steve memory ...` run through typer's CliRunner on the sub-app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memory import ExperienceStore
from memory.synthetic import Generator, knowledge
from steve.memory_cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "memory"
    exps = Generator(seed=5).experiences(300)
    with ExperienceStore.open(path, embedder="hashing") as s:
        s.add_experiences(exps)
        skills, rails = knowledge(exps)
        for k in skills:
            s.upsert_skill(k)
        for r in rails:
            s.upsert_guardrail(r)
    return path


def cli(path, *args, code=0):
    result = runner.invoke(app, ["--memory", str(path), *args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_stats(path):
    data = json.loads(cli(path, "stats", "--json"))
    assert data["experiences"] == 300 and data["skills"] == 16 and data["guardrails"] == 28
    assert data["embedder"].startswith("hashing") and data["mode"] == "embedded"
    assert "experiences" in cli(path, "stats") and "300 live" in cli(path, "stats")


def test_list_with_filters(path):
    rails = json.loads(cli(path, "list", "guardrails", "--cause", "missing_requirement", "--tag",
                           "target:wood_pickaxe", "--json"))
    assert len(rails) == 2 and all(r["trigger"]["subgoal_target"] == "wood_pickaxe" for r in rails)
    skills = json.loads(cli(path, "list", "skills", "--min-confidence", "0.5", "--limit", "3", "--json"))
    assert len(skills) == 3 and skills[0]["confidence"] >= skills[-1]["confidence"]
    exps = json.loads(cli(path, "list", "experiences", "--task", "survive", "--cause", "missing_requirement",
                          "--json", "-n", "4"))
    assert len(exps) == 4 and all(e["task"] == "survive" and e["diagnosis"]["outcome"] == "failure" for e in exps)
    sums = json.loads(cli(path, "list", "summaries", "--json"))
    assert {s["scope"] for s in sums} == {"task", "kind", "region"} and all("text" in s for s in sums)
    assert "skill(s)" in cli(path, "list", "skills")
    assert "--cause filters" in cli(path, "list", "skills", "--cause", "died", code=2)


def test_search_and_show_with_evidence(path):
    hits = json.loads(cli(path, "search", "craft wood_pickaxe near table", "--json", "-n", "3"))
    assert len(hits) == 3 and hits[0]["similarity"] >= hits[-1]["similarity"]
    skill = json.loads(cli(path, "list", "skills", "--json"))[0]
    shown = json.loads(cli(path, "show", skill["id"], "--json"))
    assert shown["kind"] == "skill" and [e["id"] for e in shown["evidence"]] == skill["source_experiences"]
    back = json.loads(cli(path, "show", skill["source_experiences"][0], "--json"))
    assert skill["id"] in back["cited_by"]
    assert "evidence" in cli(path, "show", skill["id"])
    assert "no record with id 'sk-nope'" in cli(path, "show", "sk-nope", code=1)


def test_export_import_check(path, tmp_path):
    out = tmp_path / "m.jsonl"
    assert "300 experience(s)" in cli(path, "export", str(out))
    copy = tmp_path / "copy"
    assert "imported" in cli(copy, "import", str(out))  # a new store takes the file's embedder
    again = tmp_path / "again.jsonl"
    cli(copy, "export", str(again))
    assert out.read_bytes() == again.read_bytes()
    assert json.loads(cli(copy, "check", "--json"))["ok"] is True
    lines = out.read_text().splitlines()  # a file from a MiniLM store...
    header = json.loads(lines[0])
    header["embedder"] = "minilm:all-MiniLM-L6-v2/384"
    from_minilm = tmp_path / "from_minilm.jsonl"
    from_minilm.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    other = tmp_path / "other"  # ...into an existing hashing store: it keeps its embedder, re-embeds
    ExperienceStore.open(other, embedder="hashing").close()
    assert "imported" in cli(other, "import", str(from_minilm))
    assert json.loads(cli(other, "stats", "--json"))["embedder"].startswith("hashing")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(out.read_text().replace('"outcome":"success"', '"outcome":"sort of"', 1) + "{oops\n")
    msg = cli(tmp_path / "third", "import", str(bad), code=2)
    assert "bad line(s), nothing imported" in msg and "line " in msg


def test_graph(path, tmp_path):
    dot = tmp_path / "g.dot"
    assert "nodes" in cli(path, "graph", "--out", str(dot))
    text = dot.read_text()
    assert text.startswith("digraph memory") and '"item:wood" -> "skill:' in text and "missing_requirement" in text
    png = tmp_path / "g.png"
    cli(path, "graph", "--out", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "expected a .png or .dot" in cli(path, "graph", "--out", str(tmp_path / "g.svg"), code=2)


def test_errors_are_one_line(tmp_path):
    for args, text in ((["--memory", str(tmp_path / "none"), "stats"], "no memory store at"),
                       (["stats"], "no memory store given"),
                       (["--url", "http://127.0.0.1:9", "stats"], "no Chroma server answers"),
                       (["--memory", "a", "--url", "http://x:1", "stats"], "not both")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and text in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_check_fails_with_exit_1(path, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    with ExperienceStore.open(broken, embedder="auto") as s:
        skill = s.list_skills(limit=1)[0]
        s._cols["experiences"].delete(ids=skill.source_experiences[:1])
    out = cli(broken, "check", code=1)
    assert "missing experience" in out


def test_the_real_command_line(path):
    """`steve memory ...` as a user runs it: the main CLI mounts this app."""
    import subprocess
    import sys

    from .conftest import ROOT

    proc = subprocess.run([sys.executable, "-m", "steve.cli", "memory", "--memory", str(path), "stats", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["experiences"] == 300
    proc = subprocess.run([sys.executable, "-m", "steve.cli", "memory", "--memory", str(path / "nope"), "stats"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: no memory store at")
    assert "Traceback" not in proc.stderr


def test_importing_the_cli_stays_light():
    import subprocess
    import sys

    code = ("import sys, steve.memory_cli; "
            "print(sorted(m for m in ('chromadb', 'torch', 'memory.store') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"

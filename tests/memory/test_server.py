"""Server mode: a `chroma run` on loopback shared by processes."""

from __future__ import annotations

import pytest

from memory import ExperienceStore, RetrievalContext, SubgoalRef
from memory.errors import ServerUnreachableError, StoreNotFoundError
from memory.server import free_port
from memory.synthetic import Generator, knowledge

from .conftest import spawn_python

WRITER = """
import sys
from memory import ExperienceStore
from memory.synthetic import Generator, skill_for
url, ns, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
g = Generator(seed=seed)
with ExperienceStore.open({"url": url, "namespace": ns, "embedder": "hashing"}) as s:
    for _ in range(15):
        s.add_experiences(g.experiences(100))
        s.upsert_skill(skill_for("collect wood"))
print("done", flush=True)
"""


def test_server_store_basics(server_cfg, gen):
    with ExperienceStore.open(server_cfg) as s:
        exps = gen.experiences(200)
        assert s.add_experiences(exps) == 200
        skills, rails = knowledge(exps)
        assert all(s.upsert_skill(k).accepted for k in skills)
        assert all(s.upsert_guardrail(r).accepted for r in rails)
        out = s.retrieve(RetrievalContext(task="survive", facts=["wood==1", "near:table"], subgoal=SubgoalRef(
            name="craft wood_pickaxe", kind="craft", target="wood_pickaxe")))
        assert out.skills[0].record.name == "craft_wood_pickaxe"
        assert s.backend.mode == "server" and s.stats().experiences == 200
    with ExperienceStore.open(server_cfg, create=False) as again:  # persisted in the server
        assert again.stats().recorded == 200 and again.check().ok


def test_two_processes_writing_lose_nothing(server_cfg):
    url, ns = server_cfg["url"], server_cfg["namespace"]
    procs = [spawn_python(WRITER, url, ns, str(seed), stdout=-1, stderr=-1) for seed in (101, 202)]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0 and "done" in out, err[-2000:]
    with ExperienceStore.open(server_cfg, create=False) as s:
        st = s.stats()
        assert st.experiences == 3000 and st.recorded == 3000 and st.writers == 2
        ids = [e.id for seed in (101, 202) for e in Generator(seed=seed).experiences(1500)]
        assert len(s._cols["experiences"].get(ids=ids, include=[])["ids"]) == 3000
        assert st.skills == 1
        report = s.check()
        assert report.ok, report.problems


def test_unreachable_server_and_missing_namespace(server_cfg):
    with pytest.raises(ServerUnreachableError, match="no Chroma server answers at http://127.0.0.1:"):
        ExperienceStore.open({"url": f"http://127.0.0.1:{free_port()}", "embedder": "hashing"})
    with pytest.raises(StoreNotFoundError, match=f"no memory store '{server_cfg['namespace']}'"):
        ExperienceStore.open(server_cfg, create=False)

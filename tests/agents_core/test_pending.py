"""Memory writes in the background: counts arrive a flush later, errors are not lost."""

from __future__ import annotations

import pytest

from agents.evolving.pending import PendingWrites
from memory import ExperienceStore
from memory.synthetic import Generator, skill_for


def test_a_batch_is_counted_at_the_next_flush_and_waited_for_at_the_end(tmp_path):
    exps = Generator(seed=3).experiences(2)
    with ExperienceStore.open(tmp_path / "m", embedder="hashing") as store:
        pending = PendingWrites(store, every=1)
        for exp in exps:
            pending.add_experience(exp)
            pending.add_knowledge(skill_for("collect wood", [exp.id]))
            if exp is exps[0]:
                assert pending.flush() == {}  # in flight: nothing finished yet
        assert pending.flush(wait=True) == {"skills_added": 1, "skills_merged": 1}
        assert store.stats().experiences == 2 and store.stats().skills == 1
        assert pending.close() == {}


class _Broken:
    def add_experiences(self, exps):
        raise RuntimeError("disk full")


def test_a_failed_background_write_raises_at_the_next_flush():
    pending = PendingWrites(_Broken(), every=1)
    pending.add_experience(Generator(seed=3).experience())
    pending.flush()
    with pytest.raises(RuntimeError, match="disk full"):
        pending.flush()
    pending.close()

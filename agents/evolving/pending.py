"""Memory writes of recent subgoals, sent to the store in batches, in the background.

Each write to an embedded Chroma store costs ~20-30 ms (a commit), as much as 25 env
steps; one per subgoal would make memory the agent's main cost. So experiences and
knowledge wait here, the same knowledge seen twice is merged here with the store's own
rule (:func:`memory.merging.merge`), and both go out every ``every`` subgoals and at the
end of an episode: experiences first, so that knowledge never cites evidence the store
lacks. A batch is written by one background thread while the agent plays on (Chroma's
local client serialises access, the embedder holds a lock); the next flush first waits
for the one before, and the end of an episode waits for its own. The price: a killed
process loses the writes of at most ``2 * every`` subgoals, and knowledge distilled in
an episode is retrieved a batch later (what it teaches about the rules is applied to the
planner's tree at once, see ``agents.evolving.nodes.distill``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from memory.merging import merge
from memory.models import ExperienceTuple, Guardrail, Skill


class PendingWrites:
    def __init__(self, store: Any, every: int = 25, background: bool = True):
        self.store = store
        self.every = every
        self.experiences: list[ExperienceTuple] = []
        self.knowledge: dict[str, Skill | Guardrail] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="steve-memory-writes") if background else None
        self._inflight: Future | None = None

    def __len__(self) -> int:
        return len(self.experiences)

    def add_experience(self, experience: ExperienceTuple) -> None:
        self.experiences.append(experience)

    def add_knowledge(self, record: Skill | Guardrail) -> None:
        old = self.knowledge.get(record.id)
        self.knowledge[record.id] = record if old is None else merge(old, record)

    def due(self) -> bool:
        return len(self.experiences) >= self.every

    def flush(self, wait: bool = False) -> dict[str, int]:
        """Send everything pending. Returns the counts of what the store did with the
        knowledge of the batches finished by now: the one before this, and with ``wait``
        (end of an episode) this one too. A failed write raises here, at the next flush."""
        counts = self._finish()
        batch = (self.experiences, list(self.knowledge.values()))
        self.experiences, self.knowledge = [], {}
        if self._pool is None:
            return _add(counts, self._write(*batch))
        self._inflight = self._pool.submit(self._write, *batch)
        return _add(counts, self._finish()) if wait else counts

    def close(self) -> dict[str, int]:
        """Wait for the batch in flight and stop the writer thread."""
        counts = self._finish()
        if self._pool is not None:
            self._pool.shutdown()
        return counts

    def _finish(self) -> dict[str, int]:
        done, self._inflight = self._inflight, None
        return done.result() if done is not None else {}

    def _write(self, experiences: list[ExperienceTuple], knowledge: list[Skill | Guardrail]) -> dict[str, int]:
        counts: dict[str, int] = {}
        if experiences:
            self.store.add_experiences(experiences)
        for record, result in zip(knowledge, self.store.upsert_knowledge(knowledge)):
            key = f"{'skills' if isinstance(record, Skill) else 'guardrails'}_{result.status}"
            counts[key] = counts.get(key, 0) + 1
        return counts


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}

"""Memory writes of recent subgoals, sent to the store in batches.

Each write to an embedded Chroma store costs ~20-30 ms (a commit), as much as 25 env
steps; one per subgoal would make memory the agent's main cost. So experiences and
knowledge wait here, the same knowledge seen twice is merged here with the store's own
rule (:func:`memory.merging.merge`), and both go out every ``every`` subgoals and at the
end of an episode: experiences first, so that knowledge never cites evidence the store
lacks. The price: a killed process loses the writes of at most ``every`` subgoals, and
knowledge distilled in an episode is retrieved from the next batch on.
"""

from __future__ import annotations

from typing import Any

from memory.merging import merge
from memory.models import ExperienceTuple, Guardrail, Skill


class PendingWrites:
    def __init__(self, store: Any, every: int = 25):
        self.store = store
        self.every = every
        self.experiences: list[ExperienceTuple] = []
        self.knowledge: dict[str, Skill | Guardrail] = {}

    def __len__(self) -> int:
        return len(self.experiences)

    def add_experience(self, experience: ExperienceTuple) -> None:
        self.experiences.append(experience)

    def add_knowledge(self, record: Skill | Guardrail) -> None:
        old = self.knowledge.get(record.id)
        self.knowledge[record.id] = record if old is None else merge(old, record)

    def due(self) -> bool:
        return len(self.experiences) >= self.every

    def flush(self) -> dict[str, int]:
        """Write everything pending; counts of what the store did with the knowledge."""
        counts: dict[str, int] = {}
        if self.experiences:
            self.store.add_experiences(self.experiences)
        for record in self.knowledge.values():
            kind = "skills" if isinstance(record, Skill) else "guardrails"
            upsert = self.store.upsert_skill if kind == "skills" else self.store.upsert_guardrail
            result = upsert(record)
            key = f"{kind}_{result.status}"
            counts[key] = counts.get(key, 0) + 1
        self.experiences, self.knowledge = [], {}
        return counts

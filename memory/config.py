"""The memory section of the run configuration (defaults in ``configs/memory.yaml``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RankingWeights(BaseModel):
    """Weights of the retrieval score (see :func:`memory.retrieval.score`)."""

    model_config = ConfigDict(extra="forbid")

    similarity: float = Field(0.40, ge=0, description="cosine similarity of the context text and the record")
    confidence: float = Field(0.25, ge=0, description="the record's confidence in [0, 1]")
    recency: float = Field(0.10, ge=0, description="exp(-age / half_life) of the record's last update")
    cause: float = Field(0.15, ge=0, description="1 when a guardrail's failure cause is among the recent ones")
    signature: float = Field(0.05, ge=0, description="1 when the condition signature equals the context's")
    cell: float = Field(0.05, ge=0, description="1 (fine cell) or 0.5 (coarse cell) when the place matches")
    tags: float = Field(0.05, ge=0, description="Jaccard overlap of tags")
    unmet: float = Field(0.30, ge=0, description="penalty per fraction of a skill's preconditions not met")


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k_skills: int = Field(5, ge=0, description="skills returned at most")
    k_guardrails: int = Field(5, ge=0, description="guardrails returned at most")
    k_experiences: int = Field(0, ge=0, description="similar past experiences returned at most")
    max_tokens: int | None = Field(1200, ge=1, description="budget for the rendered knowledge (chars / 4)")
    candidates: int = Field(20, ge=1, description="vector candidates fetched per collection before ranking")
    half_life_s: float = Field(86400.0, gt=0, description="recency half life in seconds")
    weights: RankingWeights = RankingWeights()


class MemoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="embedded store directory; default: RUN_DIR/memory")
    url: str | None = Field(None, description="a Chroma server (http://127.0.0.1:PORT) shared by processes")
    embedder: str = Field("minilm", description="minilm (all-MiniLM-L6-v2, offline) or hashing; "
                                                "auto: whatever the store was built with")
    namespace: str = Field("steve", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,40}$",
                           description="prefix of the Chroma collections (several stores on one server)")
    max_experiences: int | None = Field(200_000, ge=10, description="tier-1 cap; beyond it the oldest "
                                        "tuples not cited as evidence are folded into summaries")
    fold_fraction: float = Field(0.1, gt=0, le=0.9, description="share of the cap freed by one fold")
    spatial_resolutions: list[int] = Field([8, 32], min_length=1, description="cell sides of the spatial "
                                           "hash, finest first (fixed when a store is created)")
    embed_cache_size: int = Field(50_000, ge=0, description="texts whose vectors are kept (LRU)")
    embed_batch_size: int = Field(128, ge=1, description="texts per encoder batch")
    torch_threads: int | None = Field(None, ge=1, description="torch CPU threads; default: half the cores, at most 4")
    summary_every: int = Field(50, ge=1, description="embedded: experiences counted in memory before the "
                               "summaries are written (each Chroma write costs a disk sync); server: every add")
    write_batch_size: int = Field(5000, ge=1, description="records per Chroma write (each is atomic)")
    hnsw_ef_construction: int = Field(32, ge=4, description="HNSW build effort: 32 ingests ~2x faster "
                                      "than Chroma's 100 at a small recall cost")
    conflict_min_support: int = Field(3, ge=1, description="support from which knowledge counts as well "
                                      "supported and blocks what contradicts it")
    conflict_min_confidence: float = Field(0.6, ge=0, le=1, description="confidence needed for the same")
    conflict_causes: list[str] = Field(["missing_requirement"], description="failure causes that are "
                                       "claims about the world (contradict skills), not bad luck")
    max_evidence: int = Field(50, ge=1, description="evidence ids kept per skill or guardrail (the latest)")
    require_evidence: bool = Field(True, description="reject knowledge citing experiences the store lacks")
    retrieval: RetrievalConfig = RetrievalConfig()

    @field_validator("spatial_resolutions")
    @classmethod
    def _finest_first(cls, value: list[int]) -> list[int]:
        if any(r < 1 for r in value) or value != sorted(set(value)):
            raise ValueError("expected distinct positive cell sides, finest first, e.g. [8, 32]")
        return value

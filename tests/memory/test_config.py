"""The memory section of the config: configs/memory.yaml states every default."""

from __future__ import annotations

import pytest
import yaml

from memory.config import MemoryConfig
from steve.config import CONFIG_DIR, ConfigError, load


def test_yaml_states_every_default():
    data = yaml.safe_load((CONFIG_DIR / "memory.yaml").read_text())
    assert MemoryConfig.model_validate(data) == MemoryConfig()
    assert set(data) == set(MemoryConfig.model_fields)
    assert set(data["retrieval"]) == set(MemoryConfig.model_fields["retrieval"].annotation.model_fields)


def test_overrides_and_errors():
    cfg = load(overrides=["memory.embedder=hashing", "memory.retrieval.weights.cause=0.5"])
    assert cfg.memory.embedder == "hashing" and cfg.memory.retrieval.weights.cause == 0.5
    with pytest.raises(ConfigError, match="memory.spatial_resolutions"):
        load(overrides=["memory.spatial_resolutions=[32, 8]"])
    with pytest.raises(ConfigError, match="unknown key 'memory.colour'"):
        load(overrides=["memory.colour=red"])

"""The env section of the run configuration (defaults in ``configs/env.yaml``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CrafterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(64, ge=16, description="frame side in pixels")
    area: int = Field(64, ge=16, description="world side in cells")
    view: int = Field(9, ge=3, description="cells the player sees across")


class MineDojoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field("open-ended", description="a MineDojo task id")
    image_size: list[int] = Field([64, 64], min_length=2, max_length=2, description="H, W")
    world_seed: int | None = Field(None, description="fixed Minecraft world seed; default: the episode seed")
    view: int = Field(9, ge=3, description="local view width in blocks (programmatic tasks fix 3)")


class EnvConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("crafter", description="registered env name (crafter, minedojo)")
    max_steps: int = Field(10000, ge=1, description="steps before an episode is truncated")
    crafter: CrafterOptions = CrafterOptions()
    minedojo: MineDojoOptions = MineDojoOptions()

    def make_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``envs.make(self.name, ...)``."""
        options = getattr(self, self.name, None)
        kwargs = options.model_dump() if isinstance(options, BaseModel) else {}
        kwargs["max_steps"] = self.max_steps
        return kwargs

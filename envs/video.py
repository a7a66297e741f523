"""MP4 (or GIF) per episode, as a wrapper; an optional caption is drawn under the frame."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from envs.base import Env, StepResult, Wrapper
from envs.observation import Observation

log = logging.getLogger(__name__)
CAPTION_HEIGHT = 14


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    return frame if scale == 1 else np.repeat(np.repeat(frame, scale, 0), scale, 1)


def draw_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with a black strip below it holding ``text``."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    canvas = Image.new("RGB", (w, h + CAPTION_HEIGHT))
    canvas.paste(Image.fromarray(frame), (0, 0))
    ImageDraw.Draw(canvas).text((2, h + 1), text[: max(1, w // 6)], fill=(255, 255, 255))
    return np.asarray(canvas)


class VideoRecorder(Wrapper):
    """Writes ``<out>/<episode name>.mp4`` for each episode (GIF with ``fmt="gif"``)."""

    def __init__(self, env: Env, out_dir: Path, scale: int = 4, fps: int = 15,
                 fmt: str = "mp4", captions: bool = False):
        super().__init__(env)
        self.out_dir = Path(out_dir)
        self.scale, self.fps, self.fmt, self.captions = scale, fps, fmt, captions
        self.caption = ""
        self._writer: Any = None
        self.paths: list[Path] = []

    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        self._close_writer()
        obs, info = self.env.reset(seed)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{info.get('episode_id') or f'seed{seed}'}.{self.fmt}"
        self._open_writer(path)
        self._write(obs)
        return obs, info

    def step(self, action: int, **kwargs: Any) -> StepResult:
        result = self.env.step(action, **kwargs)  # e.g. teacher_probs for a recorder inside
        self._write(result[0])
        if result[2] or result[3]:
            self._close_writer()
        return result

    def close(self) -> None:
        self._close_writer()
        self.env.close()

    # A recorder may sit inside: what is said to this wrapper reaches it too.
    def annotate(self, **context: str | None) -> None:
        """Caption the frames with the subgoal, and pass the context on."""
        if context.get("subgoal") is not None:
            self.caption = str(context["subgoal"])
        if hasattr(self.env, "annotate"):
            self.env.annotate(**context)

    def flush(self) -> None:
        if hasattr(self.env, "flush"):
            self.env.flush()

    def _open_writer(self, path: Path) -> None:
        import imageio.v2 as imageio

        if self.fmt == "mp4":
            # macro_block_size=1 keeps odd sizes (captions) without resizing warnings.
            self._writer = imageio.get_writer(path, fps=self.fps, codec="libx264",
                                              macro_block_size=1, quality=7)
        else:
            self._writer = imageio.get_writer(path, mode="I", duration=1000 / self.fps)
        self.paths.append(path)

    def _write(self, obs: Observation) -> None:
        if self._writer is None:
            return
        frame = upscale(obs.frame, self.scale)
        if self.captions:
            frame = draw_caption(frame, self.caption)
        self._writer.append_data(frame)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

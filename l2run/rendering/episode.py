"""Run one episode of a policy and draw it: an animated GIF, or one still.

Works on any env whose innermost env is an :class:`l2run.L2RunEnv` (wrappers
such as the feature observation are fine): frames are drawn from
``env.unwrapped.sim``, the policy sees what the outer env returns.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

import opensim

from .gif import GifWriter
from .scene import SkeletonRenderer

FELL, TIME_LIMIT, SIM_ERROR = "fell", "time limit", "simulator error"


@dataclasses.dataclass
class RenderStats:
    """What was rendered and where the time went (seconds)."""

    steps: int
    """10 ms steps simulated."""
    frames: int
    end: str
    """FELL, TIME_LIMIT, SIM_ERROR, or "stopped" (a still before the episode ended)."""
    distance: float
    """Pelvis x at the last step (m)."""
    simulate_s: float = 0.0
    """Env steps and policy calls."""
    draw_s: float = 0.0
    encode_s: float = 0.0
    """Quantising and writing frames."""
    setup_s: float = 0.0
    """Building the renderer (reading and drawing the meshes once)."""
    total_s: float = 0.0
    sim_error: Optional[str] = None


def frame_count(steps: int, every: int) -> int:
    """Frames of an episode of ``steps`` steps drawn every ``every`` steps:
    after steps every, 2 every, ... and after the last step."""
    return math.ceil(steps / every)


@dataclasses.dataclass
class _Step:
    step: int
    terminated: bool = False
    truncated: bool = False
    sim_error: Optional[str] = None

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


def _run(env, act: Callable, seed: int, action_repeat: int, stats: RenderStats) -> Iterator[_Step]:
    """Yield after the reset (step 0) and after every 10 ms step; the policy
    picks a new action every ``action_repeat`` steps (the run's frame skip)."""
    started = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    stats.simulate_s += time.perf_counter() - started
    yield _Step(0)
    step, action = 0, None
    while True:
        started = time.perf_counter()
        if step % action_repeat == 0:
            action = act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        stats.simulate_s += time.perf_counter() - started
        step += 1
        stats.steps = step
        yield _Step(step, bool(terminated), bool(truncated), info.get("sim_error"))
        if terminated or truncated:
            return


def _caption_note(state: _Step) -> str:
    if state.terminated:
        return "fell"
    if state.sim_error:
        return "simulator error"
    return ""


def _end(state: _Step) -> str:
    if state.sim_error:
        return SIM_ERROR
    return FELL if state.terminated else TIME_LIMIT


def render_gif(env, act: Callable, out: os.PathLike, seed: int = 0, every: int = 2, fps: float = 25.0,
               size: Tuple[int, int] = (640, 360), action_repeat: int = 1, title: Optional[str] = None,
               progress: Optional[Callable[[int], None]] = None, last_steps: Optional[int] = None) -> RenderStats:
    """Run one episode (course seed ``seed``) and write it to the GIF ``out``.

    act: obs -> action (the policy). Frames show the state after steps
    ``every``, ``2 every``, ... and after the last step: ``ceil(steps /
    every)`` frames. ``last_steps``: only the frames of the episode's last
    ``last_steps`` steps (``frame_count(last_steps, every)`` frames), such as
    the second before a fall (copies of their states are held until the
    episode ends, then drawn).
    progress: called with the step number after each step.
    """
    total_started = time.perf_counter()
    sim = env.unwrapped.sim
    stats = RenderStats(0, 0, TIME_LIMIT, 0.0)
    renderer = None
    writer = None
    held = None if last_steps is None else collections.deque(maxlen=frame_count(last_steps, every))
    try:
        for state in _run(env, act, seed, action_repeat, stats):
            if renderer is None:
                started = time.perf_counter()
                renderer = SkeletonRenderer(sim.model, sim.state, *size)
                writer = GifWriter(out, size, fps, renderer.palette())
                stats.setup_s = time.perf_counter() - started
            if progress is not None and state.step:
                progress(state.step)
            if state.step == 0 or not (state.step % every == 0 or state.done):
                continue
            if held is not None:  # a copy of the state is cheap; drawing it is not
                held.append((opensim.State(sim.state), _caption_note(state)))
            else:
                _draw(renderer, writer, sim.state, sim.course.obstacles, title, _caption_note(state), stats)
            if state.done:
                stats.end, stats.sim_error = _end(state), state.sim_error
        for copy, note in held or ():
            _draw(renderer, writer, copy, sim.course.obstacles, title, note, stats)
        started = time.perf_counter()
        writer.close()
        stats.encode_s += time.perf_counter() - started
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    stats.distance = float(sim.pelvis_x)
    stats.total_s = time.perf_counter() - total_started
    return stats


def _draw(renderer: SkeletonRenderer, writer: GifWriter, state, obstacles, title, note: str,
          stats: RenderStats) -> None:
    """Draw ``state`` and append it to the GIF, timing both."""
    started = time.perf_counter()
    image = renderer.draw(state, obstacles, title=title, note=note)
    drawn = time.perf_counter()
    writer.append(image)
    stats.draw_s += drawn - started
    stats.encode_s += time.perf_counter() - drawn
    stats.frames += 1


def render_still(env, act: Callable, out: os.PathLike, step: int, seed: int = 0,
                 size: Tuple[int, int] = (1280, 720), action_repeat: int = 1,
                 title: Optional[str] = None) -> RenderStats:
    """Run the episode up to ``step`` (0: the initial pose) and save that one
    image to ``out`` (format from its extension, e.g. .png).

    Raises ValueError if the episode ends before ``step``."""
    total_started = time.perf_counter()
    sim = env.unwrapped.sim
    stats = RenderStats(0, 0, "stopped", 0.0)
    last = None
    for state in _run(env, act, seed, action_repeat, stats):
        last = state
        if state.step == step:
            break
    if last.step < step:
        raise ValueError(f"the episode ended ({_end(last)}) after {last.step} steps, before step {step}; "
                         f"choose a step <= {last.step}")
    if last.done:
        stats.end, stats.sim_error = _end(last), last.sim_error
    started = time.perf_counter()
    renderer = SkeletonRenderer(sim.model, sim.state, *size)
    stats.setup_s = time.perf_counter() - started
    started = time.perf_counter()
    image = renderer.draw(sim.state, sim.course.obstacles, title=title, note=_caption_note(last))
    stats.draw_s = time.perf_counter() - started
    _save_atomically(image, Path(out))
    stats.frames = 1
    stats.distance = float(sim.pelvis_x)
    stats.total_s = time.perf_counter() - total_started
    return stats


def _save_atomically(image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        image.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

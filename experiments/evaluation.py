"""Score a policy the way the 2017 grader did: deterministic actions, the
metres the pelvis moved forward, one course per seed. (``act="sample"`` draws
the actions as training did instead, seeded per course: the training distance's
counterpart at the grader's settings.)

Episode ``i`` uses course seed ``seed + i`` whatever the number of MPI ranks
(rank ``r`` runs the episodes with ``i % size == r``), so a score belongs to a
seed, not to a rank layout: ``mpirun -np 2`` reproduces a 1-rank evaluation.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from l2run.simulator import GRADER_INTEGRATOR

from .envs import EnvConfig, make_env
from .policies import BUILTIN_POLICIES, make_policy

#: Why an episode ended, as reported.
FELL, TIME_LIMIT, SIM_ERROR = "fell", "time limit", "simulator error"


@dataclasses.dataclass
class EpisodeResult:
    episode: int
    seed: int
    score: float
    """Metres the pelvis moved forward: the 2017 score."""
    steps: int
    """Simulator steps of 10 ms (frame skip counted out)."""
    end: str
    sim_error: Optional[str] = None
    since_obstacle: Optional[float] = None
    """Metres the pelvis was past the centre of the last obstacle it passed when the
    episode ended (None: none passed): with ``to_obstacle``, tells a fall at an
    obstacle from one in open ground."""
    to_obstacle: Optional[float] = None
    """Metres from the pelvis to the centre of the next obstacle (None: none left)."""


def policy_env_config(policy_spec: str, **overrides) -> EnvConfig:
    """The env an exported policy was trained on (observation features, frame
    skip), with the course and integrator settings of ``overrides``; the
    integrator and the feet's friction are the grader's unless ``overrides``
    names others, whatever the policy trained with. Built-in policies see the raw 41 floats (cheapest)."""
    base = {"features": False}
    if policy_spec not in BUILTIN_POLICIES and Path(policy_spec).exists():
        from baselines_ppo import export

        metadata = export.load_policy(export.find_policy(Path(policy_spec))).metadata
        trained = metadata.get("env") or {}
        known = {f.name for f in dataclasses.fields(EnvConfig)}
        base = {key: value for key, value in trained.items() if key in known}
        base.setdefault("features", True)
    base["integrator"] = GRADER_INTEGRATOR
    base["friction_transition_velocity"] = None  # the grader's contact, whatever the policy trained with
    base.update(overrides)
    return EnvConfig(**base)


def run_episode(env, policy, seed: int, episode: int, trace: Optional[list] = None) -> EpisodeResult:
    """One graded episode on the course of ``seed``; with ``trace``, append
    ``(observation, action)`` for every step to it (``experiments.falls``)."""
    obs, _ = env.reset(seed=seed)
    score, steps = 0.0, 0
    while True:
        action = policy.act(obs)
        if trace is not None:
            trace.append((obs, action))
        obs, _, terminated, truncated, info = env.step(action)
        score += float(info["distance"])
        steps = int(info["step"])
        if terminated or truncated:
            break
    if "sim_error" in info:
        end = SIM_ERROR
    else:
        end = FELL if terminated else TIME_LIMIT
    since, to = obstacles_around(env.unwrapped.sim)
    return EpisodeResult(episode, seed, score, steps, end, info.get("sim_error"), since, to)


def obstacles_around(sim) -> tuple:
    """(metres past the last obstacle centre behind the pelvis, metres to the next
    one ahead), None where there is none."""
    pelvis_x = sim.pelvis_x
    centres = sim.course.obstacles[:, 0]
    behind, ahead = centres[centres <= pelvis_x], centres[centres > pelvis_x]
    return (float(pelvis_x - behind.max()) if behind.size else None,
            float(ahead.min() - pelvis_x) if ahead.size else None)


def summarise(results: list[EpisodeResult]) -> dict:
    scores = np.array([r.score for r in results])
    ends = [r.end for r in results]
    return {
        "episodes": len(results),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "min": float(scores.min()),
        "max": float(scores.max()),
        "mean_steps": float(np.mean([r.steps for r in results])),
        "ends": {end: ends.count(end) for end in (FELL, TIME_LIMIT, SIM_ERROR)},
    }


def evaluate(policy_spec: str, episodes: int, env_config: EnvConfig, seed: int = 0,
             progress: bool = True, act: Optional[str] = None) -> Optional[dict]:
    """Run ``episodes`` episodes split over the MPI ranks; the report on rank 0, None
    elsewhere. ``act`` overrides how an exported policy acts (``baselines_ppo.export.ACTS``)."""
    started = time.perf_counter()
    results = run_split(policy_spec, episodes, env_config, seed, run_episode, progress, "evaluate", act)
    if results is None:
        return None
    return report(policy_spec, env_config, seed, results, time.perf_counter() - started, act)


def report(policy_spec: str, env_config: EnvConfig, seed: int, results: list, wall_s: float,
           act: Optional[str] = None) -> dict:
    """The evaluation report of ``results`` (EpisodeResults, in episode order), as
    JSON-ready data; ``act`` is recorded when it overrode the policy's own mode."""
    from baselines_ppo import mpi

    out = {
        "policy": policy_spec,
        "env": dataclasses.asdict(env_config),
        "seed": seed,
        "ranks": mpi.size(),
        "wall_s": wall_s,
        "summary": summarise(results),
        "episodes": [dataclasses.asdict(r) for r in results],
    }
    if act is not None:
        out["act"] = act
    training = training_of(policy_spec)
    if training:
        out["training"] = training
    digest = policy_sha256(policy_spec)
    if digest:
        out["policy_sha256"] = digest
    return out


def policy_sha256(policy_spec: str) -> Optional[str]:
    """The SHA-256 of the exported policy file scored; None for a built-in policy.

    Why: a report names its policy by path, and a path under runs/ does not outlive
    its machine. The digest ties the score to the bytes, so that a policy found again
    (in git's history, or trained again bit for bit from a committed checkpoint) can
    be shown to be the one scored."""
    path = _policy_file(policy_spec)
    return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


def _policy_file(policy_spec: str) -> Optional[Path]:
    """The exported policy file a spec names (a file, or a run directory's); None
    for a built-in policy."""
    if policy_spec in BUILTIN_POLICIES or not Path(policy_spec).exists():
        return None
    from baselines_ppo import export

    return export.find_policy(Path(policy_spec))


def training_of(policy_spec: str) -> Optional[dict]:
    """How far an exported policy had trained (``iteration``, agent ``timesteps``,
    from its metadata), so that its report can be placed on its line's curve
    (``l2run plot --scores``); None for a built-in policy. A weight average of
    several policies (``l2run average``) has the last one's training and
    ``averaged``, how many it averages, so the plot tells it from a checkpoint."""
    path = _policy_file(policy_spec)
    if path is None:
        return None
    from baselines_ppo import export
    from baselines_ppo.averaging import AVERAGED_FROM_KEY

    metadata = export.load_policy(path).metadata
    training = metadata.get("training") or {}
    found = {key: int(training[key]) for key in ("iteration", "timesteps") if key in training}
    if found and metadata.get(AVERAGED_FROM_KEY):
        found["averaged"] = len(metadata[AVERAGED_FROM_KEY])
    return found or None


def run_split(policy_spec: str, episodes: int, env_config: EnvConfig, seed: int, run: Callable,
              progress: bool = True, desc: str = "episodes", act: Optional[str] = None) -> Optional[list]:
    """``run(env, policy, seed + i, i)`` for episode ``i`` in ``range(episodes)``,
    split over the MPI ranks (rank ``r`` runs ``i % size == r`` on its own env);
    everything ``run`` returned, in episode order, on rank 0, None elsewhere.
    ``run`` returns an EpisodeResult or an object with its ``score``."""
    from baselines_ppo import mpi

    rank, size = mpi.rank(), mpi.size()
    try:
        mine = _run_my_episodes(policy_spec, episodes, env_config, seed, rank, size, run, progress, desc, act)
    except BaseException as err:
        if size > 1 and not isinstance(err, SystemExit):
            mpi.abort_on_exception(err)  # rank 0 would wait in gather() forever
        raise
    gathered = mpi.gather(mine)
    if rank != 0:
        return None
    return [item for _, item in sorted(((i, item) for part in gathered for i, item in part), key=lambda p: p[0])]


def _run_my_episodes(policy_spec, episodes, env_config, seed, rank, size, run, progress, desc, act) -> list:
    """[(i, run(...))] for the episodes ``i % size == rank``, on this rank's own env."""
    env = make_env(env_config)
    done = []
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=len(range(rank, episodes, size)), desc=f"{desc} (rank 0 of {size})", unit="episode")
    try:
        for episode in range(rank, episodes, size):
            # A fresh policy per episode: the random and sampled policies' draws then
            # depend on the episode alone, not on which rank ran what before.
            policy = make_policy(policy_spec, env.observation_space, env.action_space, seed=seed + episode, act=act)
            done.append((episode, run(env, policy, seed + episode, episode)))
            if bar is not None:
                bar.update()
                bar.set_postfix(score=f"{done[-1][1].score:.2f} m")
    finally:
        if bar is not None:
            bar.close()
        env.close()
    return done


def format_report(report: dict) -> str:
    env = report["env"]
    lines = [
        f"policy {report['policy']}: difficulty {env['difficulty']}, {env['max_obstacles']} obstacles, "
        f"{env['integrator']} at accuracy {env['integrator_accuracy']:g}, {report['ranks']} rank(s), {report['wall_s']:.1f} s"
        + (f", actions: {report['act']}" if report.get("act") else ""),
        f"{'episode':>7s} {'seed':>6s} {'score (m)':>10s} {'steps':>6s}  end (pelvis to the obstacles' centres)",
    ]
    for e in report["episodes"]:
        lines.append(f"{e['episode']:7d} {e['seed']:6d} {e['score']:10.3f} {e['steps']:6d}  {e['end']}{_where(e)}")
    s = report["summary"]
    lines.append(
        f"score: mean {s['mean']:.3f} m, std {s['std']:.3f}, min {s['min']:.3f}, max {s['max']:.3f} "
        f"over {s['episodes']} episodes; mean length {s['mean_steps']:.0f} steps; "
        + ", ".join(f"{k}: {v}" for k, v in s["ends"].items())
    )
    return "\n".join(lines)


def _where(episode: dict) -> str:
    """" (0.50 m past one, 2.91 m before the next)" for a report's episode; "" without obstacles."""
    parts = []
    if episode.get("since_obstacle") is not None:
        parts.append(f"{episode['since_obstacle']:.2f} m past one")
    if episode.get("to_obstacle") is not None:
        parts.append(f"{episode['to_obstacle']:.2f} m before the next")
    return f" ({', '.join(parts)})" if parts else ""


def write_json_atomically(data: dict, path: Path) -> None:
    """The report as JSON, written atomically (``baselines_ppo.export.atomic_write_bytes``)."""
    from baselines_ppo.export import atomic_write_bytes

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory of --out does not exist: {str(path.parent)!r}")
    atomic_write_bytes(path, json.dumps(data, indent=2, default=_jsonable).encode())


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot write {type(value).__name__} to JSON")

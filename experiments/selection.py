"""Choosing a runner honestly: score candidates on some seeds, report on others.

A run's candidates are its snapshots (:mod:`baselines_ppo.snapshots`),
``best_policy.npz`` and the last ``policy.npz`` (files with the same bytes
count once), each in both deterministic modes of
:meth:`baselines_ppo.export.ExportedPolicy.act` ("expected": the mean of the
clipped Gaussian, "mean": the clipped mean; which is better depends on the
policy). Every (candidate, mode) is scored on the *selection* seeds at the
grader's settings; the winner is then scored on *report* seeds that the
selection never saw, and only that second number is the runner's score --
picking the best of many on the same seeds it is reported on would flatter it.

The (candidate, mode, seed) episodes are spread round-robin over the MPI ranks,
so the work balances whatever the number of candidates.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from baselines_ppo.export import (ACT_MODES, BEST_POLICY_FILE, POLICY_FILE, ExportedPolicy, PolicyFileError,
                                  policy_from_bytes)
from baselines_ppo.snapshots import list_snapshots

from .comparison import standard_error
from .envs import EnvConfig, make_env
from .evaluation import FELL, EpisodeResult, run_episode
from .policies import ModePolicy


class SelectionError(ValueError):
    """Bad input to a selection: printed as one line."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str  # e.g. "snapshots/policy-00000760.npz", "best_policy.npz"
    path: Path
    iteration: Optional[int]
    timesteps: Optional[int]
    data: bytes = dataclasses.field(repr=False)
    """The file's bytes when it was listed: a live run rewrites policy.npz every
    iteration and prunes old snapshots, so every rank scores, and --ship writes,
    these bytes, never what the path holds later."""

    def load(self) -> ExportedPolicy:
        return policy_from_bytes(self.data, self.path)


def parse_seeds(text: str, option: str = "--seeds") -> List[int]:
    """'100-115', '0,3,7' or '5' (or a mix: '0-4,9') -> sorted distinct seeds >= 0."""
    seeds = set()
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                first, last = int(low), int(high)
                if last < first:
                    raise ValueError
                seeds.update(range(first, last + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise SelectionError(f"{option} {text!r}: expected seeds like 100-115, 0,3,7 or 5") from None
    if not seeds or min(seeds) < 0:
        raise SelectionError(f"{option} {text!r}: seeds must be integers >= 0")
    return sorted(seeds)


def check_disjoint(selection: Sequence[int], report: Sequence[int]) -> None:
    """The reported score must come from seeds the selection never saw."""
    shared = sorted(set(selection) & set(report))
    if shared:
        listed = ", ".join(map(str, shared[:10])) + (" ..." if len(shared) > 10 else "")
        raise SelectionError(f"--seeds and --report-seeds share seed(s) {listed}: the reported score must come "
                             "from seeds the selection never saw; choose disjoint sets (e.g. --seeds 100-115 "
                             "--report-seeds 0-9)")


def find_candidates(run_dir, from_iteration: Optional[int] = None,
                    include: Sequence[Path] = ()) -> List[Candidate]:
    """Snapshots (oldest first), then best_policy.npz and policy.npz, then the
    ``include`` files; identical files once. ``from_iteration`` keeps only the
    run's policies trained that many iterations or more: a long line's recent
    snapshots, without re-scoring its history. ``include`` adds policies from
    outside the run, such as the runner already shipped, so the choice is made
    against it on the same seeds."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SelectionError(f"{run_dir} is not a run directory")
    own = list_snapshots(run_dir) + [p for p in (run_dir / BEST_POLICY_FILE, run_dir / POLICY_FILE) if p.is_file()]
    if not own:
        raise SelectionError(f"{run_dir} holds no snapshots/, {BEST_POLICY_FILE} or {POLICY_FILE}: train first "
                             "(snapshots are kept every ppo.snapshot_every iterations)")
    for path in include:
        if not Path(path).is_file():
            raise SelectionError(f"--include {path}: no such policy file (expected an exported .npz)")
    seen: Dict[bytes, Candidate] = {}
    newest = 0  # of the run's own policies, for the error below
    for path in own + [Path(p) for p in include]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # a snapshot a live run pruned since it was listed
        try:
            training = policy_from_bytes(data, path).metadata.get("training") or {}
        except PolicyFileError as err:
            raise SelectionError(f"candidate {path}: {err}") from None
        if data in seen:
            continue
        iteration = training.get("iteration")
        inside = path in own
        if inside:
            newest = max(newest, iteration or 0)
        if inside and from_iteration is not None and (iteration is None or iteration < from_iteration):
            continue
        seen[data] = Candidate(str(path.relative_to(run_dir)) if inside else str(path), path, iteration,
                               training.get("timesteps"), data)
    if from_iteration is not None and not any(c.path in own for c in seen.values()):
        raise SelectionError(f"--from-iteration {from_iteration}: {run_dir} has no policy that late (its newest "
                             f"is iteration {newest}); lower it")
    return list(seen.values())


def score_jobs(jobs: Sequence[Tuple[int, str, int]], candidates: Sequence[Candidate], env_config: EnvConfig,
               rank: int, size: int, progress: bool) -> List[Tuple[int, str, EpisodeResult]]:
    """Run this rank's share (``i % size == rank``) of the (candidate, mode, seed) jobs."""
    mine = [job for i, job in enumerate(jobs) if i % size == rank]
    env = make_env(env_config)
    policies: Dict[int, object] = {}
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=len(mine), desc=f"select (rank 0 of {size})", unit="episode")
    results = []
    try:
        for index, mode, seed in mine:
            if index not in policies:
                policies[index] = candidates[index].load()
            result = run_episode(env, ModePolicy(policies[index], mode), seed, seed)
            results.append((index, mode, result))
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
        env.close()
    return results


def summarise(results: Sequence[EpisodeResult]) -> Dict[str, float]:
    return score_summary([r.score for r in results], [r.end == FELL for r in results], [r.steps for r in results])


def score_summary(scores: Sequence[float], fell: Sequence[bool], steps: Optional[Sequence[float]]) -> Dict[str, float]:
    """A candidate's row of the table from its episodes' scores, falls and
    lengths (``steps`` None: not known, as in reports written before they had them)."""
    scores = np.asarray(scores, dtype=float)
    return {"episodes": len(scores), "mean": float(scores.mean()), "sem": standard_error(scores),
            "min": float(scores.min()), "max": float(scores.max()), "falls": int(sum(fell)),
            "mean_steps": None if steps is None else float(np.mean(steps))}


def select(run_dir, selection_seeds: Sequence[int], report_seeds: Sequence[int], env_config: EnvConfig,
           candidates: Sequence[Candidate], modes: Sequence[str] = ACT_MODES,
           progress: bool = True) -> Optional[dict]:
    """Score every candidate (:func:`find_candidates`) in every mode on
    ``selection_seeds``, the winner on ``report_seeds`` (collective over the MPI
    ranks). The report on rank 0, None elsewhere."""
    from baselines_ppo import mpi

    check_disjoint(selection_seeds, report_seeds)
    rank, size = mpi.rank(), mpi.size()
    started = time.perf_counter()
    # Rank 0's list, with the bytes it read, for every rank (see Candidate.data).
    candidates = mpi.broadcast(list(candidates) if rank == 0 else None)
    jobs = [(i, mode, seed) for i in range(len(candidates)) for mode in modes for seed in selection_seeds]
    scored = gathered(score_jobs(jobs, candidates, env_config, rank, size, progress), size)
    table = None
    winner = None
    if rank == 0:
        table, scores = [], []
        for i, candidate in enumerate(candidates):
            for mode in modes:
                episodes = sorted((r for c, m, r in scored if c == i and m == mode), key=lambda r: r.seed)
                table.append({"candidate": candidate.name, "path": str(candidate.path), "mode": mode,
                              "iteration": candidate.iteration, "timesteps": candidate.timesteps,
                              **summarise(episodes)})
                scores.append([r.score for r in episodes])
        # best mean; on a tie the later policy (more training behind it)
        winner = max(range(len(table)), key=lambda k: (table[k]["mean"], k))
    winner = mpi.broadcast(winner)
    report_rows = []
    if report_seeds:
        index, mode = divmod(winner, len(modes))
        report_jobs = [(index, modes[mode], seed) for seed in report_seeds]
        report_rows = gathered(score_jobs(report_jobs, candidates, env_config, rank, size, progress), size)
    if rank != 0:
        return None
    report = sorted((r for _, _, r in report_rows), key=lambda r: r.seed)
    return {
        "run_dir": str(run_dir), "env": dataclasses.asdict(env_config), "ranks": size,
        "selection_seeds": list(selection_seeds), "report_seeds": list(report_seeds), "modes": list(modes),
        "candidates": table, "winner": table[winner], "spread": spread_of(scores),
        "report": {"summary": summarise(report), "episodes": [dataclasses.asdict(r) for r in report]}
        if report else None,
        "wall_s": time.perf_counter() - started,
    }


def spread_of(scores) -> Optional[dict]:
    """Whether the candidates differ at all on the selection seeds, and the lead
    the best would have by luck alone (:mod:`experiments.spread`); None for one
    candidate or one seed."""
    from .spread import spread

    result = None if scores is None else spread(np.array(scores))
    return None if result is None else dataclasses.asdict(result)


def gathered(mine: list, size: int) -> list:
    from baselines_ppo import mpi

    parts = mpi.gather(mine)
    return [item for part in parts for item in part] if parts is not None else []


def format_table(result: dict) -> str:
    env = result["env"]
    width = max([34] + [len(row["candidate"]) for row in result["candidates"]])
    source = ""
    if result.get("reports"):
        source = f" from {len(result['reports'])} evaluate report(s), not run again"
    lines = [f"selection on seeds {seed_text(result['selection_seeds'])}{source}: difficulty {env['difficulty']}, "
             f"{env['max_obstacles']} obstacles, {env['integrator']} at {env['integrator_accuracy']:g}, "
             f"{result['ranks']} rank(s), {result['wall_s']:.0f} s",
             f"  {'candidate':{width}s} {'mode':8s} {'iter':>6s} {'mean m':>7s} {'sem':>6s} {'min':>7s} {'falls':>6s}"]
    for row in result["candidates"]:
        mark = " <- winner" if row is result["winner"] or row == result["winner"] else ""
        iteration = "-" if row["iteration"] is None else str(row["iteration"])
        lines.append(f"  {row['candidate']:{width}s} {row['mode']:8s} {iteration:>6s} {row['mean']:7.2f} "
                     f"{row['sem']:6.2f} {row['min']:7.2f} {row['falls']:3d}/{row['episodes']:<2d}{mark}")
    if result.get("spread"):
        from .spread import Spread, format_spread

        lines.append("  " + format_spread(Spread(**result["spread"])))
    for name in result.get("skipped") or ():
        lines.append(f"  left out: {name}: sampled actions are not the grader's deterministic runner")
    if result["report"] is not None:
        s = result["report"]["summary"]
        lines.append(f"winner on the report seeds {seed_text(result['report_seeds'])} (never seen by the "
                     f"selection): mean {s['mean']:.2f} m (sem {s['sem']:.2f}), min {s['min']:.2f}, "
                     f"max {s['max']:.2f}, falls {s['falls']}/{s['episodes']}")
    return "\n".join(lines)


def seed_text(seeds: Sequence[int]) -> str:
    seeds = list(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))

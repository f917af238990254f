"""Choosing a runner among evaluate reports already made (``l2run select --reports``).

A long line is scored checkpoint by checkpoint as it trains (``l2run evaluate
--out`` on the same held-out courses), so the selection's table already exists
in its reports; scoring the candidates again would cost hours of a core
(fourteen policies on 32 courses at the grader's accuracy: about 3 h here).
From reports, only the winner runs, on report seeds that no report used for
the choice.

The rule is :func:`experiments.selection.select`'s: every candidate scored on
the same courses at the same settings with deterministic actions, the best mean
wins (on a tie, the later on the command line), and its reported score comes
from seeds the selection never saw. Reports need two more checks, which a
fresh selection gets for free:

* a report names its policy by path, and the path may hold another file since
  (``pretrained/round2/policy.npz`` once a new runner is shipped; a file under
  ``runs/`` may be gone). The winner runs only from a file whose SHA-256 is the
  one its reports recorded, found at the reports' path or among ``policy_files``;
* a policy scored with sampled actions (``evaluate --act sample``) is not the
  runner the grader sees: its reports are left out, and said to be.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from baselines_ppo.export import ACT_MODES, PolicyFileError, find_policy, policy_from_bytes
from l2run.constants import STEP_SECONDS

from .comparison import ComparisonError, PolicyScores, common_scores, load_reports
from .envs import EnvConfig
from .selection import (Candidate, SelectionError, check_disjoint, score_jobs, score_summary, seed_text,
                        spread_of, summarise)


@dataclasses.dataclass(frozen=True)
class ReportTable:
    """The candidates the reports score, on the courses they are chosen on."""

    rows: List[dict]
    """One per candidate policy, in order of first appearance (``selection.format_table``'s rows)."""
    seeds: List[int]
    winner: int
    """Index in ``rows`` of the best mean (on a tie, the later)."""
    policies: List[PolicyScores]
    skipped: List[str]
    """The sampled-action policies left out."""
    settings: dict
    """The evaluation settings every report shares (``comparison.SCORED_SETTINGS``)."""


def table_from_reports(paths: Sequence[Path], seeds: Optional[Sequence[int]] = None) -> ReportTable:
    """The selection table of the deterministic policies the reports score, on
    ``seeds`` (each candidate must have been scored on all of them; other courses
    are ignored) or, without, on the courses every candidate was scored on, which
    must be the same for all. SelectionError naming what cannot be used."""
    try:
        policies = load_reports(paths, at_least=1)
    except ComparisonError as err:
        raise SelectionError(str(err)) from None
    skipped = [p.policy for p in policies if p.act is not None and p.act not in ACT_MODES]
    policies = [p for p in policies if p.act is None or p.act in ACT_MODES]
    if not policies:
        raise SelectionError(f"the reports score only sampled actions ({', '.join(skipped)}): the grader's runner "
                             "acts deterministically; give reports of `l2run evaluate` without --act sample")
    if seeds is None:
        courses = {frozenset(p.scores) for p in policies}
        if len(courses) > 1:
            listed = "; ".join(f"{p.policy}: {seed_text(sorted(p.scores))}" for p in policies)
            raise SelectionError(f"the reports score their policies on different courses ({listed}): a selection "
                                 "compares all on the same courses; choose them with --seeds")
        seeds = sorted(next(iter(courses)))
    for p in policies:
        missing = sorted(set(seeds) - set(p.scores))
        if missing:
            raise SelectionError(f"{p.policy} was not scored on course(s) {seed_text(missing)} of --seeds "
                                 f"{seed_text(seeds)} (its reports: {', '.join(p.reports)}); evaluate it there "
                                 "or leave its reports out")
    rows = [_row(p, seeds) for p in policies]
    winner = max(range(len(rows)), key=lambda k: (rows[k]["mean"], k))
    return ReportTable(rows, list(seeds), winner, policies, skipped, dict(policies[0].settings))


def _row(policy: PolicyScores, seeds: Sequence[int]) -> dict:
    known = all(s in policy.seconds for s in seeds)
    steps = [policy.seconds[s] / STEP_SECONDS for s in seeds] if known else None
    return {"candidate": policy.policy, "path": policy.source, "sha256": policy.sha256, "reports": policy.reports,
            "mode": policy.act or "own", "iteration": policy.iteration, "simulator_steps": policy.steps,
            **score_summary([policy.scores[s] for s in seeds], [policy.fell[s] for s in seeds], steps)}


def find_scored_file(policy: PolicyScores, policy_files: Sequence[Path] = ()) -> Tuple[Path, bytes]:
    """The file ``policy``'s reports scored, with its bytes: at the path the
    reports name, else among ``policy_files`` (files, or directories of .npz
    files), matched by SHA-256. SelectionError when no file has those bytes."""
    if not policy.sha256:
        raise SelectionError(f"the winner {policy.policy}'s reports ({', '.join(policy.reports)}) do not record "
                             "the sha256 of an exported policy file (a built-in policy, or reports written before "
                             "they did), so no file can be shown to be it; evaluate it again, or leave its reports "
                             "out")
    named = Path(policy.source)
    places = [named, *policy_files]
    seen_at_named = None
    for place in places:
        for path in _npz_files(place):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest == policy.sha256:
                return path, data
            if place is named:
                seen_at_named = digest
    now = "is gone" if seen_at_named is None else f"holds another file now (sha256 {seen_at_named[:12]}...)"
    searched = f", nor do --policy-files {' '.join(map(str, policy_files))}" if policy_files else ""
    raise SelectionError(f"the winner {policy.policy} was scored from a file with sha256 {policy.sha256[:12]}...; "
                         f"{policy.source} {now}{searched}: give the file it scored with --policy-files NPZ|DIR")


def _npz_files(place: Path) -> List[Path]:
    """The policy files ``place`` names: itself, or a directory's policy and its .npz files."""
    if place.is_dir():
        try:
            own = [find_policy(place)]
        except (FileNotFoundError, PolicyFileError):
            own = []
        return list(dict.fromkeys(own + sorted(place.glob("*.npz"))))  # each file read and hashed once
    return [place] if place.is_file() else []


def winner_candidate(table: ReportTable, policy_files: Sequence[Path] = ()) -> Tuple[Candidate, str]:
    """The winner as a :class:`selection.Candidate` holding the bytes scored,
    and the deterministic mode its reports acted in (their ``act``, else the
    mode the file records)."""
    policy = table.policies[table.winner]
    path, data = find_scored_file(policy, policy_files)
    try:
        mode = policy.act or policy_from_bytes(data, path).default_mode
    except PolicyFileError as err:
        raise SelectionError(f"the winner {policy.policy}: {err}") from None
    return Candidate(policy.policy, path, policy.iteration, None, data), mode


def report_env_config(table: ReportTable) -> EnvConfig:
    """The env the winner's reports were scored in, exactly (observation,
    frame skip, course, integrator: the report records every field)."""
    env = json.loads(Path(table.policies[table.winner].reports[0]).read_text())["env"]
    known = {f.name for f in dataclasses.fields(EnvConfig)}
    return EnvConfig(**{key: value for key, value in env.items() if key in known})


def select_from_reports(table: ReportTable, report_seeds: Sequence[int], winner: Optional[Candidate],
                        mode: Optional[str], progress: bool = True) -> Optional[dict]:
    """Score the winner on ``report_seeds`` (collective over the MPI ranks; none
    when empty); the selection's result on rank 0 (the shape of
    ``selection.select``'s, with ``reports``), None elsewhere."""
    from baselines_ppo import mpi

    from .selection import gathered

    check_disjoint(table.seeds, report_seeds)
    started = time.perf_counter()
    rank, size = mpi.rank(), mpi.size()
    env_config = report_env_config(table)
    results = []
    if report_seeds:
        jobs = [(0, mode, seed) for seed in report_seeds]
        results = gathered(score_jobs(jobs, [winner], env_config, rank, size, progress), size)
    if rank != 0:
        return None
    report = sorted((r for _, _, r in results), key=lambda r: r.seed)
    winner_row = dict(table.rows[table.winner])
    if winner is not None:
        winner_row.update(mode=mode, file=str(winner.path))
    rows = [winner_row if k == table.winner else row for k, row in enumerate(table.rows)]
    return {
        "run_dir": None, "reports": sorted({r for p in table.policies for r in p.reports}),
        "skipped": table.skipped, "env": dataclasses.asdict(env_config), "ranks": size,
        "selection_seeds": table.seeds, "report_seeds": list(report_seeds), "modes": None,
        "candidates": rows, "winner": winner_row,
        "spread": spread_of(common_scores(table.policies, table.seeds)),
        "report": {"summary": summarise(report), "episodes": [dataclasses.asdict(r) for r in report]}
        if report else None,
        "wall_s": time.perf_counter() - started,
    }


def check_settings(table: ReportTable, given: dict) -> None:
    """SelectionError when an option given on the command line (``given``: a
    setting of ``SCORED_SETTINGS`` -> (option, value)) differs from the reports':
    the winner is reported at the settings it was chosen at."""
    for key, (option, value) in given.items():
        if value is not None and value != table.settings[key]:
            raise SelectionError(f"{option} {value}: the reports were scored at {table.settings[key]}; with "
                                 "--reports the winner is reported at the settings it was chosen at (leave "
                                 f"{option} out)")

"""Tier a: which policies `l2run select` scores (no simulation: the episodes are
scored in tests/test_init_from.py on a real run)."""
import numpy as np
import pytest

from baselines_ppo import export
from baselines_ppo.snapshots import snapshot_path
from experiments.selection import SelectionError, find_candidates


def write_policy(path, iteration, bias=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    export.export_policy(path, [(np.zeros((4, 2)), np.full(2, bias))], np.zeros(2), "tanh", np.zeros(4),
                         np.ones(4), 5.0, np.zeros(2), np.ones(2),
                         metadata={"training": {"iteration": iteration, "timesteps": 100 * iteration}})
    return path


@pytest.fixture
def run(tmp_path):
    run_dir = tmp_path / "run"
    for iteration in (10, 20, 30):
        write_policy(snapshot_path(run_dir, iteration), iteration, bias=iteration)
    write_policy(run_dir / "best_policy.npz", 20, bias=20)  # the bytes of snapshot 20: counted once
    write_policy(run_dir / "policy.npz", 31, bias=31)
    return run_dir


def test_recent_policies_only_and_a_policy_from_outside(run, tmp_path):
    shipped = write_policy(tmp_path / "shipped.npz", 7, bias=7)
    names = [c.name for c in find_candidates(run)]
    assert names == ["snapshots/policy-00000010.npz", "snapshots/policy-00000020.npz",
                     "snapshots/policy-00000030.npz", "policy.npz"]
    recent = find_candidates(run, from_iteration=25, include=[shipped])
    assert [(c.name, c.iteration) for c in recent] == [("snapshots/policy-00000030.npz", 30), ("policy.npz", 31),
                                                       (str(shipped), 7)]
    with pytest.raises(SelectionError, match=r"--from-iteration 40: .* has no policy that late \(its newest is "
                                             r"iteration 31\); lower it"):
        find_candidates(run, from_iteration=40)
    with pytest.raises(SelectionError, match=r"--include .*gone.npz: no such policy file"):
        find_candidates(run, include=[tmp_path / "gone.npz"])


def test_the_selection_scores_the_bytes_it_listed_whatever_the_run_writes_after(run):
    """A live run replaces policy.npz every iteration and prunes old snapshots: the
    episodes (and --ship) use the bytes read when the candidates were listed."""
    candidates = find_candidates(run)
    latest = next(c for c in candidates if c.name == "policy.npz")
    write_policy(run / "policy.npz", 32, bias=32)
    oldest = candidates[0]
    oldest.path.unlink()  # pruned by the run's snapshot rule
    assert latest.load().metadata["training"]["iteration"] == 31
    assert latest.load().actor[0][1].tolist() == [31.0, 31.0]
    assert oldest.load().metadata["training"]["iteration"] == 10
    assert [c.name for c in find_candidates(run)] == ["snapshots/policy-00000020.npz",
                                                      "snapshots/policy-00000030.npz", "policy.npz"]

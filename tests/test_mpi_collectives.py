"""Tier b: real `mpirun -np 2` jobs in a subprocess with a timeout (a hang fails, never blocks)."""
import pytest

from mpi_cases import run_mpi

pytestmark = pytest.mark.mpi


def test_collectives_over_two_ranks():
    result = run_mpi("collectives", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK collectives" in result.stdout


def test_parameters_identical_on_every_rank_after_updates():
    result = run_mpi("sync", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK sync" in result.stdout


def test_check_synced_aborts_when_ranks_differ():
    result = run_mpi("desync", timeout=120)
    assert result.returncode != 0
    assert "ranks hold different parameters in the desync test" in result.stderr
    assert "did not abort" not in result.stdout


@pytest.mark.parametrize("case", ["raise", "raise_plain"])
def test_a_rank_raising_ends_the_job_without_hanging(case):
    # rank 0 sits in an Allreduce that rank 1 never joins; the job must still end
    result = run_mpi(case, timeout=60, abort_on_error=(case == "raise"))
    assert result.returncode != 0
    assert "boom on rank 1" in result.stderr
    assert "rank 0 passed the collective" not in result.stdout

"""Each launch keeps Open MPI's shared-memory segments in a directory of its own.

Two jobs on one host whose mpirun PIDs hash to the same 16-bit job id share
``/dev/shm/sm_segment.*`` files and both die of SIGSEGV in their first collective
(two training lines started together did exactly that). These tests run real
``mpirun -np 2`` jobs under :func:`experiments.mpirun.private_shared_memory`.
"""
import os
import subprocess

import pytest

from experiments.mpirun import (SHARED_MEMORY_DIRECTORY_VARIABLE, SHARED_MEMORY_PREFIX, launch_environment,
                                private_shared_memory, remove_orphaned_directories)
from mpi_cases import MPIRUN, PYTHON, REPO, mpi_env

REPORT_SEGMENTS = f"""
import os
from mpi4py import MPI
import numpy as np
comm = MPI.COMM_WORLD
total = np.zeros(4)
comm.Allreduce(np.ones(4), total)  # the ranks talk through the shared-memory transport
directory = os.environ["{SHARED_MEMORY_DIRECTORY_VARIABLE}"]
comm.Barrier()
print("rank", comm.rank, total[0], directory, sorted(os.listdir(directory)), flush=True)
"""


def run_two_ranks(script, env):
    done = subprocess.run([str(MPIRUN), "-np", "2", "--oversubscribe", str(PYTHON), str(script)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return sorted(line.split(" ", 4) for line in done.stdout.splitlines() if line.startswith("rank "))


@pytest.mark.mpi
def test_two_concurrent_jobs_each_keep_their_segments_in_their_own_directory(tmp_path):
    script = tmp_path / "segments.py"
    script.write_text(REPORT_SEGMENTS)
    env = {**launch_environment(), **mpi_env()}
    with private_shared_memory(env) as first, private_shared_memory(env) as second:
        directories = [first[SHARED_MEMORY_DIRECTORY_VARIABLE], second[SHARED_MEMORY_DIRECTORY_VARIABLE]]
        assert directories[0] != directories[1]
        assert all(os.path.basename(d).startswith(SHARED_MEMORY_PREFIX) and os.path.isdir(d) for d in directories)
        for job_env, directory in zip((first, second), directories):
            reports = run_two_ranks(script, job_env)
            assert [r[1] for r in reports] == ["0", "1"]
            for _, _, total, seen, files in reports:
                assert float(total) == 2.0 and seen == directory
                # both ranks' segment files were in this job's directory while it ran
                assert files.count("sm_segment.") == 2, files
    # and the directories go with the launch
    assert not any(os.path.exists(d) for d in directories)


def test_a_directory_the_user_chose_and_jobs_on_other_hosts_are_left_alone(tmp_path):
    chosen = {"PATH": os.environ["PATH"], SHARED_MEMORY_DIRECTORY_VARIABLE: str(tmp_path)}
    with private_shared_memory(chosen) as env:
        assert env == chosen
    assert tmp_path.is_dir()
    plain = {"PATH": os.environ["PATH"]}
    with private_shared_memory(plain, local=False) as env:
        assert env == plain


def test_a_killed_launchers_directory_is_removed_by_the_next_launch_a_live_ones_is_not(tmp_path):
    dead = subprocess.Popen(["true"])  # a launcher that has exited
    dead.wait()
    orphan = tmp_path / f"{SHARED_MEMORY_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{SHARED_MEMORY_PREFIX}{os.getpid()}-def"
    for directory in (orphan, live):
        directory.mkdir()
        (directory / "sm_segment.host.0.1.0").write_bytes(b"left by a job")
    unrelated = tmp_path / "sm_segment.host.0.2.0"
    unrelated.write_bytes(b"not ours")
    remove_orphaned_directories(tmp_path)
    assert not orphan.exists() and live.is_dir() and unrelated.exists()

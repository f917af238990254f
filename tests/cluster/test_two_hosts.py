"""train_cluster.sh across two "hosts": network namespaces joined by a veth link.

What this proves: with a hostfile naming l2run-a and l2run-b and Open MPI's
launch agent pointed at the namespaces (netns_agent.sh instead of ssh), rank 0
runs on l2run-a and rank 1 on l2run-b (seen from outside: each rank process's
network namespace), the gradient Allreduce crosses the link (its byte counters),
and the ranks' parameters stay identical (the trainer's check_synced, which
aborts the job on a mismatch, runs every ppo.check_sync_every = 5 iterations of
the quick config). Then rank 1 is killed: the job ends with a message within
60 s, leaves nothing running on l2run-b, and re-running the same command resumes
the run with progress.csv continuous.
"""
import json
import os
import signal
import subprocess
import threading
import time

import numpy as np

from cluster_support import (CLUSTER_SCRIPTS, REPO, assert_contiguous, iterations, net_namespace, process_cmdline,
                             process_environ, read_text, wait_for)

HOSTS = ("l2run-a", "l2run-b")
AGENT = CLUSTER_SCRIPTS / "netns_agent.sh"


def cluster_command(hostfile, run_dir, iterations_total):
    """The command documented in docs/cluster.md, run on l2run-a."""
    return [str(CLUSTER_SCRIPTS / "on_host.sh"), "l2run-a", "env", f"PRTE_MCA_plm_ssh_agent={AGENT}",
            "CONFIG=experiments/configs/quick.toml", "experiments/scripts/train_cluster.sh", str(hostfile),
            str(run_dir), "--iterations", str(iterations_total)]


def link_bytes() -> int:
    """Bytes l2run-b's end of the link has sent plus received."""
    total = 0
    for counter in ("rx_bytes", "tx_bytes"):
        out = subprocess.run(["ip", "netns", "exec", "l2run-b", "cat", f"/sys/class/net/l2run-vb/statistics/{counter}"],
                             capture_output=True, text=True, check=True)
        total += int(out.stdout)
    return total


class RankWatcher(threading.Thread):
    """Records, from outside, which namespace each MPI rank of the job runs in."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ranks = {}  # rank -> (host, net namespace, pid)
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(0.5):
            for host in HOSTS:
                out = subprocess.run(["ip", "netns", "pids", host], capture_output=True, text=True).stdout
                for pid in map(int, out.split()):
                    if "experiments.cli" not in process_cmdline(pid):
                        continue
                    rank = process_environ(pid).get("OMPI_COMM_WORLD_RANK")
                    namespace = net_namespace(pid)
                    if rank is not None and namespace is not None:
                        self.ranks[int(rank)] = (host, namespace, pid)

    def stop(self):
        self._done.set()
        self.join(timeout=5)


def start(command, log_path):
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return process


def stop_group(process):
    """Clean-up after a failed assertion: our job's process group only."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def flat_parameter_count(run_dir) -> int:
    with np.load(run_dir / "policy.npz", allow_pickle=False) as policy:
        return int(sum(policy[key].size for key in policy.files if policy[key].dtype.kind == "f"))


def test_scripts_refuse_bad_input_in_one_line(two_hosts, tmp_path):
    for command in (["on_host.sh", "l2run-c", "true"], ["on_host.sh", "l2run-a"], ["netns_agent.sh", "l2run-b"]):
        result = subprocess.run([str(CLUSTER_SCRIPTS / command[0]), *command[1:]], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, (command, result.stderr)
    (tmp_path / "hosts").write_text("# nothing\n")
    result = subprocess.run([str(REPO / "experiments/scripts/train_cluster.sh"), str(tmp_path / "hosts")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "names no host" in result.stderr and result.stderr.count("\n") == 1


def test_two_hosts_train_in_sync_survive_a_dead_rank_and_resume(two_hosts, tmp_path):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("l2run-a slots=1\nl2run-b slots=1\n")
    run_dir = tmp_path / "run"

    # 1. five iterations across the two hosts
    watcher, before = RankWatcher(), link_bytes()
    watcher.start()
    started = time.monotonic()
    process = start(cluster_command(hostfile, run_dir, 5), tmp_path / "run1.log")
    try:
        code = process.wait(timeout=900)
    finally:
        stop_group(process)
        watcher.stop()
    first_s = time.monotonic() - started
    crossed = link_bytes() - before
    log1 = read_text(tmp_path / "run1.log")
    print(log1[-3000:])
    assert code == 0, log1[-3000:]
    assert "done at iteration 5" in log1
    assert_contiguous(run_dir, 5)

    assert sorted(watcher.ranks) == [0, 1], watcher.ranks
    assert watcher.ranks[0][0] == "l2run-a" and watcher.ranks[1][0] == "l2run-b", watcher.ranks
    assert watcher.ranks[0][1] != watcher.ranks[1][1], "the ranks share a network namespace"
    root_namespace = os.readlink("/proc/self/ns/net")
    assert root_namespace not in (watcher.ranks[0][1], watcher.ranks[1][1])

    # the parameters were compared across the ranks at iteration 5 and matched (else: abort, non-zero exit)
    ppo = json.loads((run_dir / "config.json").read_text())["ppo"]
    assert ppo["check_sync_every"] == 5
    # every minibatch Allreduces a flat float32 gradient; 10 epochs x 4 minibatches x 5 iterations
    params = flat_parameter_count(run_dir)
    allreduced = 5 * ppo["epochs"] * (ppo["steps_per_rank"] // ppo["minibatch_size"]) * params * 4
    assert crossed > allreduced, f"only {crossed} bytes crossed the link, expected over {allreduced}"
    print(f"ranks: {watcher.ranks}; {crossed / 1e6:.1f} MB over the link "
          f"(gradients alone: {allreduced / 1e6:.1f} MB); first run {first_s:.0f} s")

    # 2. kill the rank on l2run-b mid-run: the job must end, with a message, within 60 s
    watcher = RankWatcher()
    watcher.start()
    process = start(cluster_command(hostfile, run_dir, 10), tmp_path / "run2.log")
    try:
        wait_for(lambda: len(iterations(run_dir)) >= 6 and 1 in watcher.ranks, 900,
                 "iteration 6 of the resumed run")
        host, _, pid = watcher.ranks[1]
        assert host == "l2run-b"
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        code = process.wait(timeout=120)
        end_s = time.monotonic() - killed
    finally:
        stop_group(process)
        watcher.stop()
    log2 = read_text(tmp_path / "run2.log")
    print(log2[-3000:])
    assert code != 0
    assert end_s < 60, f"the job took {end_s:.0f} s to end after rank 1 died"
    assert "l2run train: mpirun exited" in log2 and "--resume" in log2
    assert "rank 1" in log2 and "on node l2run-b" in log2, "Open MPI names the rank that died and its host"
    wait_for(lambda: not subprocess.run(["ip", "netns", "pids", "l2run-b"], capture_output=True,
                                        text=True).stdout.strip(), 30, "l2run-b to have no process left")
    stopped = iterations(run_dir)[-1]

    # 3. the same command again resumes from the last checkpoint and finishes
    watcher = RankWatcher()
    watcher.start()
    process = start(cluster_command(hostfile, run_dir, 10), tmp_path / "run3.log")
    try:
        code = process.wait(timeout=900)
    finally:
        stop_group(process)
        watcher.stop()
    log3 = read_text(tmp_path / "run3.log")
    print(log3[-3000:])
    assert code == 0, log3[-3000:]
    assert "resuming" in log3 and "done at iteration 10" in log3
    assert watcher.ranks[0][0] == "l2run-a" and watcher.ranks[1][0] == "l2run-b"
    assert_contiguous(run_dir, 10)  # rows past the checkpoint were dropped and redone, none twice
    print(f"rank 1 killed after iteration {stopped}: job ended {end_s:.1f} s later")

"""`l2run train --init-from`: continuing a line from a checkpoint or an exported
policy, snapshots along a run, and `l2run select` on a real run."""
import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest

from baselines_ppo import snapshots
from baselines_ppo.checkpoint import latest_checkpoint, load_checkpoint
from baselines_ppo.export import load_policy
from mpi_cases import REPO
from test_train_cli import l2run, pendulum_toml, rows_of

PRETRAINED = REPO / "pretrained" / "round2"


def train_here(*args):
    from experiments.cli import main

    return main(["train", *map(str, args), "--quiet"])


def actor_of(policy):
    return [a for layer in policy.actor for a in layer] + [policy.log_std]


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_init_from_a_checkpoint_continues_the_parent_bit_for_bit(tmp_path):
    config = pendulum_toml(tmp_path, checkpoint_every=2)
    parent, child = tmp_path / "parent", tmp_path / "child"
    assert train_here("--config", config, "--run-dir", parent, "--iterations", 4) == 0
    ckpt_2 = parent / "checkpoints" / "ckpt-00000002"
    assert ckpt_2.is_dir()  # keep_checkpoints = 3: iterations 2 and 4 are both kept

    assert train_here("--config", config, "--run-dir", child, "--iterations", 4, "--init-from", ckpt_2) == 0
    # same config, same ranks: the child's iterations 3-4 are the parent's, bit for bit
    assert [r["time/iteration"] for r in rows_of(child)] == ["3", "4"]
    for column in ("rollout/ep_return", "losses/policy", "train/approx_kl"):
        assert [r[column] for r in rows_of(child)] == [r[column] for r in rows_of(parent)[2:]], column
    parent_weights = load_checkpoint(latest_checkpoint(parent)).weights
    child_weights = load_checkpoint(latest_checkpoint(child)).weights
    assert all(np.array_equal(parent_weights[k], child_weights[k]) for k in parent_weights)
    lineage = json.loads((child / "lineage.json").read_text())
    assert lineage == {"init_from": str(ckpt_2), "kind": "checkpoint", "iteration": 2, "timesteps": 512,
                       "changes": []}
    with open(child / "parent_progress.csv", newline="") as f:
        assert [row["time/iteration"] for row in csv.DictReader(f)] == ["1", "2"]


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_init_from_a_policy_fits_the_critic_before_the_actor_moves(tmp_path, capsys):
    config = pendulum_toml(tmp_path, checkpoint_every=1, value_warmup_iterations=2)
    parent, child = tmp_path / "parent", tmp_path / "child"
    assert train_here("--config", config, "--run-dir", parent, "--iterations", 3) == 0
    exported = load_policy(parent / "policy.npz")
    assert train_here("--config", config, "--run-dir", child, "--iterations", 6,
                      "--init-from", parent / "policy.npz") == 0
    assert "the first 2 iteration(s) train the value network alone" in capsys.readouterr().err
    assert [r["time/iteration"] for r in rows_of(child)] == ["4", "5", "6"]
    assert [r["time/timesteps"] for r in rows_of(child)] == ["1024", "1280", "1536"]
    kept = load_checkpoint(child / "checkpoints" / "ckpt-00000005")
    after_warmup = load_policy(child / "policy.npz")  # iteration 6: the actor's first update
    # through the warm-up the actor and its log-std are the exported ones, exactly; the critic learned
    weights = kept.weights
    for i, (kernel, bias) in enumerate(exported.actor):
        assert np.array_equal(weights[f"actor/kernel_{i}"], kernel)
        assert np.array_equal(weights[f"actor/bias_{i}"], bias)
    assert np.array_equal(weights["log_std"], exported.log_std)
    assert kept.value_warmup_left == 0
    assert not all(np.array_equal(a, b) for a, b in zip(actor_of(after_warmup), actor_of(exported)))
    parent_critic = load_checkpoint(latest_checkpoint(parent)).weights["critic/kernel_0"]
    assert not np.array_equal(weights["critic/kernel_0"], parent_critic)  # fitted anew, not copied
    assert json.loads((child / "lineage.json").read_text())["kind"] == "policy"


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_init_from_errors_name_both_values(tmp_path, capsys):
    config = pendulum_toml(tmp_path)
    parent = tmp_path / "parent"
    assert train_here("--config", config, "--run-dir", parent, "--iterations", 1) == 0
    for name, hidden_sizes in (("narrower", [8]), ("deeper", [16, 16])):  # only wider keeps the function
        (tmp_path / name).mkdir()
        other = pendulum_toml(tmp_path / name, hidden_sizes=hidden_sizes)
        assert train_here("--config", other, "--run-dir", tmp_path / "a", "--iterations", 2,
                          "--init-from", parent) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].endswith(f"has hidden_sizes = [16], but this run's config and env give hidden_sizes = "
                                f"{hidden_sizes}; use a config with the parent's network and env settings (its "
                                "config.toml) (hidden layers may grow: as many, none narrower)")
    assert train_here("--config", config, "--run-dir", tmp_path / "b", "--init-from", tmp_path / "nothing") == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "b" / "progress.csv").exists()


def test_widening_keeps_every_output_and_the_new_units_apart():
    from baselines_ppo.init_from import policy_weights
    from baselines_ppo.numpy_policy import portable_mlp_forward
    from baselines_ppo.policy import ActorCritic
    from baselines_ppo.widen import widen

    def net(hidden, seed):
        return ActorCritic(5, 3, hidden, "tanh", -0.5, np.random.default_rng(seed))

    parent, child = net((8, 6), 1), net((12, 10), 2)
    parent.log_std.assign([0.1, -0.2, 0.3])
    grown = widen(parent.get_weights(), child.get_weights())
    child.set_weights(grown)
    obs = np.random.default_rng(3).standard_normal((64, 5)).astype(np.float32)
    for before, after in ((parent.numpy_policy(), child.numpy_policy()), (parent, child)):  # numpy and TF
        np.testing.assert_allclose(np.asarray(after.mean_action(obs)), np.asarray(before.mean_action(obs)),
                                   rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.asarray(after.value(obs)), np.asarray(before.value(obs)), rtol=1e-6, atol=1e-6)
    assert np.array_equal(grown["log_std"], parent.log_std.numpy())
    # scored as the grader's evaluation does (sums in input order), the grown policy acts to the bit alike:
    # each new input adds w * 0 = 0 after the parent's own terms
    assert np.array_equal(portable_mlp_forward(child.numpy_policy().actor, "tanh", obs),
                          portable_mlp_forward(parent.numpy_policy().actor, "tanh", obs))
    fresh = net((12, 10), 2).get_weights()  # the child as initialised
    for i in range(3):
        kernel, old = grown[f"actor/kernel_{i}"], parent.get_weights()[f"actor/kernel_{i}"]
        assert np.array_equal(kernel[:old.shape[0], :old.shape[1]], old)
        assert not kernel[old.shape[0]:, :old.shape[1]].any()  # new inputs do not reach the parent's units
        assert np.array_equal(kernel[:, old.shape[1]:], fresh[f"actor/kernel_{i}"][:, old.shape[1]:])
    new_units = grown["actor/kernel_0"][:, 8:]
    assert np.linalg.matrix_rank(new_units) == 4  # fresh, distinct units, not copies
    # an exported policy grows alike (its actor; the critic is the learner's own)
    weights = policy_weights(parent.numpy_policy(), net((12, 10), 2).get_weights())
    for name in [name for name in grown if not name.startswith("critic/")]:
        assert np.array_equal(weights[name], grown[name]), name
    assert all(np.array_equal(weights[name], fresh[name]) for name in fresh if name.startswith("critic/"))
    with pytest.raises(ValueError, match=r"variable 'actor/kernel_0' of shape \(5, 12\) does not fit in \(5, 8\)"):
        widen(child.get_weights(), parent.get_weights())


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_init_from_a_checkpoint_into_wider_layers(tmp_path, capsys):
    (tmp_path / "wide").mkdir()
    config = pendulum_toml(tmp_path, checkpoint_every=2)
    wide = pendulum_toml(tmp_path / "wide", checkpoint_every=2, hidden_sizes=[32])
    parent, child = tmp_path / "parent", tmp_path / "child"
    assert train_here("--config", config, "--run-dir", parent, "--iterations", 3) == 0
    ckpt_2 = parent / "checkpoints" / "ckpt-00000002"
    assert train_here("--config", wide, "--run-dir", child, "--iterations", 4, "--init-from", ckpt_2) == 0
    err = capsys.readouterr().err
    assert "settings changed from the parent: hidden_sizes: [16] -> [32]" in err
    assert "the hidden layers grow from [16] to [32]" in err
    assert json.loads((child / "lineage.json").read_text())["changes"] == ["hidden_sizes: [16] -> [32]"]
    own, theirs = rows_of(child), rows_of(parent)
    assert [r["time/iteration"] for r in own] == ["3", "4"]
    # iteration 3 acts with the parent's function and the parent's RNG: the same episodes, to rounding
    assert float(own[0]["rollout/ep_return"]) == pytest.approx(float(theirs[2]["rollout/ep_return"]), rel=1e-3)
    assert float(own[0]["train/approx_kl"]) < 0.1  # a fresh Adam: steps of the learning rate, no blow-up
    grown = load_checkpoint(latest_checkpoint(child))
    assert grown.weights["actor/kernel_0"].shape == (3, 32) and grown.weights["critic/kernel_1"].shape == (32, 1)
    per_iteration = int(load_checkpoint(ckpt_2).optimizer["t"]) // 2
    assert int(grown.optimizer["t"]) == 2 * per_iteration  # Adam started afresh at the branch point
    assert load_policy(child / "policy.npz").actor[0][0].shape == (3, 32)
    # and the wider run resumes as any other
    assert train_here("--config", wide, "--run-dir", child, "--iterations", 5, "--resume") == 0
    assert [r["time/iteration"] for r in rows_of(child)] == ["3", "4", "5"]


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_a_line_carried_on_keeps_its_whole_lineage_and_curve(tmp_path, capsys):
    """A branch from a policy, carried on from its checkpoint (another machine),
    then branched with another learning rate: each link knows every earlier one,
    and the plot draws the carried-on run as one line with its branch."""
    from baselines_ppo.init_from import line_start, load_init_source
    from experiments.plot_cmd import PARENT_COLUMN, load_progress

    config = pendulum_toml(tmp_path, checkpoint_every=1)
    (tmp_path / "slower").mkdir()
    slower = pendulum_toml(tmp_path / "slower", checkpoint_every=1, learning_rate=1e-4)
    first, branch, carried, lever = (tmp_path / name for name in ("first", "branch", "carried", "lever"))
    assert train_here("--config", config, "--run-dir", first, "--iterations", 2) == 0
    assert train_here("--config", config, "--run-dir", branch, "--iterations", 3,
                      "--init-from", first / "policy.npz") == 0
    capsys.readouterr()
    assert train_here("--config", config, "--run-dir", carried, "--iterations", 4, "--init-from", branch) == 0
    assert "no setting changed from the parent: the run continues its line" in capsys.readouterr().err
    assert train_here("--config", slower, "--run-dir", lever, "--iterations", 5, "--init-from", carried) == 0
    assert "settings changed from the parent: learning_rate: 0.0003 -> 0.0001" in capsys.readouterr().err

    policy_link = {"init_from": str(first / "policy.npz"), "kind": "policy", "iteration": 2, "timesteps": 512}
    carried_link = {"init_from": str(branch / "checkpoints" / "ckpt-00000003"), "kind": "checkpoint",
                    "iteration": 3, "timesteps": 768, "changes": []}
    assert json.loads((carried / "lineage.json").read_text()) == {**carried_link, "ancestors": [policy_link]}
    assert json.loads((lever / "lineage.json").read_text()) == {
        "init_from": str(carried / "checkpoints" / "ckpt-00000004"), "kind": "checkpoint", "iteration": 4,
        "timesteps": 1024, "changes": ["learning_rate: 0.0003 -> 0.0001"], "ancestors": [policy_link, carried_link]}
    assert [line_start(d) for d in (first, branch, carried, lever)] == [0, 2, 2, 4]
    # a policy of the line from before its later links has only the earlier ones
    shutil.copy(carried / "policy.npz", lever / "iteration-4.npz")
    assert load_init_source(lever / "iteration-4.npz").ancestors == [policy_link, carried_link]
    shutil.copy(first / "policy.npz", lever / "iteration-2.npz")
    assert load_init_source(lever / "iteration-2.npz").ancestors == []

    drawn = load_progress(carried, parent=True)
    assert drawn["time/iteration"].tolist() == [1, 2, 3, 4] and drawn[PARENT_COLUMN].tolist() == [1, 1, 0, 0]
    assert load_progress(carried, parent=False)["time/iteration"].tolist() == [3, 4]
    drawn = load_progress(lever, parent=True)
    assert drawn["time/iteration"].tolist() == [1, 2, 3, 4, 5] and drawn[PARENT_COLUMN].tolist() == [1, 1, 1, 1, 0]
    elapsed = drawn["time/elapsed_s"]
    assert np.all(np.diff(elapsed) > 0)  # the clocks of four runs, added up along the line


def test_snapshots_keep_the_newest_and_every_mth(tmp_path):
    for iteration in range(10, 260, 10):
        path = snapshots.snapshot_path(tmp_path, iteration)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    snapshots.prune(tmp_path, keep=3, keep_every=100)
    assert [snapshots.snapshot_iteration(p) for p in snapshots.list_snapshots(tmp_path)] == [100, 200, 230, 240, 250]


@pytest.mark.slow
@pytest.mark.mpi
def test_the_shipped_runner_continues_and_select_picks_on_held_out_seeds(tmp_path):
    """--init-from pretrained/round2 (its policy) on the real env over 2 ranks, then
    `l2run select` on that run: the table, the JSON, the shipped mode, the seed rule."""
    from experiments.config import config_to_toml, load_config

    shipped = load_config(PRETRAINED / "config.toml")
    tiny = dataclasses.replace(shipped, env=dataclasses.replace(shipped.env, max_steps=60),
                               ppo=dataclasses.replace(shipped.ppo, steps_per_rank=64, minibatch_size=32, epochs=2,
                                                       value_warmup_iterations=1, snapshot_every=1))
    config = tmp_path / "tiny.toml"
    config.write_text(config_to_toml(tiny))
    run_dir = tmp_path / "run"
    parent_iteration = load_policy(PRETRAINED / "policy.npz").metadata["training"]["iteration"]
    trained = l2run("train", "--config", config, "--ranks", 2, "--iterations", parent_iteration + 2,
                    "--run-dir", run_dir, "--init-from", PRETRAINED / "policy.npz", "--quiet", timeout=240)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert [int(r["time/iteration"]) for r in rows_of(run_dir)] == [parent_iteration + 1, parent_iteration + 2]
    assert [snapshots.snapshot_iteration(p) for p in snapshots.list_snapshots(run_dir)] == \
        [parent_iteration + 1, parent_iteration + 2]

    overlap = l2run("select", run_dir, "--seeds", "0-3", "--report-seeds", "3-5")
    assert overlap.returncode == 2
    assert overlap.stderr.strip() == ("l2run select: error: --seeds and --report-seeds share seed(s) 3: the reported "
                                      "score must come from seeds the selection never saw; choose disjoint sets "
                                      "(e.g. --seeds 100-115 --report-seeds 0-9)")
    assert not (run_dir / "selection.json").exists()

    out = tmp_path / "selected.npz"
    selected = l2run("select", run_dir, "--seeds", "100-101", "--report-seeds", "0", "--max-steps", 30,
                     "--accuracy", "3e-2", "--ranks", 2, "--ship", out, "--quiet", timeout=240)
    assert selected.returncode == 0, selected.stderr[-3000:]
    result = json.loads((run_dir / "selection.json").read_text())
    assert result["selection_seeds"] == [100, 101] and result["report_seeds"] == [0]
    # policy.npz of the last iteration has the bytes of its snapshot, so it counts once
    names = {row["candidate"] for row in result["candidates"]}
    assert {f"snapshots/policy-{parent_iteration + 1:08d}.npz", "best_policy.npz"} <= names
    assert {row["mode"] for row in result["candidates"]} == {"expected", "mean"}
    for row in result["candidates"]:
        assert row["episodes"] == 2 and 0 <= row["falls"] <= 2 and row["min"] <= row["mean"]
    best = max(result["candidates"], key=lambda row: row["mean"])
    assert result["winner"]["mean"] == best["mean"]
    means = [row["mean"] for row in result["candidates"]]
    assert result["spread"]["policies"] == len(means) and result["spread"]["courses"] == 2
    assert result["spread"]["lead"] == pytest.approx(max(means) - np.mean(means))
    assert [e["seed"] for e in result["report"]["episodes"]] == [0]
    assert "<- winner" in selected.stdout and "never seen by the selection" in selected.stdout
    policy = load_policy(out)
    assert policy.default_mode == result["winner"]["mode"]
    assert policy.metadata["selection"]["seeds"] == [100, 101]

    # a long line: only its recent policies, against the runner already shipped
    shipped = PRETRAINED / "policy.npz"
    recent = l2run("select", run_dir, "--seeds", "100", "--report-seeds", "none", "--modes", "expected",
                   "--max-steps", 20, "--accuracy", "3e-2", "--from-iteration", parent_iteration + 2,
                   "--include", shipped, "--out", tmp_path / "recent.json", "--quiet", timeout=240)
    assert recent.returncode == 0, recent.stderr[-3000:]
    rows = json.loads((tmp_path / "recent.json").read_text())["candidates"]
    assert f"snapshots/policy-{parent_iteration + 2:08d}.npz" in {row["candidate"] for row in rows}
    assert str(shipped) in {row["candidate"] for row in rows}
    assert all(row["iteration"] >= parent_iteration + 2 for row in rows if row["candidate"] != str(shipped))
    too_late = l2run("select", run_dir, "--seeds", "100", "--from-iteration", parent_iteration + 9)
    assert (too_late.returncode, too_late.stderr.strip()) == (2, (
        f"l2run select: error: --from-iteration {parent_iteration + 9}: {run_dir} has no policy that late "
        f"(its newest is iteration {parent_iteration + 2}); lower it"))
    missing = l2run("select", run_dir, "--seeds", "100", "--include", tmp_path / "gone.npz")
    assert (missing.returncode, missing.stderr.strip()) == (2, (
        f"l2run select: error: --include {tmp_path / 'gone.npz'}: no such policy file (expected an exported .npz)"))


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_the_batch_schedule_switches_at_its_step_count_and_resumes_exactly(tmp_path):
    config = pendulum_toml(tmp_path, steps_per_rank=256, minibatch_size=64, early_batch_until=300,
                           early_steps_per_rank=128, early_minibatch_size=32, checkpoint_every=2)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_here("--config", config, "--run-dir", whole, "--iterations", 5) == 0
    rows = rows_of(whole)
    assert [r["time/timesteps"] for r in rows] == ["128", "256", "384", "640", "896"]  # 3 x 128, then 256
    assert [r["train/batch_steps"] for r in rows] == ["128", "128", "128", "256", "256"]
    # stopped before the switch (checkpoint at 2), resumed across it: the same run
    assert train_here("--config", config, "--run-dir", parts, "--iterations", 2) == 0
    assert train_here("--config", config, "--run-dir", parts, "--iterations", 5, "--resume") == 0
    for column in ("time/timesteps", "rollout/ep_return", "losses/policy", "losses/value"):
        assert [r[column] for r in rows_of(parts)] == [r[column] for r in rows], column


def test_the_batch_schedule_is_validated_and_counts_iterations():
    from baselines_ppo.config import PPOConfig

    config = PPOConfig(steps_per_rank=8192, minibatch_size=256, early_batch_until=1_000_000,
                       early_steps_per_rank=2048, early_minibatch_size=64, total_timesteps=2_000_000)
    assert config.batch_at(0) == (2048, 64) and config.batch_at(999_424) == (2048, 64)
    assert config.batch_at(1_003_520) == (8192, 256)
    # 2 ranks: 245 iterations of 4096 reach 1,003,520, then ceil(996,480 / 16,384) = 61 of 16,384
    assert config.total_iterations(2) == 245 + 61
    assert config.iterations_to_total(1_003_520, 2) == 61
    with pytest.raises(ValueError, match=r"ppo.early_steps_per_rank \(2048\) must be divisible by "
                                         r"ppo.early_minibatch_size \(96\)"):
        PPOConfig(early_batch_until=10, early_minibatch_size=96)
    PPOConfig(early_batch_until=0, early_minibatch_size=96)  # off: not checked against the early steps

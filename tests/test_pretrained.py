"""The shipped runner (pretrained/round2) is whole and its reported score reproduces."""
import json
from pathlib import Path

import numpy as np
import pytest

from baselines_ppo.export import load_policy
from experiments.config import config_to_dict, load_config
from experiments.evaluation import policy_env_config, run_episode
from experiments.envs import make_env
from experiments.policies import make_policy

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "round2"


def assert_same_env(recorded: dict, config) -> None:
    """The env a policy or checkpoint recorded is the config's; a field newer than
    the recording (absent from it) must be at its default, which the run then used."""
    import dataclasses

    from experiments.envs import EnvConfig

    wanted = json.loads(json.dumps(config_to_dict(config)["env"]))
    defaults = json.loads(json.dumps(dataclasses.asdict(EnvConfig())))
    assert recorded == {key: wanted[key] for key in recorded}
    assert all(wanted[key] == defaults[key] for key in wanted if key not in recorded)


def test_the_runner_ships_every_file_with_one_config():
    for name in ("policy.npz", "config.toml", "progress.csv", "curves.png", "gait.gif", "evaluation.json"):
        assert (SHIPPED / name).is_file(), name
    policy = load_policy(SHIPPED / "policy.npz")
    config = load_config(SHIPPED / "config.toml")
    assert_same_env(policy.metadata["env"], config)
    assert (policy.observation_size, policy.action_size) == (82, 18)
    assert np.allclose(policy.action_low, config.env.min_excitation) and np.all(policy.action_high == 1)
    report = json.loads((SHIPPED / "evaluation.json").read_text())
    assert report["env"]["integrator"] == "runge_kutta_merson" and report["env"]["integrator_accuracy"] == 1e-3
    assert report["env"]["difficulty"] == 2 and report["env"]["max_obstacles"] == 10
    scores = [episode["score"] for episode in report["episodes"]]
    assert [episode["seed"] for episode in report["episodes"]] == list(range(10))
    assert report["summary"]["mean"] == pytest.approx(np.mean(scores))


def test_the_reported_score_of_seed_0_reproduces():
    """Deterministic policy, seeded course, the grader's integrator: the first
    episode of evaluation.json comes out the same when run again."""
    report = json.loads((SHIPPED / "evaluation.json").read_text())
    spec = str(SHIPPED / "policy.npz")
    env = make_env(policy_env_config(spec, difficulty=2, max_obstacles=10, integrator_accuracy=1e-3))
    policy = make_policy(spec, env.observation_space, env.action_space)
    result = run_episode(env, policy, seed=0, episode=0)
    first = report["episodes"][0]
    assert result.steps == first["steps"]
    assert result.score == pytest.approx(first["score"], abs=1e-9)


def test_the_runners_line_travels_with_it():
    """pretrained/round2 holds the latest checkpoint of the line that continues the
    runner (experiments/scripts/save_line.sh), small enough to commit, which
    `--init-from pretrained/round2` continues on any machine."""
    from baselines_ppo.checkpoint import latest_checkpoint, load_checkpoint
    from baselines_ppo.init_from import load_init_source

    checkpoint = latest_checkpoint(SHIPPED)
    assert checkpoint is not None
    assert sum(f.stat().st_size for f in checkpoint.iterdir()) < 1_000_000
    data = load_checkpoint(checkpoint)
    config = load_config(SHIPPED / "config.toml")
    assert data.config["hidden_sizes"] == list(config.ppo.hidden_sizes)
    assert (data.spaces["observation_size"], data.spaces["action_size"]) == (82, 18)
    assert_same_env(data.metadata["env"], config)
    runner = load_policy(SHIPPED / "policy.npz").metadata["training"]
    assert data.timesteps >= runner["timesteps"] and data.iteration >= runner["iteration"]
    source = load_init_source(SHIPPED)
    assert source.kind == "checkpoint" and source.iteration == data.iteration
    assert source.parent_rows.splitlines()[0].startswith("time/iteration")

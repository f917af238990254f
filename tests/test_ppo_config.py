"""Tier a: experiment configs (TOML -> ExperimentConfig) fail loudly and precisely."""
import dataclasses
import json
import tomllib

import pytest

from baselines_ppo.config import PPOConfig
from experiments.config import (ExperimentConfig, bundled_configs, config_from_dict, config_to_dict, config_to_toml,
                                load_config, resolve_config_path)
from experiments.envs import EnvConfig


@pytest.mark.parametrize("name, difficulty, obstacles", [("quick", 0, 0), ("round1", 1, 3), ("round2", 2, 10)])
def test_bundled_configs(name, difficulty, obstacles):
    config = load_config(name)
    assert config.name == name
    assert (config.env.difficulty, config.env.max_obstacles, config.env.integrator_accuracy) == \
        (difficulty, obstacles, 3e-2)
    assert config.ppo.seed == config.seed
    assert (config.ppo.mirror_augmentation, config.ppo.normalize_rewards) == (False, False)


@pytest.mark.parametrize("name", ["round1", "round2"])
def test_round_configs_spell_out_the_2017_levers(name):
    text = resolve_config_path(name).read_text()
    for line in ("mirror_augmentation = false", "normalize_rewards = false", "reward_clip = 10.0"):
        assert line in text, line


def test_quick_is_a_smoke_run():
    config = load_config("quick")
    assert config.ppo.steps_per_rank <= 512 and config.ppo.total_iterations(2) <= 50


def write(tmp_path, text):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


ERRORS = [
    ("[ppo]\nlearning_rat = 1e-3\n", r"unknown key\(s\) learning_rat in \[ppo\]; valid: activation, .*learning_rate"),
    ("[envv]\ndifficulty = 1\n", r"unknown key\(s\) or section\(s\) envv; valid: description, env, gym_id, name, ppo"),
    ("[ppo]\nlearning_rate = \"fast\"\n", r"ppo.learning_rate must be a number, got 'fast' \(str\)"),
    ("[ppo]\nepochs = 2.5\n", r"ppo.epochs must be an integer, got 2.5 \(float\)"),
    ("[ppo]\nnormalize_observations = 1\n", r"ppo.normalize_observations must be true or false, got 1 \(int\)"),
    ("[ppo]\nhidden_sizes = [64, \"x\"]\n", r"ppo.hidden_sizes must be a list of integers, got \[64, 'x'\]"),
    ("[env]\ndifficulty = \"2\"\n", r"env.difficulty must be an integer, got '2' \(str\)"),
    ("[env]\ndifficulty = 3\n", r"env.difficulty must be 0, 1 or 2 \(an int\), got 3 \(int\)"),
    ("[ppo]\nsteps_per_rank = 100\n", r"steps_per_rank \(100\) must be divisible by ppo.minibatch_size \(64\)"),
    ("[ppo]\nseed = 3\n", r"set the seed at the top level"),
    ("seed = -2\n", r"seed must be a non-negative integer, got -2"),
    ("ppo = 3\n", r"\[ppo\] must be a section"),
    ("[ppo\n", r"not valid TOML"),
    ("[ppo]\nsteps_per_rank = \"big\"\n", r"ppo.steps_per_rank must be an integer, got 'big' \(str\)$"),
    ("[ppo]\ngamma = true\n", r"ppo.gamma must be a number, got True \(bool\)$"),
    ("seed = \"x\"\n[ppo]\n", r": seed must be an integer, got 'x' \(str\)$"),
    ("[env]\nreward = {nope = 1.0}\n", r"env.reward: unknown reward term\(s\) \['nope'\]"),
]


@pytest.mark.parametrize("text, message", ERRORS)
def test_config_errors_name_key_and_value(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    if "not valid TOML" not in message:  # load_config only parses: the dict loader says the very same
        with pytest.raises(ValueError) as from_dict:
            config_from_dict(tomllib.loads(text), source=str(path))
        assert str(from_dict.value) == str(info.value)


def test_missing_config_lists_the_bundled_ones():
    with pytest.raises(FileNotFoundError, match="no config file round3; bundled configs: quick, round1, round2"):
        resolve_config_path("round3")


def test_toml_roundtrip_and_seed_propagation(tmp_path):
    config = config_from_dict({"name": "x", "seed": 7, "env": {"difficulty": 1, "reward": {"velocity": 2.0}},
                               "ppo": {"hidden_sizes": [32], "target_kl": 0.02, "learning_rate": 1,
                                       "mirror_augmentation": True, "normalize_rewards": True, "reward_clip": 5}})
    assert config.ppo.seed == 7 and config.ppo.learning_rate == 1.0 and config.ppo.hidden_sizes == (32,)
    assert (config.ppo.mirror_augmentation, config.ppo.normalize_rewards, config.ppo.reward_clip) == (True, True, 5.0)
    text = config_to_toml(config)
    for line in ("mirror_augmentation = true", "normalize_rewards = true", "reward_clip = 5.0"):
        assert line in text.splitlines(), line
    path = write(tmp_path, text)
    assert load_config(path) == config
    assert config_to_dict(config)["env"]["reward"] == {"velocity": 2.0}
    assert ExperimentConfig(ppo=PPOConfig(seed=3)).seed == 3  # one stored seed (see ExperimentConfig)
    assert load_config(write(tmp_path, "seed = 1\n[ppo]\n")).name == "exp"  # name defaults to the file stem


def test_one_seed_at_the_top_level():
    """The top-level seed is the one seed, stored once (as ppo.seed); [ppo] seed is
    refused, by the file and the dict loader alike (ERRORS), so none is overwritten."""
    with pytest.raises(ValueError, match=r"^f.toml: \[ppo\] seed = 2: set the seed at the top level \(seed = \.\.\.\)"):
        config_from_dict({"seed": 1, "ppo": {"seed": 2}}, source="f.toml")
    config = config_from_dict({"seed": 5, "ppo": {"epochs": 2}})
    assert (config.seed, config.ppo.seed, config_to_dict(config)["seed"]) == (5, 5, 5)
    assert "seed" not in config_to_dict(config)["ppo"]
    assert "seed" not in {f.name for f in dataclasses.fields(ExperimentConfig)}  # no second copy to fall out of step


@pytest.mark.parametrize("key, value", [("difficulty", 3), ("difficulty", True), ("max_obstacles", -1),
                                        ("max_steps", 0), ("integrator_accuracy", 1.5), ("integrator", "leapfrog"),
                                        ("frame_skip", 0), ("frame_skip", 2.0), ("min_excitation", 1.0)])
def test_an_env_field_has_one_rule(tmp_path, key, value):
    """EnvConfig runs the env's own check under the config's key: L2RunEnv's (course,
    integrator), or the wrapper's (frame_skip, min_excitation)."""
    import l2run
    from experiments.envs import FrameSkip, MinimumExcitation
    from tests.toy_env import ToyEnv

    wrappers = {"frame_skip": FrameSkip, "min_excitation": MinimumExcitation}
    with pytest.raises(ValueError) as from_env:
        wrappers[key](ToyEnv(), value) if key in wrappers else l2run.L2RunEnv(**{key: value})
    with pytest.raises(ValueError) as from_config:
        EnvConfig(**{key: value})
    assert str(from_config.value) == f"env.{from_env.value}"
    if type(value) is type(getattr(EnvConfig(), key)):  # else the file's value fails the type check first
        with pytest.raises(ValueError) as from_file:
            load_config(write(tmp_path, f"[env]\n{key} = {json.dumps(value)}\n"))
        assert str(from_file.value).endswith(f": env.{from_env.value}")


@pytest.mark.parametrize("name", bundled_configs())
def test_every_bundled_config_survives_the_round_trip(tmp_path, name):
    config = load_config(name)
    assert load_config(write(tmp_path, config_to_toml(config))) == config
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize("reward", [None, {}, {"velocity": 2.0, "survival": 0.5}])
def test_none_values_and_reward_tables_survive_the_round_trip(tmp_path, reward):
    """TOML has no null: None values are comment lines, and read back as the defaults they are."""
    config = ExperimentConfig(name="odd", description='a "quoted"\nline', gym_id=None,
                              env=EnvConfig(difficulty=1, model_path=None, reward=reward, frame_skip=2),
                              ppo=PPOConfig(seed=9, hidden_sizes=(32, 16), target_kl=None, max_grad_norm=0.5))
    lines = config_to_toml(config).splitlines()
    assert {"# gym_id = none (unset)", "# model_path = none (unset)", "# target_kl = none (unset)"} <= set(lines)
    assert ("# reward = none (unset)" in lines, "[env.reward]" in lines) == (reward is None, reward is not None)
    assert load_config(write(tmp_path, "\n".join(lines))) == config
    assert config_from_dict(config_to_dict(config)) == config
    pendulum = dataclasses.replace(config, gym_id="Pendulum-v1", ppo=PPOConfig(target_kl=0.01))
    assert load_config(write(tmp_path, config_to_toml(pendulum))) == pendulum


def test_piecewise_learning_rate_bends_a_linear_decay_without_a_jump(tmp_path):
    """Lengthening a line: a point ahead at the old schedule's rate keeps the rate
    continuous, identical up to the point, then decays toward the new horizon."""
    old = load_config("round2").ppo
    knot = 15_000_000
    text = config_to_toml(load_config("round2")).replace('lr_schedule = "linear"', 'lr_schedule = "piecewise"')
    text = text.replace("[ppo]\n", f"[ppo]\nlr_points = [[0, 3e-4], [{knot}, {old.learning_rate_at(knot)!r}], "
                                   "[30_000_000, 0]]\n", 1)
    config = load_config(write(tmp_path, text))
    new = config.ppo
    for steps in (0, 1_000_000, 12_759_040, knot):
        assert new.learning_rate_at(steps) == pytest.approx(old.learning_rate_at(steps), rel=1e-12)
    assert new.learning_rate_at(knot + 1) == pytest.approx(new.learning_rate_at(knot), rel=1e-6)
    assert new.learning_rate_at(22_500_000) == pytest.approx(old.learning_rate_at(knot) / 2)
    assert (new.learning_rate_at(30_000_000), new.learning_rate_at(10 ** 9)) == (0.0, 0.0)
    assert "lr_points = [" in config_to_toml(config) and "15000000," in config_to_toml(config)
    assert load_config(write(tmp_path, config_to_toml(config))) == config
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize("points, schedule, message", [
    (None, "piecewise", r'ppo.lr_points must list \[timesteps, learning rate\] pairs for lr_schedule = "piecewise"'),
    ([[0, 3e-4]], "linear", r'ppo.lr_points is only read by lr_schedule = "piecewise" \(lr_schedule is \'linear\'\)'),
    ([[0, 3e-4], [0, 1e-4]], "piecewise", r"lr_points must have non-negative timesteps in increasing order"),
    ([[-5, 3e-4]], "piecewise", r"lr_points must have non-negative timesteps in increasing order"),
    ([[0, -3e-4]], "piecewise", r"lr_points must have learning rates >= 0, got \(\(0, -0.0003\),\)"),
    ([[0, 3e-4, 1]], "piecewise", r"lr_points must be a non-empty list of \[timesteps, learning rate\] pairs"),
    ([], "piecewise", r"lr_points must be a non-empty list"),
])
def test_piecewise_learning_rate_errors_name_the_value(points, schedule, message):
    with pytest.raises(ValueError, match=message):
        PPOConfig(lr_schedule=schedule, lr_points=points)


def test_lr_points_of_the_wrong_type_are_one_line_from_toml(tmp_path):
    path = write(tmp_path, '[ppo]\nlr_schedule = "piecewise"\nlr_points = [[0, 3e-4], "x"]\n')
    with pytest.raises(ValueError, match=r"ppo.lr_points must be a list of lists of numbers or absent, got "):
        load_config(path)

"""Tier a: experiment configs (TOML -> ExperimentConfig) fail loudly and precisely."""
import pytest

from experiments.config import (ExperimentConfig, config_from_dict, config_to_dict, config_to_toml, load_config,
                                resolve_config_path)


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


@pytest.mark.parametrize("text, message", [
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
])
def test_config_errors_name_key_and_value(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


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
    for name in ("round1", "round2", "quick"):  # the bundled ones too
        bundled = load_config(name)
        assert load_config(write(tmp_path, config_to_toml(bundled))) == bundled
    assert config_to_dict(config)["env"]["reward"] == {"velocity": 2.0}
    assert ExperimentConfig(seed=3).ppo.seed == 3
    assert load_config(write(tmp_path, "seed = 1\n[ppo]\n")).name == "exp"  # name defaults to the file stem

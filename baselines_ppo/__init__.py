"""PPO over MPI for any gymnasium env with a Box action space (nothing of OpenSim).

    from baselines_ppo import train
    from baselines_ppo.config import PPOConfig
    train(lambda seed: gymnasium.make("Pendulum-v1"), PPOConfig(), "runs/pendulum")

``run`` holds ``train`` (the run protocol), ``trainer`` one iteration; each
module's docstring says what it owns. Importing the package imports none of them
(``train`` is loaded on first use), so ``export`` stays usable without TensorFlow or MPI.
"""


def __getattr__(name):
    if name == "train":
        from baselines_ppo.run import train

        return train
    raise AttributeError(f"module 'baselines_ppo' has no attribute {name!r}")

"""PPO over MPI for any gymnasium env with a Box action space (nothing of OpenSim).

    from baselines_ppo import train
    from baselines_ppo.config import PPOConfig
    train(lambda seed: gymnasium.make("Pendulum-v1"), PPOConfig(), "runs/pendulum")

Modules: ``config`` (PPOConfig), ``run`` (``train``: the run protocol -- lock,
stop requests, resume, checkpoints, exported policies), ``trainer`` (one
iteration: collect, update, log), ``rollout`` and ``buffer`` (collection, GAE),
``normalizers`` (observation and reward statistics), ``policy`` (TF networks),
``mpi_adam`` and ``tf_util`` (averaged updates, sync checks), ``mpi`` (the only
mpi4py user), ``threads`` (one thread per rank), ``symmetry`` (mirror
augmentation), ``checkpoint`` and ``compatibility`` (what a resume accepts),
``init_from``, ``logger``/``progress``, and ``export`` (the numpy-only policy
file). Importing the package imports none of them (``train`` is loaded on first
use), so ``export`` stays usable without TensorFlow or MPI.
"""


def __getattr__(name):
    if name == "train":
        from baselines_ppo.run import train

        return train
    raise AttributeError(f"module 'baselines_ppo' has no attribute {name!r}")

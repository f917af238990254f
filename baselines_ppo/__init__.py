"""PPO over MPI for any gymnasium env with a Box action space (nothing of OpenSim).

    from baselines_ppo.config import PPOConfig
    from baselines_ppo.trainer import train
    train(lambda seed: gymnasium.make("Pendulum-v1"), PPOConfig(), "runs/pendulum")

Modules: ``config`` (PPOConfig), ``trainer`` (the loop), ``rollout`` and
``buffer`` (collection, GAE), ``policy`` (TF networks), ``mpi_adam`` and
``tf_util`` (averaged updates, sync checks), ``mpi`` (the only mpi4py user),
``running_mean_std``, ``symmetry`` (mirror augmentation), ``checkpoint``,
``logger``/``progress``, and ``export`` (the numpy-only policy file). Nothing is imported here, so ``export`` stays
usable without TensorFlow or MPI.
"""

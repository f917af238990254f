"""A tiny symmetric gymnasium env for tests that need an env but not OpenSim (not collected by pytest)."""
import gymnasium as gym
import numpy as np

from baselines_ppo.symmetry import Symmetry

#: obs: entries 0 <-> 1 swap, 2 flips sign, 3 is its own mirror; actions: 0 <-> 1 swap.
TOY_SYMMETRY = Symmetry(obs_perm=[1, 0, 2, 3], obs_sign=[1, 1, -1, 1], act_perm=[1, 0])


class ToyEnv(gym.Env):
    """4 observations with a lopsided mean (so normalising statistics are not
    symmetric by chance), 2 actions, 10-step episodes."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return self.np_random.normal([3.0, -1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 1.0])

    def step(self, action):
        self.t += 1
        return self._obs(), float(5.0 + 10.0 * (action[0] - 0.5 * action[1])), False, self.t >= 10, {}

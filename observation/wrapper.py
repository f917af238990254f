"""``L2RunFeatures``: the gymnasium wrapper that observes the 82 features."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from .processor import FeatureProcessor
from .table import FEATURE_SIZE


class L2RunFeatures(gym.Wrapper):
    """Replace the raw 41 floats by the 82 normalised features (float32).

    Must wrap an env that yields every 10 ms raw observation (``L2RunEnv``,
    possibly inside ``ShapedReward``), not a frame-skipped one. Reward,
    termination, truncation and ``info`` pass through unchanged.

    When the simulator fails (``info["sim_error"]``, truncated) the env repeats
    its last good observation; the features then repeat too instead of
    reading a sudden stop into velocities and accelerations.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.processor = FeatureProcessor()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (FEATURE_SIZE,), dtype=np.float32)
        self._last_features = None

    def reset(self, *, seed=None, options=None):
        raw, info = self.env.reset(seed=seed, options=options)
        self._last_features = self.processor.reset(raw).astype(np.float32)
        return self._last_features.copy(), info

    def step(self, action):
        raw, reward, terminated, truncated, info = self.env.step(action)
        if "sim_error" not in info:
            self._last_features = self.processor.step(raw).astype(np.float32)
        return self._last_features.copy(), reward, terminated, truncated, info


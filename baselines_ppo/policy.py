"""The learner: a Gaussian MLP actor and a separate value MLP in TensorFlow 2.

Separate networks (as ppo1's MlpPolicy with gaussian_fixed_var) keep the value
loss, whose scale follows the returns, from pushing the actor's features around.
The log standard deviation is one learned vector, independent of the state.

TensorFlow is used for gradients only: :meth:`ActorCritic.loss_and_gradient`
is a ``tf.function`` returning the losses and ONE flat gradient vector; the
averaging across ranks and the Adam step happen in numpy outside it
(:mod:`baselines_ppo.mpi_adam`), and rollouts act with a numpy copy of the
weights (:meth:`ActorCritic.numpy_policy`).
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from baselines_ppo.numpy_policy import NumpyActorCritic

_LOG_2PI = math.log(2.0 * math.pi)

_TF_ACTIVATIONS = {"tanh": tf.tanh, "relu": tf.nn.relu, "elu": tf.nn.elu}


def orthogonal(rng: np.random.Generator, shape: Tuple[int, int], gain: float) -> np.ndarray:
    """An orthogonal (in, out) matrix scaled by ``gain`` (Saxe et al. 2014), drawn
    with numpy so the initial weights depend on the seed alone, not on TF's op seeds."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique -> uniformly distributed
    if rows < cols:
        q = q.T
    return (gain * q[:rows, :cols]).astype(np.float32)


class ActorCritic(tf.Module):
    """Gaussian policy pi(a|s) = N(actor(s), exp(log_std)^2) and value V(s).

    Shapes: observations (batch, observation_size) float32, already normalised;
    actions (batch, action_size).
    """

    def __init__(self, observation_size: int, action_size: int, hidden_sizes: Sequence[int],
                 activation: str, init_log_std: float, rng: np.random.Generator):
        super().__init__(name="actor_critic")
        self.observation_size = int(observation_size)
        self.action_size = int(action_size)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.activation = activation
        self._act_fn = _TF_ACTIVATIONS[activation]
        # Gains as in baselines/cleanrl: sqrt(2) for hidden layers, 0.01 for the
        # action mean (start near the centre with the spread set by log_std), 1 for V.
        self.actor = self._build("actor", [self.observation_size, *self.hidden_sizes, self.action_size], 0.01, rng)
        self.critic = self._build("critic", [self.observation_size, *self.hidden_sizes, 1], 1.0, rng)
        self.log_std = tf.Variable(np.full(self.action_size, init_log_std, dtype=np.float32), name="log_std")
        #: every trainable variable in a fixed order: the layout of the flat vectors.
        self.parameters: List[tf.Variable] = [v for layer in self.actor for v in layer]
        self.parameters.append(self.log_std)
        self.parameters += [v for layer in self.critic for v in layer]

    def _build(self, name, sizes, output_gain, rng):
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            gain = output_gain if i == len(sizes) - 2 else math.sqrt(2.0)
            kernel = tf.Variable(orthogonal(rng, (n_in, n_out), gain), name=f"{name}/kernel_{i}")
            bias = tf.Variable(np.zeros(n_out, dtype=np.float32), name=f"{name}/bias_{i}")
            layers.append((kernel, bias))
        return layers

    def _mlp(self, layers, x):
        for i, (kernel, bias) in enumerate(layers):
            x = tf.matmul(x, kernel) + bias
            if i < len(layers) - 1:
                x = self._act_fn(x)
        return x

    def mean_action(self, obs):
        return self._mlp(self.actor, obs)

    def value(self, obs):
        return self._mlp(self.critic, obs)[:, 0]

    def log_prob(self, obs, actions):
        """(batch,) log-density of ``actions`` under the policy at ``obs``."""
        z = (actions - self.mean_action(obs)) / tf.exp(self.log_std)
        return -0.5 * tf.reduce_sum(tf.square(z) + 2.0 * self.log_std + _LOG_2PI, axis=-1)

    def entropy(self):
        """Entropy of the (state-independent) action distribution, a scalar."""
        return tf.reduce_sum(self.log_std + 0.5 * (_LOG_2PI + 1.0))

    @tf.function
    def loss_and_gradient(self, obs, actions, old_log_probs, advantages, returns,
                          clip_range, entropy_coef, vf_coef):
        """PPO's clipped surrogate (Schulman et al. 2017, eq. 7) plus value loss.

        obs (B, obs_size), actions (B, act_size), old_log_probs/advantages/returns (B,)
        float32; the coefficients are float32 scalars (tensors, so changing them
        does not retrace). Returns (flat gradient of shape (n_params,), stats dict).
        """
        with tf.GradientTape() as tape:
            log_probs = self.log_prob(obs, actions)
            log_ratio = log_probs - old_log_probs
            ratio = tf.exp(log_ratio)
            clipped = tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range)
            policy_loss = -tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))
            value_loss = tf.reduce_mean(tf.square(self.value(obs) - returns))
            entropy = self.entropy()
            loss = policy_loss - entropy_coef * entropy + vf_coef * value_loss
        grads = tape.gradient(loss, self.parameters)
        flat = tf.concat([tf.reshape(g if g is not None else tf.zeros_like(v), [-1])
                          for g, v in zip(grads, self.parameters)], axis=0)
        stats = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            # (r - 1) - log r: an unbiased, always non-negative estimate of KL(old || new)
            "approx_kl": tf.reduce_mean((ratio - 1.0) - log_ratio),
            "clipfrac": tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip_range, tf.float32)),
        }
        return flat, stats

    @tf.function
    def symmetry_loss_and_gradient(self, obs, mirrored_obs, act_perm, act_sign, action_low, action_high):
        """The mirror-symmetry loss of Yu, Turk and Liu (2018) and its flat gradient.

        obs, mirrored_obs (B, obs_size) float32: states and their mirror images, both
        normalised alike; act_perm (act_size,) int32 and act_sign (act_size,) float32:
        the action mirror; action_low/high (act_size,) float32: the env's bounds
        (+-inf: none). Loss: mean over the batch of the squared distance between
        clip(mu(s)) and the mirror of clip(mu(mirror(s))), 0 for a policy that acts
        alike on both sides. Clipped, because the env clips: a trained runner's
        means lie outside [0, 1] three times in four, where a difference changes
        nothing the body feels (unclipped, the line's policy scores 43, clipped 5.5).
        A function of its own so that PPO's loss (and a run without this term)
        stays as it was, bit for bit.
        """
        with tf.GradientTape() as tape:
            applied = tf.clip_by_value(self.mean_action(obs), action_low, action_high)
            mirrored = tf.clip_by_value(self.mean_action(mirrored_obs), action_low, action_high)
            mirrored = tf.gather(mirrored, act_perm, axis=1) * act_sign
            loss = tf.reduce_mean(tf.reduce_sum(tf.square(applied - mirrored), axis=-1))
        grads = tape.gradient(loss, self.parameters)
        flat = tf.concat([tf.reshape(g if g is not None else tf.zeros_like(v), [-1])
                          for g, v in zip(grads, self.parameters)], axis=0)
        return flat, loss

    # --- weights as numpy ------------------------------------------------------

    def get_weights(self) -> Dict[str, np.ndarray]:
        """{variable name: array}, for checkpoints."""
        return {v.name.split(":")[0]: v.numpy() for v in self.parameters}

    def set_weights(self, weights: Dict[str, np.ndarray], source: str = "weights") -> None:
        """Load :meth:`get_weights` output; a missing or misshapen entry is an error
        naming the variable, both shapes and ``source``."""
        for v in self.parameters:
            name = v.name.split(":")[0]
            if name not in weights:
                raise ValueError(f"{source} has no variable {name!r} (has: {', '.join(sorted(weights))})")
            value = np.asarray(weights[name])
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"{source}: variable {name!r} has shape {tuple(value.shape)}, "
                                 f"the network needs {tuple(v.shape)}")
            v.assign(value.astype(np.float32))

    def numpy_policy(self) -> NumpyActorCritic:
        """A numpy copy of the current weights to act with during a rollout."""
        def layers(pairs):
            return [(k.numpy(), b.numpy()) for k, b in pairs]
        return NumpyActorCritic(layers(self.actor), layers(self.critic), self.log_std.numpy(), self.activation)

"""A trained policy as one small ``.npz`` file, usable with numpy alone.

Evaluation, rendering and submission machines need neither TensorFlow nor MPI:
this module imports neither. The file holds the actor weights, the activation,
the observation normaliser statistics it was trained with (evaluating on other
statistics would be a different policy), observation/action sizes, action
bounds, and a JSON metadata string (e.g. the env config of the run).

    policy = load_policy("runs/round2/best_policy.npz")
    action = policy.act(observation)   # deterministic: the expected clipped action
"""
from __future__ import annotations

import io
import math
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from baselines_ppo.numpy_policy import Layers, activate, portable_mlp_forward

FORMAT = "baselines_ppo.policy/1"
ACT_MODES = ("expected", "mean")
#: How a policy may be run: its deterministic modes, or "sample", drawn as in training (``sample``).
ACTS = ACT_MODES + ("sample",)
#: metadata key of the deterministic mode ``act`` uses by default (set when a runner is selected)
ACT_MODE_KEY = "act_mode"
POLICY_FILE = "policy.npz"
BEST_POLICY_FILE = "best_policy.npz"

PathLike = Union[str, os.PathLike]


def expected_clipped_gaussian(mean: np.ndarray, std: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """E[clip(X, low, high)] for X ~ N(mean, std), element-wise (infinite bounds allowed).

    With g(c) = E[max(X - c, 0)] = (mean - c) Phi(z) + std phi(z), z = (mean - c) / std:
    E[clip(X, low, high)] = E[max(X, low)] - g(high) = low + g(low) - g(high)
    (a bound at infinity drops its term: E[max(X, -inf)] = mean, g(+inf) = 0).
    """
    mean = np.asarray(mean, np.float64)
    std = np.broadcast_to(np.asarray(std, np.float64), mean.shape)
    low = np.broadcast_to(np.asarray(low, np.float64), mean.shape)
    high = np.broadcast_to(np.asarray(high, np.float64), mean.shape)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    exp = np.vectorize(math.exp, otypes=[np.float64])  # libm's, as erf: the same bits on every CPU

    def excess(c):  # g(c), only where c is finite (0 elsewhere, unused)
        d = np.where(np.isfinite(c), mean - c, 0.0)
        z = d / std
        return d * 0.5 * (1.0 + erf(z / math.sqrt(2.0))) + std * exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    at_least_low = np.where(np.isfinite(low), low + excess(low), mean)
    above_high = np.where(np.isfinite(high), excess(high), 0.0)
    return at_least_low - above_high


class PolicyFileError(ValueError):
    """The file is not an exported policy, or it is damaged."""


class ExportedPolicy:
    """A deterministic policy: ``act(obs) -> action``.

    obs of shape (observation_size,) or (batch, observation_size), the raw
    observation from the env; returns the Gaussian mean, clipped to the action
    bounds, of shape (action_size,) or (batch, action_size).
    """

    def __init__(self, actor: Layers, log_std: np.ndarray, activation: str, obs_mean: np.ndarray,
                 obs_std: np.ndarray, obs_clip: float, action_low: np.ndarray, action_high: np.ndarray,
                 metadata: Optional[Dict[str, Any]] = None, path: Optional[str] = None):
        self.actor = [(np.asarray(k, np.float64), np.asarray(b, np.float64)) for k, b in actor]
        self.log_std = np.asarray(log_std, np.float64)
        self.activation = str(activation)
        activate(self.activation, np.zeros(1))  # fail early on an unknown name
        self.obs_mean = np.asarray(obs_mean, np.float64)
        self.obs_std = np.asarray(obs_std, np.float64)
        self.obs_clip = float(obs_clip)
        self.action_low = np.asarray(action_low, np.float64)
        self.action_high = np.asarray(action_high, np.float64)
        self.metadata = dict(metadata or {})
        self.path = path
        self.default_mode = str(self.metadata.get(ACT_MODE_KEY, "expected"))
        if self.default_mode not in ACT_MODES:
            raise PolicyFileError(f"{path} records act_mode {self.default_mode!r}, expected one of {ACT_MODES}")

    @property
    def observation_size(self) -> int:
        return int(self.actor[0][0].shape[0])

    @property
    def action_size(self) -> int:
        return int(self.actor[-1][0].shape[1])

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip)

    def act(self, obs, mode: Optional[str] = None) -> np.ndarray:
        """The deterministic action for ``obs``.

        mode None: the mode the file records (``act_mode`` in its metadata, written
        by ``l2run select --ship`` for the mode that scored best), else "expected".
        mode "expected": E[clip(a, low, high)] for a ~ N(mean, std),
        the action the trained, clipped Gaussian policy applies on average.
        The env clips every sample it is given, so with a wide std the clipped
        mean is not what the policy did in training: with mean -0.5 and std 1
        it says 0, where the policy applied 0.2 on average. For muscle
        excitations, low-pass filtered by activation dynamics, the average is
        what moved the body (on an early L2Run policy, 0.48 m instead of 0.12 m
        over 4 seeds). mode "mean": the Gaussian mean, clipped to the bounds.
        """
        mean, single = self._mean(obs)
        mode = self.default_mode if mode is None else mode
        if mode == "mean":
            action = np.clip(mean, self.action_low, self.action_high)
        elif mode == "expected":
            action = expected_clipped_gaussian(mean, self.std, self.action_low, self.action_high)
        else:
            raise ValueError(f"act mode must be 'expected' or 'mean', got {mode!r}")
        return action[0] if single else action

    def sample(self, obs, rng: np.random.Generator) -> np.ndarray:
        """An action drawn as in training, mean + std * N(0, 1) from ``rng``, clipped
        to the bounds as the env clips it. Not the grader's action (the 2017 score
        is deterministic) but what the training distance measures: scoring both
        tells how much of a line's progress is the policy's noise shrinking."""
        mean, single = self._mean(obs)
        action = np.clip(mean + self.std * rng.standard_normal(mean.shape), self.action_low, self.action_high)
        return action[0] if single else action

    @property
    def std(self) -> np.ndarray:
        """The Gaussian's std per action (``exp`` per element: the same bits on every CPU)."""
        return np.array([math.exp(v) for v in self.log_std])

    def _mean(self, obs) -> Tuple[np.ndarray, bool]:
        """(the Gaussian mean for a batch of observations, whether ``obs`` was one)."""
        obs = np.asarray(obs, dtype=np.float64)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if batch.ndim != 2 or batch.shape[1] != self.observation_size:
            raise ValueError(f"policy {self.path or ''} expects observations of size {self.observation_size}, "
                             f"got an array of shape {obs.shape}")
        return portable_mlp_forward(self.actor, self.activation, self.normalize(batch)), single

    def __repr__(self):
        hidden = [k.shape[1] for k, _ in self.actor[:-1]]
        return (f"ExportedPolicy({self.observation_size} -> {hidden} {self.activation} -> "
                f"{self.action_size}, path={self.path!r})")


def export_policy(path: PathLike, actor: Layers, log_std: np.ndarray, activation: str,
                  obs_mean: np.ndarray, obs_std: np.ndarray, obs_clip: float,
                  action_low: np.ndarray, action_high: np.ndarray,
                  metadata: Optional[Dict[str, Any]] = None) -> Path:
    """Write the policy to ``path`` atomically (temp file, fsync, rename).

    A reader never sees a half-written file, even if the trainer is killed mid-write.
    obs_clip may be ``inf`` (no normalisation: mean 0, std 1).
    """
    path = Path(path)
    arrays: Dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "activation": np.array(activation),
        "n_layers": np.array(len(actor)),
        "log_std": np.asarray(log_std, np.float32),
        "obs_mean": np.asarray(obs_mean, np.float64),
        "obs_std": np.asarray(obs_std, np.float64),
        "obs_clip": np.array(float(obs_clip)),
        "action_low": np.asarray(action_low, np.float64),
        "action_high": np.asarray(action_high, np.float64),
        "metadata": np.array(json.dumps(metadata or {}, sort_keys=True)),
    }
    for i, (kernel, bias) in enumerate(actor):
        arrays[f"kernel_{i}"] = np.asarray(kernel, np.float32)
        arrays[f"bias_{i}"] = np.asarray(bias, np.float32)
    data = io.BytesIO()
    np.savez(data, **arrays)
    atomic_write_bytes(path, data.getvalue())
    return path


def save_policy(path: PathLike, policy: ExportedPolicy, metadata: Optional[Dict[str, Any]] = None) -> Path:
    """Write a loaded or computed ``policy`` to ``path`` (atomically, as
    :func:`export_policy`), with ``metadata`` instead of its own when given."""
    return export_policy(path, policy.actor, policy.log_std, policy.activation, policy.obs_mean, policy.obs_std,
                         policy.obs_clip, policy.action_low, policy.action_high,
                         policy.metadata if metadata is None else metadata)


def with_act_mode(policy: ExportedPolicy, path: PathLike, mode: str, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``policy`` to ``path`` recording ``mode`` as its default act mode
    (and ``extra`` in its metadata, e.g. how it was selected)."""
    if mode not in ACT_MODES:
        raise ValueError(f"act mode must be one of {ACT_MODES}, got {mode!r}")
    return save_policy(path, policy, {**policy.metadata, **(extra or {}), ACT_MODE_KEY: mode})


def load_policy(path: PathLike) -> ExportedPolicy:
    """Read a file written by :func:`export_policy` (or a run dir: see :func:`find_policy`).

    Raises FileNotFoundError if missing, PolicyFileError (naming the path) if the
    file is not a policy or is damaged.
    """
    path = Path(path)
    if path.is_dir():
        path = find_policy(path)
    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    return _parse_policy(path, path)


def policy_from_bytes(data: bytes, path: PathLike) -> ExportedPolicy:
    """The policy in ``data``, the bytes of a file written by :func:`export_policy`
    (``path`` names it in errors and in the policy). A caller that must act with the
    very bytes it read once, such as a selection among the files of a run that is
    still rewriting them, reads the file itself and parses it here."""
    return _parse_policy(io.BytesIO(data), Path(path))


def _first_sentence(err: Exception) -> str:
    """The first sentence of ``err``: numpy's error for a file that is not a zip
    archive goes on to advise unpickling it, which is no advice for a policy file."""
    return str(err).split(". ")[0].rstrip(".")


def _parse_policy(source, path: Path) -> ExportedPolicy:
    """The policy in ``source`` (a path or a binary file object); errors name ``path``."""
    try:
        with np.load(source, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise PolicyFileError(f"{path} is not a readable policy file: expected the .npz archive a run "
                              f"exports (policy.npz, snapshots/policy-N.npz); numpy could not read it as one "
                              f"({type(err).__name__}: {_first_sentence(err)})") from err
    if "format" not in data or str(data["format"]) != FORMAT:
        raise PolicyFileError(f"{path} is not a policy file written by baselines_ppo.export "
                              f"(format {str(data.get('format', 'missing'))!r}, expected {FORMAT!r})")
    try:
        n_layers = int(data["n_layers"])
        actor = [(data[f"kernel_{i}"], data[f"bias_{i}"]) for i in range(n_layers)]
        metadata = json.loads(str(data["metadata"]))
        policy = ExportedPolicy(actor, data["log_std"], str(data["activation"]), data["obs_mean"],
                                data["obs_std"], float(data["obs_clip"]), data["action_low"],
                                data["action_high"], metadata, str(path))
    except (KeyError, ValueError, TypeError) as err:
        raise PolicyFileError(f"{path} is a damaged policy file ({type(err).__name__}: {err})") from err
    _check_shapes(policy, path)
    return policy


def _check_shapes(policy: ExportedPolicy, path: Path) -> None:
    previous = policy.observation_size
    for i, (kernel, bias) in enumerate(policy.actor):
        if kernel.ndim != 2 or kernel.shape[0] != previous or bias.shape != (kernel.shape[1],):
            raise PolicyFileError(f"{path} is a damaged policy file: layer {i} has kernel {kernel.shape} "
                                  f"and bias {bias.shape} after a layer of width {previous}")
        previous = kernel.shape[1]
    for name, value, size in (("obs_mean", policy.obs_mean, policy.observation_size),
                              ("obs_std", policy.obs_std, policy.observation_size),
                              ("action_low", policy.action_low, policy.action_size),
                              ("action_high", policy.action_high, policy.action_size),
                              ("log_std", policy.log_std, policy.action_size)):
        if value.shape != (size,):
            raise PolicyFileError(f"{path} is a damaged policy file: {name} has shape {value.shape}, expected ({size},)")


def find_policy(run: PathLike, best: bool = False) -> Path:
    """The exported policy of a run directory (or ``run`` itself if it is a file).

    best=True prefers ``best_policy.npz`` (best mean episode distance, else
    return); otherwise the latest ``policy.npz``. Falls back to whichever exists,
    then to the policy kept beside the latest checkpoint (a saved line).
    """
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise FileNotFoundError(f"{run} is neither a policy file nor a run directory")
    order: Tuple[str, ...] = (BEST_POLICY_FILE, POLICY_FILE) if best else (POLICY_FILE, BEST_POLICY_FILE)
    for name in order:
        if (run / name).is_file():
            return run / name
    # A line kept in the repository (save_line.sh) has its policy next to its checkpoint.
    latest = run / "checkpoints" / "latest"
    if latest.is_file():
        kept = run / "checkpoints" / latest.read_text().strip() / POLICY_FILE
        if kept.is_file():
            return kept
    raise FileNotFoundError(f"{run} holds no exported policy ({' or '.join(order)}, or "
                            f"checkpoints/<latest>/{POLICY_FILE}); the trainer writes one at every checkpoint")


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never
    a mix: write a temp file in the same directory, fsync, rename, fsync the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


def fsync_dir(directory: PathLike) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


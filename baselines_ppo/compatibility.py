"""Whether a checkpoint can continue as this run: the one check every resume goes through.

The trainer's rank 0 makes it (:mod:`baselines_ppo.run`) and every rank raises
the same error, so every launch path (``l2run train``, mpirun or srun by hand,
``train()`` from Python) refuses alike; a launcher may call it early, without the env's sizes.

* Networks (hidden_sizes, activation, observation and action sizes): the weights
  fit no other, so a difference is a CheckpointError naming both values.
* The task (the ``task`` dict given to ``train``: for L2Run the env and gym_id):
  a run resumed on another task would continue its curves, best policy and step
  count on something else, so a difference is a :class:`TaskChanged` listing
  "env.key = old -> new" (sections, i.e. nested dicts, flattened one level). A
  key the checkpoint did not record is not compared: that setting is newer than
  the checkpoint, which was trained with its default. A checkpoint that recorded
  no task (older ones) is compared through the same-named entries of its metadata.
* Every other PPO setting (learning rate, ...) may change: listed for the log.

A new run started from a checkpoint (``init_from``) needs only networks that fit;
another task there is a note (:func:`task_changes`).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

from baselines_ppo.checkpoint import CheckpointData, CheckpointError
from baselines_ppo.config import PPOConfig


class TaskChanged(CheckpointError):
    """The checkpoint was trained on another task than this run's; ``changes``
    lists "key = old -> new" for each differing setting."""

    def __init__(self, message: str, changes: Sequence[str] = ()):
        super().__init__(message)
        self.changes = list(changes)


def check_compatible(data: CheckpointData, config: PPOConfig, task: Optional[Mapping[str, Any]] = None,
                     observation_size: Optional[int] = None, action_size: Optional[int] = None) -> List[str]:
    """Raise TaskChanged or CheckpointError as the module docstring says (sizes None:
    not compared); returns the other PPO settings that changed ("key: old -> new")."""
    changes = task_changes(task, data.task, data.metadata)
    if changes:
        raise TaskChanged(f"checkpoint {data.path} was trained on another task ({', '.join(changes)}); resume "
                          "with the run's own config (the settings it was trained with), or train the new task "
                          "in another run directory", changes)
    saved = network_of(data.config, data.spaces.get("observation_size"), data.spaces.get("action_size"))
    for key, wanted in network_of(config.to_dict(), observation_size, action_size).items():
        if wanted is not None and saved[key] != wanted:
            raise CheckpointError(
                f"checkpoint {data.path} was trained with {key} = {saved[key]}, but this run has "
                f"{key} = {wanted}; resume with the checkpoint's settings or pick another run directory")
    return setting_changes(data.config, config)


def setting_changes(recorded: Mapping[str, Any], config: PPOConfig) -> List[str]:
    """"key: old -> new" for each PPO setting of ``config`` that differs from the
    ``recorded`` one (a PPOConfig.to_dict() from a checkpoint), sorted by key."""
    # A setting newer than the checkpoint's code was at its default then.
    recorded = {**PPOConfig().to_dict(), **recorded}
    return [f"{key}: {recorded[key]!r} -> {value!r}" for key, value in sorted(config.to_dict().items())
            if recorded[key] != value]


def network_of(ppo: Mapping[str, Any], observation_size: Optional[int], action_size: Optional[int]) -> Dict[str, Any]:
    """The settings that shape the networks, from a PPOConfig.to_dict() and the env's sizes."""
    return {"observation_size": observation_size, "action_size": action_size,
            "hidden_sizes": list(ppo.get("hidden_sizes", [])), "activation": ppo.get("activation")}


def task_changes(task: Optional[Mapping[str, Any]], recorded: Optional[Mapping[str, Any]],
                 metadata: Optional[Mapping[str, Any]] = None) -> List[str]:
    """"key = old -> new" for each setting of ``task`` that differs from the
    ``recorded`` one (None: ``metadata``'s), sorted by key ([] without a task);
    the module docstring says which keys are compared."""
    if task is None:
        return []
    if recorded is None:
        recorded = {key: value for key, value in (metadata or {}).items() if key in task}
    old, new = _flat(recorded), _flat(task)
    return [f"{key} = {old[key]!r} -> {new.get(key)!r}" for key in sorted(old) if old[key] != new.get(key)]


def _flat(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """{"env": {"a": 1}, "gym_id": None} -> {"env.a": 1, "gym_id": None}, in JSON's types
    (what a checkpoint gives back: lists for tuples, ...)."""
    flat: Dict[str, Any] = {}
    for key, value in json.loads(json.dumps(dict(settings))).items():
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": item for inner, item in value.items()})
        else:
            flat[key] = value
    return flat

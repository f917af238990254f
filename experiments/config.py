"""Experiment configs: TOML files mapped onto typed dataclasses.

    name = "round2"            # run name; default run dir runs/<name>
    seed = 0                   # the run's one seed (see ExperimentConfig)
    description = "..."

    [env]                      # experiments.envs.EnvConfig
    difficulty = 2
    [env.reward]               # optional {term: weight}
    ...
    [ppo]                      # baselines_ppo.config.PPOConfig
    steps_per_rank = 2048

One loader, :func:`config_from_dict`, serves the CLI and the tests: it checks
each value's type against its field's annotation; each dataclass's
``__post_init__`` checks the values, so a field's rule lives next to the field.
Unknown sections or keys are an error listing the valid ones; every error is one
line naming the file, the key and the value. A file with neither [env] nor [ppo]
is an error: it would train on the dataclasses' defaults, which are no bundled
config (the 2017 integrator, no excitation floor, 2048 steps per rank).
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Union

import tomli_w

from baselines_ppo.config import PPOConfig
from experiments.envs import EnvConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclasses.dataclass
class ExperimentConfig:
    """One training run: the env, the algorithm, and run-level settings.

    The one base seed is stored as ``ppo.seed`` (the trainer, which knows nothing
    of experiments, takes it from its PPOConfig); files give it at the top level
    (``seed = 3``), since it seeds the env too, and ``[ppo] seed`` is refused, so
    that no config holds two seeds. In code: ``ExperimentConfig(ppo=PPOConfig(seed=3))``."""

    name: str = "experiment"
    """Run name; the default run directory is runs/<name>."""
    description: str = ""
    """Free text: what this config is for."""
    gym_id: Optional[str] = None
    """Train on this gymnasium env id (e.g. "Pendulum-v1") instead of L2Run; [env] is
    then ignored. For fast smoke tests of the PPO wiring without OpenSim."""
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    """The [env] section."""
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    """The [ppo] section, and the seed."""

    @property
    def seed(self) -> int:
        """Base seed (``ppo.seed``); rank r seeds numpy, TensorFlow and its env with seed + 10000 * r."""
        return self.ppo.seed

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty string without '/', got {self.name!r}")


def config_to_dict(config: ExperimentConfig) -> Dict[str, Any]:
    """Plain nested dict (JSON-able; None for unset values), the seed at the top
    level: the inverse of :func:`config_from_dict`."""
    data = {"name": config.name, "seed": config.seed, **dataclasses.asdict(config), "ppo": config.ppo.to_dict()}
    del data["ppo"]["seed"]
    return data


def config_from_dict(data: Dict[str, Any], source: str = "config") -> ExperimentConfig:
    """The one loader: nested dicts (a parsed TOML file, :func:`config_to_dict`'s
    output) -> a validated ExperimentConfig; errors are one line starting with ``source``."""
    data, ppo = dict(data), data.get("ppo", {})
    try:
        if isinstance(ppo, dict) and "seed" in ppo:
            raise ValueError(f"[ppo] seed = {ppo['seed']!r}: set the seed at the top level (seed = ...), "
                             "not in [ppo]: it seeds the env as well as PPO")
        if isinstance(ppo, dict) and "seed" in data:
            data["ppo"] = {**ppo, "seed": data.pop("seed")}
        return _build(ExperimentConfig, data)
    except ValueError as err:  # the top-level seed is stored as ppo.seed: name it as the file does
        raise ValueError(f"{source}: {err}".replace("ppo.seed", "seed")) from None


def _build(cls, values: Dict[str, Any], section: str = ""):
    """``cls(**values)``: each value checked against its field's annotation, each
    table built into its field's dataclass (``section`` names it in errors)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        hint, name = hints.get(key), f"{section}.{key}" if section else key
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ValueError(f"[{name}] must be a section (table), got {value!r}")
            kwargs[key] = _build(hint, value, name)
        elif hint is not None:
            kwargs[key] = _convert(hint, value)
            if kwargs[key] is _INVALID:
                raise ValueError(f"{name} must be {_describe(hint)}, got {value!r} ({type(value).__name__})")
    unknown = ", ".join(sorted(set(values) - set(hints)))
    if unknown:
        valid = set(hints) - {"seed"} if section else set(hints) | {"seed"}  # the seed is given at the top level
        what = f"key(s) {unknown} in [{section}]" if section else f"key(s) or section(s) {unknown}"
        raise ValueError(f"unknown {what}; valid: {', '.join(sorted(valid))}")
    return cls(**kwargs)


_INVALID = object()


def _convert(hint, value):
    """``value`` as type ``hint`` (only the lossless int -> float and list -> tuple), or _INVALID."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        converted = [_convert(arg, value) for arg in args if arg is not type(None)]
        return next((c for c in converted if c is not _INVALID), _INVALID)
    if hint is float and _is_int(value):
        return float(value)
    if hint is float:
        return value if isinstance(value, float) and math.isfinite(value) else _INVALID
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _INVALID
        items = tuple(_convert(args[0], v) for v in value)
        return _INVALID if _INVALID in items else items
    expected = {bool: bool, int: int, str: str, dict: dict}[origin or hint]
    ok = isinstance(value, expected) and (expected is not int or _is_int(value))
    return (dict(value) if expected is dict else value) if ok else _INVALID


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        inner = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(inner) + (" or absent" if type(None) in args else "")
    if origin is tuple:
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        if typing.get_origin(args[0]) is tuple:
            return f"a list of lists of {plural.get(typing.get_args(args[0])[0], 'values')}"
        return f"a list of {plural.get(args[0], str(args[0]))}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table"}
    return names.get(hint, names.get(origin, str(hint)))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_config_path(name_or_path: Union[str, Path]) -> Path:
    """A TOML path, or the name of a bundled config ("quick", "round1", "round2")."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = CONFIG_DIR / f"{name_or_path}.toml"
    if path.suffix == "" and bundled.is_file():
        return bundled
    available = ", ".join(bundled_configs())
    raise FileNotFoundError(f"no config file {name_or_path}; bundled configs: {available}")


def load_config(name_or_path: Union[str, Path]) -> ExperimentConfig:
    """Read a TOML experiment config (a path or a bundled name). ``name`` defaults
    to the file's stem."""
    path = resolve_config_path(name_or_path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
    sections = any(section in data for section in ("env", "ppo"))
    what = "is empty" if not data else f"has no [env] or [ppo] section (only {', '.join(sorted(data))})"
    data.setdefault("name", path.stem)
    config = config_from_dict(data, source=str(path))  # a wrong key or value is the more precise error
    if not sections:
        raise ValueError(f"{path} {what}: it would train on built-in defaults that match no bundled config; "
                         f"start from a bundled config ({', '.join(bundled_configs())} in {CONFIG_DIR})")
    return config


def bundled_configs() -> list:
    """Names of the configs in experiments/configs/ (quick, round1, round2)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def config_to_toml(config: ExperimentConfig) -> str:
    """The config as TOML that :func:`load_config` reads back to an equal config.

    Every field is listed, defaults included, so the file shows every value a
    run used. TOML has no null: a None value (every such field defaults to
    None) is written as a comment, ``# target_kl = none (unset)``. Values are
    formatted by tomli_w; a section's tables (``[env.reward]``) follow its values.
    """
    data = config_to_dict(config)
    sections = {"": {k: v for k, v in data.items() if k not in ("env", "ppo")}, "env": data["env"], "ppo": data["ppo"]}
    lines = []
    for section, values in sections.items():
        lines += [f"\n[{section}]"] if section else []
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = none (unset)")
            elif not isinstance(value, dict):
                lines.append(tomli_w.dumps({key: value}).rstrip("\n"))
        tables = {key: value for key, value in values.items() if isinstance(value, dict)}
        if tables:
            lines.append("\n" + tomli_w.dumps({section: tables}).rstrip("\n"))
    return "\n".join(lines) + "\n"

"""Experiment configs: TOML files mapped onto typed dataclasses.

    name = "round2"            # run name; default run dir runs/<name>
    seed = 0                   # base seed of every rank (copied into ppo.seed)
    description = "..."

    [env]                      # experiments.envs.EnvConfig
    difficulty = 2
    [env.reward]               # optional {term: weight}
    ...
    [ppo]                      # baselines_ppo.config.PPOConfig
    steps_per_rank = 2048

Unknown sections or keys are an error listing the valid ones; a value of the
wrong type is an error naming the key and the value. A file with neither [env]
nor [ppo] (an empty file, say) is an error listing the bundled configs: it would
train on the dataclasses' defaults, which are no bundled config (the 2017
integrator, no excitation floor, 2048 steps per rank). A key left out of a
section takes the default its docstring gives, and a run's saved config.toml
(:func:`config_to_toml`) lists every value used. The CLI only maps its flags
onto these objects.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Union

from baselines_ppo.config import PPOConfig
from experiments.envs import EnvConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclasses.dataclass
class ExperimentConfig:
    """One training run: the env, the algorithm, and run-level settings."""

    name: str = "experiment"
    """Run name; the default run directory is runs/<name>."""
    seed: int = 0
    """Base seed; rank r seeds numpy, TensorFlow and its env with seed + 10000 * r."""
    description: str = ""
    """Free text: what this config is for."""
    gym_id: Optional[str] = None
    """Train on this gymnasium env id (e.g. "Pendulum-v1") instead of L2Run; [env] is
    then ignored. For fast smoke tests of the PPO wiring without OpenSim."""
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    """The [env] section."""
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    """The [ppo] section."""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty string without '/', got {self.name!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.ppo.seed != self.seed:
            self.ppo = dataclasses.replace(self.ppo, seed=self.seed)


def config_to_dict(config: ExperimentConfig) -> Dict[str, Any]:
    """Plain nested dict (JSON/TOML-able); the inverse of :func:`config_from_dict`."""
    data = dataclasses.asdict(config)
    data["ppo"] = config.ppo.to_dict()
    return data


def config_from_dict(data: Dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build and validate an ExperimentConfig from nested dicts, strictly typed."""
    data = dict(data)
    sections = {"env": EnvConfig, "ppo": PPOConfig}
    top_fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = sorted(set(data) - top_fields)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) or section(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(top_fields))}")
    kwargs: Dict[str, Any] = {}
    for key, value in data.items():
        if key in sections:
            if not isinstance(value, dict):
                raise ValueError(f"{source}: [{key}] must be a section (table), got {value!r}")
            if key == "ppo" and "seed" in value:
                raise ValueError(f"{source}: set the seed at the top level (seed = ...), not in [ppo]")
            kwargs[key] = _build(sections[key], value, source, key)
        else:
            kwargs[key] = _coerce(ExperimentConfig, key, value, source, "")
    try:
        return ExperimentConfig(**kwargs)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def _build(cls, values: Dict[str, Any], source: str, section: str):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)} in [{section}]; "
                         f"valid: {', '.join(sorted(fields))}")
    kwargs = {key: _coerce(cls, key, value, source, section + ".") for key, value in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as err:  # the dataclass's own checks name the field
        raise ValueError(f"{source}: {err}") from None


def _coerce(cls, key: str, value: Any, source: str, prefix: str) -> Any:
    """Check ``value`` against the annotation of field ``key`` of ``cls``; convert
    the lossless cases (int -> float, list -> tuple)."""
    hint = typing.get_type_hints(cls)[key]
    converted = _convert(hint, value)
    if converted is _INVALID:
        raise ValueError(f"{source}: {prefix}{key} must be {_describe(hint)}, "
                         f"got {value!r} ({type(value).__name__})")
    return converted


_INVALID = object()


def _convert(hint, value):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                converted = _convert(arg, value)
                if converted is not _INVALID:
                    return converted
        return _INVALID
    if hint is bool:
        return value if isinstance(value, bool) else _INVALID
    if hint is int:
        return value if _is_int(value) else _INVALID
    if hint is float:
        if _is_int(value) or (isinstance(value, float) and math.isfinite(value)):
            return float(value)
        return _INVALID
    if hint is str:
        return value if isinstance(value, str) else _INVALID
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _INVALID
        items = [_convert(args[0], v) for v in value]
        return _INVALID if any(i is _INVALID for i in items) else tuple(items)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            return _INVALID
        return dict(value)
    return value


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        inner = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(inner) + (" or absent" if type(None) in args else "")
    if origin is tuple:
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
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
    run used; None values (TOML has no null) are written as comments, e.g.
    ``# target_kl = none (unset)``, since those fields default to None.
    """
    data = config_to_dict(config)
    lines = []
    for key in ("name", "seed", "description", "gym_id"):
        if data[key] is not None:
            lines.append(f"{key} = {_toml_value(data[key])}")
        else:
            lines.append(f"# {key} = none (unset)")
    for section in ("env", "ppo"):
        values = dict(data[section])
        if section == "ppo":
            values.pop("seed")  # the top-level seed
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = none (unset)")
            elif key not in tables:
                lines.append(f"{key} = {_toml_value(value)}")
        for key, table in tables.items():
            lines.append("")
            lines.append(f"[{section}.{key}]")
            for sub, value in table.items():
                lines.append(f"{_toml_key(sub)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")

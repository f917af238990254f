"""Where the musculoskeletal model comes from.

The 2017 model file ships inside the ``osim-rl`` package's data (``osim/models``);
we locate it with importlib.resources and never import ``osim.env`` (it pulls in
the old gym stack and a redis client we do not need).
"""
from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Optional

DEFAULT_MODEL_NAME = "gait9dof18musc.osim"


def default_model_path() -> Path:
    """Path of ``gait9dof18musc.osim`` inside the installed ``osim`` package."""
    try:
        models = importlib.resources.files("osim") / "models"
    except ModuleNotFoundError as err:  # pragma: no cover - dependency missing
        raise FileNotFoundError(
            "the 'osim-rl' package (source of gait9dof18musc.osim) is not installed; "
            "pip install osim-rl==3.0.11 or pass model_path=..."
        ) from err
    return Path(str(models / DEFAULT_MODEL_NAME))


def resolve_model_path(model_path: Optional[str | os.PathLike] = None) -> Path:
    """Return a readable .osim path, or raise FileNotFoundError/ValueError naming it."""
    path = default_model_path() if model_path is None else Path(model_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {str(path)!r} (expected an .osim file)")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"model file is not readable: {str(path)!r}")
    if path.suffix.lower() != ".osim":
        raise ValueError(f"model file {str(path)!r} is not an .osim file")
    return path

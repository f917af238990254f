"""argparse ``type=`` functions shared by the ``l2run`` commands.

A bad value fails while the command line is parsed: argparse prints the usage
and one ``error: argument --seed: expected an integer >= 0, got '-1'`` line and
exits with status 2, before OpenSim or TensorFlow load and before any long work
starts (issue 13: every fault ends in one clear line). Each function names the
value it got and what it expected; none imports anything heavy, as
``l2run --help`` builds every command's parser.

    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", type=output_file(".png"), default="curves.png")
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Callable, Optional

#: More obstacle slots than any runner reaches: the 2017 rounds used 3 and 10,
#: and sphere 100 lies ~300 m out. Each slot is a contact sphere built into the
#: OpenSim model (1000 take ~7 s to build; a million would run for hours).
MAX_OBSTACLES = 100


def _fail(expected: str, text) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {expected}, got {str(text)!r}")


def int_in(minimum: int, maximum: Optional[int] = None) -> Callable[[str], int]:
    """Integers in [minimum, maximum] (no upper bound when ``maximum`` is None)."""
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise _fail(expected, text) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise _fail(expected, text)
        return value

    parse.__name__ = f"int_in_{minimum}_{maximum}"
    return parse


def float_in(low: float, high: float, *, include_low: bool = False,
             include_high: bool = False) -> Callable[[str], float]:
    """Finite numbers between ``low`` and ``high`` (open ends unless included);
    nan fails every comparison, so it is refused with the rest."""
    expected = f"a number in {'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise _fail(expected, text) from None
        above = low <= value if include_low else low < value
        below = value <= high if include_high else value < high
        if not (above and below):
            raise _fail(expected, text)
        return value

    parse.__name__ = f"float_in_{low:g}_{high:g}"
    return parse


positive_int = int_in(1)
#: Also the seeds: numpy and gymnasium take any integer >= 0 (a negative one fails deep in the env).
non_negative_int = int_in(0)
obstacle_count = int_in(0, MAX_OBSTACLES)
#: OpenSim integrator accuracy.
accuracy = float_in(0.0, 1.0)
#: A lower bound on muscle excitations (``EnvConfig.min_excitation``).
excitation_floor = float_in(0.0, 1.0, include_low=True)


def _check_writable(directory: Path, text: str) -> None:
    """Create and delete a file in ``directory``: the only test that also holds
    for root (who passes every permission check) and for /proc or a read-only mount."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".l2run-write-test-"):
            pass
    except OSError as err:
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: cannot create a file in {str(directory)!r} ({err.strerror or err})"
        ) from None


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists ('.' or '/' at worst)."""
    return next(p for p in (path, *path.parents) if p.exists())


def output_file(*suffixes: str, make_parents: bool = False) -> Callable[[str], Path]:
    """A file to (over)write, whose directory exists and is writable, checked
    now so that a long run cannot fail at its very end; with ``suffixes``, its
    name must end in one of them. ``make_parents``: for a command that creates
    the file's directory, it is enough that the directory can be created."""
    wanted = tuple(s.lower() for s in suffixes)

    def parse(text: str) -> Path:
        if not text:
            raise _fail("a file name", text)
        path = Path(text).expanduser()
        if wanted and path.suffix.lower() not in wanted:
            raise _fail(f"a file name ending in {' or '.join(wanted)}", text)
        if path.is_dir():
            raise _fail("a file name, not a directory", text)
        parent = path.parent
        if make_parents:
            parent = _nearest_existing(parent)
        elif not parent.exists():
            raise argparse.ArgumentTypeError(f"cannot write {text!r}: directory {str(parent)!r} does not exist")
        if not parent.is_dir():
            raise argparse.ArgumentTypeError(f"cannot write {text!r}: {str(parent)!r} is a file, not a directory")
        _check_writable(parent, text)
        return path

    parse.__name__ = "output_file"
    return parse


def output_dir(text: str) -> Path:
    """A directory to write into: an existing writable one, or one that can be
    created (its nearest existing ancestor is a writable directory)."""
    if not text:
        raise _fail("a directory name", text)
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise _fail("a directory, not a file", text)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create {text!r}: {str(existing)!r} is a file, not a directory")
    _check_writable(existing, text)
    return path


def existing_file(*suffixes: str) -> Callable[[str], Path]:
    """A file that exists (and, with ``suffixes``, ends in one of them)."""
    wanted = tuple(s.lower() for s in suffixes)
    kind = f"an existing {' or '.join(wanted)} file" if wanted else "an existing file"

    def parse(text: str) -> Path:
        path = Path(text).expanduser()
        if not path.is_file():
            reason = "a directory" if path.is_dir() else "no such file"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r} ({reason})")
        if wanted and path.suffix.lower() not in wanted:
            raise _fail(kind, text)
        return path

    parse.__name__ = "existing_file"
    return parse

"""The library's error type for invalid configuration, and its dotted-name helpers."""

from __future__ import annotations

import math
import typing

import yaml


class ConfigError(ValueError):
    """An invalid configuration value; the message starts with the dotted field name."""


def fail(name: str, message: str) -> typing.NoReturn:
    # a field name comes from the user's file or command line: keep it to one printable line
    shown = name if name.isprintable() else repr(name)
    raise ConfigError(f"{shown}: {message}")


def require(name: str, ok: bool, message: str) -> None:
    if not ok:
        fail(name, message)


def choice(name: str, value: str, options: tuple[str, ...]) -> None:
    require(name, value in options, f"must be one of {options}, got {value!r}")


def finite(name: str, value: float) -> None:
    """NaN and infinities pass every ``>`` check by accident (inf) or fail none (nan)."""
    require(name, math.isfinite(value), f"must be a finite number, got {value!r}")


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML parse error in one line: what and where (PyYAML's own text spans several)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"{err.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(err).split())

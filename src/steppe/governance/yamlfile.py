"""Reading the governance YAML files (rules, topology): typed accessors that fail with ``ConfigError``.

Every problem names the file and the dotted key, e.g. ``topology.yaml: routes[1].bandwidth_gbps:
must be a number, got 'fast'``. Files are read with ``yaml.safe_load`` (no Python objects).

>>> r = YamlReader("t.yaml")
>>> r.get({"n": "1.0e24"}, "n", "compute[0]", float)  # PyYAML reads 1.0e24 as text; accepted as a number
1e+24
>>> r.get({}, "n", "compute[0]", float)
Traceback (most recent call last):
...
steppe.core.errors.ConfigError: t.yaml: compute[0].n: missing
"""

from __future__ import annotations

from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from steppe.core.errors import ConfigError


def load_yaml(path: str | Path | None, default_name: str) -> tuple[str, Any]:
    """(source name, parsed YAML) of ``path``, or of the packaged ``data/governance/<default_name>``."""
    if path is None:
        ref = resources.files("steppe") / "data" / "governance" / default_name
        source, text = str(ref), ref.read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(source, "", f"cannot read: {exc.strerror or exc}") from None
    return source, parse_yaml(text, source)


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error is a one-line ``ConfigError`` with its line and column.

    >>> parse_yaml("title: a\\npurpose: b: c\\n", "p.yaml")
    Traceback (most recent call last):
    ...
    steppe.core.errors.ConfigError: p.yaml: line 2, column 11: not valid YAML: mapping values are not allowed here
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, *yaml_problem(exc)) from None


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(``line L, column C``, what is wrong) of a YAML error, 1-based as editors count, without PyYAML's excerpt."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context and "while" not in context else problem
    return where, f"not valid YAML: {' '.join(str(text).split())}"


class YamlReader:
    """Typed accessors that raise ``ConfigError(file, key, problem)``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    def mapping(self, value: Any, key: str, allowed: set[str] | None = None) -> dict[str, Any]:
        """``value`` as a mapping whose keys are all in ``allowed`` (when given)."""
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        extra = sorted(str(k) for k in set(value) - allowed) if allowed is not None else []
        if extra:
            where = f"{key}.{extra[0]}" if key else extra[0]
            raise self.fail(where, f"unknown key; valid: {', '.join(sorted(allowed or ()))}")
        return value

    def get(self, d: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """``d[key]`` checked against ``kind`` (``float`` accepts ints and numeric text); ``default`` if absent."""
        path = f"{where}.{key}" if where else key
        if key not in d:
            if default is ...:
                raise self.fail(path, "missing")
            return default
        value = d[key]
        if kind is float:
            try:
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            except (TypeError, ValueError):
                raise self.fail(path, f"must be a number, got {value!r}") from None
        if not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(path, f"must be {name}, got {type(value).__name__} {value!r}")
        if isinstance(value, str) and not value.strip():
            raise self.fail(path, "must not be empty")
        return value

    def choice(self, value: Any, key: str, options: type[Enum]) -> Any:
        """``options(value)``, or a ``ConfigError`` listing the valid values."""
        try:
            return options(value)
        except ValueError:
            valid = ", ".join(str(o.value) for o in options)
            raise self.fail(key, f"unknown value {value!r}; valid: {valid}") from None

    def str_list(self, d: dict[str, Any], key: str, where: str, default: Any = ...) -> list[str]:
        """A list of non-empty strings."""
        items = self.get(d, key, where, list, default)
        if not all(isinstance(t, str) and t.strip() for t in items):
            raise self.fail(f"{where}.{key}" if where else key, "must be a list of non-empty strings")
        return list(items)

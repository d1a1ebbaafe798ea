"""Typed, validated configuration sections that round-trip through TOML and JSON.

A section is a dataclass whose fields are declared with :func:`option`: every field has a
default and a one-line reason (shown by ``--help`` and written into saved configs), and may
carry choices or a numeric range. :func:`from_dict` refuses unknown keys and bad values with
a message that names them — the contract of DESIGN.md §2.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from typing import Any, Mapping, TypeVar

from .errors import VaelabError

T = TypeVar("T")


def option(default: Any, help: str, *, choices: tuple | None = None,
           min: float | None = None, max: float | None = None, min_exclusive: bool = False) -> Any:
    """A config field with its reason and its allowed values."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda d=tuple(default): list(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def fields(section: type) -> list[dataclasses.Field]:
    return list(dataclasses.fields(section))


def _type_of(section: type, f: dataclasses.Field) -> Any:
    return typing.get_type_hints(section)[f.name]


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; allow int where float is expected.

    Types are strict: ``latent_dim = "16"`` is refused, not read as 16 (a string where a
    number is due is nearly always a mistake in the file). The one text form accepted is a
    list written as ``"784-400-20"``, the thesis' notation for widths (and the CLI's).
    """
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):  # "784-400-20" or "32,64" from the command line
            parts = [p for p in value.replace(",", "-").replace(" ", "-").split("-") if p]
            value = [_parse_scalar(p, item_tp, where) for p in parts]
        if not isinstance(value, (list, tuple)):
            raise VaelabError(f"{where} must be {_describe(tp)}, got {value!r}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise VaelabError(f"{where} must be a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise VaelabError(f"{where} must be {_describe(tp)}, got {value!r}")


def _parse_scalar(text: str, tp: Any, where: str) -> Any:
    try:
        value = tp(text)
    except ValueError:
        raise VaelabError(f"{where} must be {_describe(tp)}, got {text!r}") from None
    if tp is float and not math.isfinite(value):
        raise VaelabError(f"{where} must be a finite number, got {text!r}")
    return value


def _check_range(value: Any, f: dataclasses.Field, where: str) -> None:
    meta = f.metadata
    items = [(f"{where}[{i}]", v) for i, v in enumerate(value)] if isinstance(value, list) else [(where, value)]
    for where, item in items:
        if meta.get("choices") and item not in meta["choices"]:
            allowed = ", ".join(map(str, meta["choices"]))
            raise VaelabError(f"{where} must be one of {allowed}; got {item!r}")
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and (item < lo or (meta.get("min_exclusive") and item == lo)):
            op = ">" if meta.get("min_exclusive") else "≥"
            raise VaelabError(f"{where} must be {op} {lo}, got {item!r}")
        if hi is not None and item > hi:
            raise VaelabError(f"{where} must be ≤ {hi}, got {item!r}")


def from_dict(section: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build ``section`` from a mapping, refusing unknown keys and bad values by name.

    A section class may pick a subclass from the mapping itself with a classmethod
    ``section_for(mapping)`` (the ``[model]`` table: its ``name`` chooses the model's own
    config class), and may word the refusal of an unknown key with a classmethod
    ``unknown_setting(key, where, known)``.
    """
    if not isinstance(data, Mapping):
        raise VaelabError(f"{where or section.__name__} must be a table of settings, got {type(data).__name__}")
    if hasattr(section, "section_for"):
        section = section.section_for(data, where)
    known = {f.name: f for f in fields(section)}
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in known:
            if hasattr(section, "unknown_setting"):
                raise VaelabError(section.unknown_setting(str(key), name, sorted(known)))
            hint = difflib.get_close_matches(str(key), known, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise VaelabError(f"unknown setting '{name}'{suggestion}")
        f = known[key]
        tp = _type_of(section, f)
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value, name)
            continue
        value = _coerce(value, tp, name)
        _check_range(value, f, name)
        kwargs[key] = value
    return section(**kwargs)


def validate(obj: Any, where: str = "") -> None:
    """Re-check every field of a section built in code (e.g. by flags)."""
    from_dict(type(obj), to_dict(obj), where)


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def replace(obj: T, where: str = "", **changes: Any) -> T:
    """A copy of ``obj`` with ``changes`` validated like a config file's values."""
    merged = to_dict(obj)
    merged.update(changes)
    return from_dict(type(obj), merged, where)


def to_toml(obj: Any, header: str = "") -> str:
    """Serialise a (nested) section to TOML with each field's reason as a comment."""
    import tomli_w

    lines = [f"# {line}" for line in header.splitlines()] if header else []
    tables = []
    for f in fields(type(obj)):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            tables.append((f.name, value))
            continue
        lines.append(f"{tomli_w.dumps({f.name: value}).strip()}  # {f.metadata.get('help', '')}")
    for name, value in tables:
        lines.append("")
        lines.append(f"[{name}]")
        for sub in fields(type(value)):
            v = getattr(value, sub.name)
            lines.append(f"{tomli_w.dumps({sub.name: v}).strip()}  # {sub.metadata.get('help', '')}")
    return "\n".join(lines) + "\n"


def parse_toml(text: str, source: str = "config") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VaelabError(f"not valid TOML ({exc})", source) from exc
    except (UnicodeError, RecursionError, ValueError) as exc:
        raise VaelabError(f"not valid TOML ({exc.__class__.__name__})", source) from exc

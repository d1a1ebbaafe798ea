"""Command-line options generated from the config dataclasses.

Every field of ``[model]``, ``[data]`` and ``[train]`` becomes a flag whose help is the
field's one-line reason, so the CLI and config files can never drift apart. Flags override
``--config FILE.toml``, which overrides the defaults.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import click

from ..config import fields

# (section, field) -> flag name, where the plain name would be ambiguous or unidiomatic.
RENAMES = {("model", "name"): "model", ("data", "name"): "data", ("data", "seed"): "data-seed",
           ("data", "limit"): "limit", ("model", "hidden"): "hidden"}


def _flag(section: str, name: str) -> str:
    return RENAMES.get((section, name), name.replace("_", "-"))


def _sections():
    """(section, [(field, type, the models that take it)]) for [model], [data] and [train].

    ``[model]`` offers the union of every registered model's settings: a flag is accepted by
    the parser, and a model that does not take it refuses it by name (runs/config.py).
    """
    from ..models import config_class, model_names
    from ..runs import RunConfig

    hints = typing.get_type_hints(RunConfig)
    out = []
    for top in fields(RunConfig):
        cls = hints[top.name]
        if not dataclasses.is_dataclass(cls):
            continue
        if top.name != "model":
            section_hints = typing.get_type_hints(cls)
            out.append((top.name, [(f, section_hints[f.name], None) for f in fields(cls)]))
            continue
        seen: dict[str, tuple] = {"name": (fields(cls)[0], str)}   # --model: the base's field and default
        takers: dict[str, list[str]] = {}
        default = cls().name
        for name in [default] + [n for n in model_names() if n != default]:
            model_config = config_class(name)
            model_hints = typing.get_type_hints(model_config)
            for f in fields(model_config):
                seen.setdefault(f.name, (f, model_hints[f.name]))
                takers.setdefault(f.name, []).append(name)
        everyone = len(model_names())
        out.append(("model", [(f, tp, None if len(takers[f.name]) == everyone else takers[f.name])
                              for f, tp in seen.values()]))
    return out


def _model_names() -> list[str]:
    from ..models import model_names

    return model_names()


def config_options(func):
    """Decorate a click command with one option per config field (all defaulting to None)."""
    for section, section_fields in reversed(_sections()):
        for f, tp, models in reversed(section_fields):
            flag = _flag(section, f.name)
            meta = f.metadata
            help_text = meta.get("help", "")
            if models is not None:
                others = sorted(set(_model_names()) - set(models))
                who = ", ".join(sorted(models)) if len(models) <= len(others) else f"all but {', '.join(others)}"
                help_text = f"[{who}] {help_text}"
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if tp is bool:
                opt = click.option(f"--{flag}/--no-{flag}", f"{section}__{f.name}", default=None,
                                   help=f"{help_text} [default: {str(default).lower()}]")
            else:
                click_type = {int: int, float: float}.get(tp, str)
                if meta.get("choices") and tp is str:
                    click_type = click.Choice([str(c) for c in meta["choices"]])
                shown = "-".join(map(str, default)) if isinstance(default, list) else default
                opt = click.option(f"--{flag}", f"{section}__{f.name}", type=click_type, default=None,
                                   metavar=None if typing.get_origin(tp) is not list else "V1-V2-…",
                                   help=f"{help_text} [default: {shown if shown != '' else 'none'}]")
            func = opt(func)
    return func


def overrides(kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Pop the config flags out of a command's kwargs -> {section: {field: value}} (set ones only)."""
    out: dict[str, dict[str, Any]] = {}
    for key in list(kwargs):
        if "__" in key:
            value = kwargs.pop(key)
            if value is not None:
                section, name = key.split("__", 1)
                out.setdefault(section, {})[name] = value
    return out


def build_config(config_file: Path | None, flag_values: dict[str, dict[str, Any]]):
    """defaults < config file < flags, validated as a whole."""
    from ..config import parse_toml
    from ..errors import VaelabError
    from ..fileio import read_bytes
    from ..runs import config_from_dict

    data: dict[str, Any] = {}
    source = "command line"
    if config_file is not None:
        raw = read_bytes(config_file, "config file", max_bytes=1 << 20)
        try:
            data = parse_toml(raw.decode("utf-8"), str(config_file))
        except UnicodeDecodeError:
            raise VaelabError("is not UTF-8 text", config_file) from None
        source = str(config_file)
    for section, values in flag_values.items():
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise VaelabError(f"[{section}] must be a table", source)
        table.update(values)
    try:
        return config_from_dict(data, source)
    except VaelabError as exc:
        # A bad flag value is named by its flag, not by its config key.
        raise VaelabError(_flagify(str(exc))) from None


def _flagify(message: str) -> str:
    for section, section_fields in _sections():
        for f, _, _ in section_fields:
            flag = _flag(section, f.name)
            message = message.replace(f"'{section}.{f.name}'", f"'{section}.{f.name}' (--{flag})")
            message = message.replace(f"{section}.{f.name} must", f"{section}.{f.name} (--{flag}) must")
    return message


def settings_options(cls, *, names: dict[str, str] | None = None, short: dict[str, str] | None = None,
                     omit: tuple[str, ...] = ()):
    """Decorate a click command with one option per field of the settings dataclass ``cls``.

    Default, help, range and choices come from the field's :func:`vaelab.config.option`, so the
    command's flags and the Python API (``EvaluationSettings``, ``ScoreSettings``) cannot drift
    apart. ``names`` renames flags, ``short`` adds a short flag, ``omit`` leaves fields out (the
    command declares them itself). The command gets each value under the field's name.
    """
    def decorate(func):
        hints = typing.get_type_hints(cls)
        for f in reversed(fields(cls)):
            if f.name in omit:
                continue
            flag = (names or {}).get(f.name, f.name.replace("_", "-"))
            decls = [f"--{flag}", *([short[f.name]] if short and f.name in short else []), f.name]
            meta, tp = f.metadata, hints[f.name]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lo, hi = meta.get("min"), meta.get("max")
            if tp is bool:
                opt = click.option(f"--{flag}/--no-{flag}", f.name, default=default, show_default=True,
                                   help=meta.get("help", ""))
                func = opt(func)
                continue
            if meta.get("choices"):
                click_type = click.Choice([str(c) for c in meta["choices"]])
            elif tp is int:
                click_type = click.IntRange(lo, hi)
            elif tp is float:
                click_type = click.FloatRange(lo, hi, min_open=bool(meta.get("min_exclusive")))
            else:
                click_type = str
            func = click.option(*decls, type=click_type, default=default, show_default=True,
                                help=meta.get("help", "") + ".")(func)
        return func
    return decorate


def settings_from(cls, values: dict[str, Any], **extra):
    """``cls`` built from the command's values of its fields (popped from ``values``) and ``extra``."""
    names = {f.name for f in fields(cls)}
    return cls(**{name: values.pop(name) for name in list(values) if name in names}, **extra)

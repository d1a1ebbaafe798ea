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
    from ..runs import RunConfig

    hints = typing.get_type_hints(RunConfig)
    return [(f.name, hints[f.name]) for f in fields(RunConfig) if dataclasses.is_dataclass(hints[f.name])]


def config_options(func):
    """Decorate a click command with one option per config field (all defaulting to None)."""
    for section, cls in reversed(_sections()):
        hints = typing.get_type_hints(cls)
        for f in reversed(fields(cls)):
            flag = _flag(section, f.name)
            tp = hints[f.name]
            meta = f.metadata
            help_text = meta.get("help", "")
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
                                   metavar=None if tp is not list[int] else "W1-W2-…",
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
    for section, cls in _sections():
        for f in fields(cls):
            message = message.replace(f"'{section}.{f.name}'", f"'{section}.{f.name}' (--{_flag(section, f.name)})")
            message = message.replace(f"{section}.{f.name} must", f"{section}.{f.name} (--{_flag(section, f.name)}) must")
    return message

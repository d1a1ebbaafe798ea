"""Command-line flags come from the settings dataclasses, so the CLI and the Python API agree."""

from __future__ import annotations

import dataclasses

import pytest

from vaelab.apps.anomaly import ScoreSettings
from vaelab.evaluation.suite import EvaluationSettings


def _params(command_name: str) -> dict:
    import importlib

    command = importlib.import_module(f"vaelab.cli.{command_name}").command
    return {p.name: p for p in command.params}


@pytest.mark.parametrize("command, settings, omitted", [("evaluate", EvaluationSettings, {"skip"}),
                                                         ("anomaly", ScoreSettings, set())])
def test_every_setting_is_a_flag_with_the_dataclass_default(command, settings, omitted):
    params = _params(command)
    for f in dataclasses.fields(settings):
        if f.name in omitted:
            continue
        assert f.name in params, f"{command} has no flag for {settings.__name__}.{f.name}"
        assert params[f.name].default == f.default, f.name
        assert f.metadata["help"] in params[f.name].help


def test_flag_values_reach_the_settings(monkeypatch, tiny_vae_run):
    from vaelab.cli import main
    from vaelab.evaluation import suite

    seen = {}
    monkeypatch.setattr(suite, "evaluate_run", lambda run, settings, **kw: seen.setdefault("s", settings) and {})
    monkeypatch.setattr("vaelab.evaluation.summary.format_table", lambda result: "")
    assert main(["evaluate", str(tiny_vae_run), "-k", "7", "-n", "30", "--probe-images", "99", "--skip", "samples",
                 "--no-save"]) == 0
    assert seen["s"] == EvaluationSettings(nll_samples=7, limit=30, probe_train_images=99, skip=("samples",))


def test_a_flag_outside_its_range_is_refused(tiny_vae_run, capsys):
    from vaelab.cli import main

    assert main(["anomaly", str(tiny_vae_run), "x.png", "--regret-lr", "0"]) == 2
    assert "--regret-lr" in capsys.readouterr().err

"""`vaelab demo`: a quality floor, not only a time budget, and a loud failure when the model is unusable."""

from __future__ import annotations

import pytest

from vaelab.cli import main


def test_the_demo_trains_at_least_its_floor_and_reports_active_units(tmp_path, capsys):
    from vaelab.cli.demo import MIN_EPOCHS
    from vaelab.runs import read_metrics

    out = tmp_path / "demo"
    # a budget far too short: the floor still trains MIN_EPOCHS epochs
    assert main(["demo", "--data", "digits", "--seconds", "0.01", "--out", str(out), "--quiet", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    epochs = [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "epoch"]
    assert len(epochs) == MIN_EPOCHS
    assert f"{MIN_EPOCHS} epochs in" in printed and "latent dimensions active" in printed
    active = int(printed.split(" of 16 latent dimensions active")[0].rsplit(" ", 1)[-1])
    assert active > 0 and "vaelab serve" in printed


def test_an_untrained_demo_fails_loudly_in_one_line(tmp_path, capsys, monkeypatch):
    from vaelab.cli import demo

    monkeypatch.setattr(demo, "_active_units", lambda run: 0)   # what a starved machine produced (issue 22)
    status = main(["demo", "--data", "digits", "--seconds", "0.01", "--out", str(tmp_path / "demo"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("vaelab: error: the demo's model did not learn")
    assert "vaelab demo --seconds" in err


def test_min_epochs_holds_off_the_time_limit_and_early_stopping(tmp_path):
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train

    config = from_dict(RunConfig, {"model": {"name": "mlp-vae", "latent_dim": 2, "hidden": [16]},
                                   "data": {"name": "digits", "limit": 128},
                                   "train": {"epochs": 10, "min_epochs": 3, "time_limit": 1e-9, "early_stopping": 1,
                                             "batch_size": 64, "report": False, "threads": 1}})
    result = train(config, tmp_path / "run", progress=False)
    assert result.epochs == 3 and result.stopped_early


@pytest.mark.parametrize("busy, cores, processes, expected", [(0, 2, 1, 2), (2, 2, 1, 1), (1, 2, 1, 1),
                                                               (1, 8, 2, 3), (30, 8, 1, 1)])
def test_the_default_thread_count_leaves_busy_cores_alone(monkeypatch, busy, cores, processes, expected):
    from vaelab import cpu

    monkeypatch.setattr(cpu, "busy_cores", lambda: busy)
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert cpu.default_threads(processes) == expected


def test_busy_cores_are_measured_now_not_averaged_over_the_last_minute(monkeypatch):
    """A program spinning on a core right now counts; the load average is not consulted."""
    import subprocess
    import sys
    import time

    from vaelab import cpu

    monkeypatch.setattr(cpu.os, "getloadavg", lambda: (40.0, 40.0, 40.0))   # a lagging average must not count
    cpu._cache.clear()
    idle = cpu.busy_cores()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        cpu._cache.clear()
        busy = cpu.busy_cores()
    finally:
        spinner.kill()
        cpu._cache.clear()
    assert busy >= 1 and busy >= idle and idle < 40


def test_a_time_limited_run_shows_the_epochs_its_budget_allows(tmp_path, monkeypatch):
    """The progress bar's total follows the time limit (issue 22: a 40 s demo showed 3,720 steps and an
    ETA of hours): after each epoch it becomes the epochs the remaining budget allows, at least min_epochs."""
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import engine

    totals = []
    real = engine.Trainer._expect_epochs

    def spy(self, s, state, bar):
        real(self, s, state, bar)
        totals.append((state.epoch, bar.total // s.steps_per_epoch, state.elapsed))

    monkeypatch.setattr(engine.Trainer, "_expect_epochs", spy)
    config = from_dict(RunConfig, {"model": {"name": "mlp-vae", "latent_dim": 2, "hidden": [16]},
                                   "data": {"name": "digits", "limit": 256},
                                   "train": {"epochs": 500, "time_limit": 0.6, "batch_size": 64, "report": False,
                                             "threads": 1}})
    engine.train(config, tmp_path / "run", progress=False)
    assert totals, "the budget ran out before any estimate"
    for done, expected, elapsed in totals:
        per_epoch = elapsed / done
        assert done < expected <= done + (0.6 - elapsed) / per_epoch + 1   # what is left of the budget, not 500

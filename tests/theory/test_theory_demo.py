"""`vaelab theory-demo` end to end (tiny --steps)."""

from __future__ import annotations

import pytest
import torch

from vaelab.cli import main
from vaelab.theory.demo import load_digits_images


def test_theory_demo_runs_and_writes_the_plot(tmp_path, capsys):
    state = torch.get_rng_state()
    assert main(["theory-demo", "--steps", "5", "--out", str(tmp_path), "--seed", "3"]) == 0
    assert torch.equal(torch.get_rng_state(), state)  # the demo seeds its own streams
    png = (tmp_path / "risk.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    lines = (tmp_path / "risk.csv").read_text().splitlines()
    assert lines[0] == "step,GD,SGD-1,SGD-32,Adam"
    assert len(lines) == 1 + 6  # steps 0..5
    out = capsys.readouterr().out
    assert "GD" in out and "Adam" in out and "final risk" in out
    # all optimisers start from the same θ^(0), and each lowers the risk within 5 steps
    first = [float(v) for v in lines[1].split(",")[1:]]
    last = [float(v) for v in lines[-1].split(",")[1:]]
    assert len(set(first)) == 1
    assert all(b < a for a, b in zip(first, last))

    # deterministic for a given seed
    again = tmp_path / "again"
    assert main(["theory-demo", "--steps", "5", "--out", str(again), "--seed", "3"]) == 0
    assert (again / "risk.csv").read_text() == (tmp_path / "risk.csv").read_text()


def test_theory_demo_refuses_bad_arguments(tmp_path, capsys):
    assert main(["theory-demo", "--steps", "0", "--out", str(tmp_path)]) != 0
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["theory-demo", "--steps", "1", "--out", str(blocker)]) != 0


def test_digits_are_images_in_the_unit_interval():
    x = load_digits_images()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert x.min().item() == 0.0 and x.max().item() == pytest.approx(1.0)

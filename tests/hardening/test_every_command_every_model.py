"""Every command on every registered model either works or says in one line why it cannot.

One tiny run per registered model (one epoch on 256 of the 8×8 digits); every command that
takes a run is called on each. A command may refuse a model — a plain autoencoder has no
likelihood to score, a rate–distortion model no Gaussian latent to traverse — but then with
exit status 2 and one ``vaelab: error:`` line; any other outcome (a traceback, exit 1, a
second line) fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.models import model_entry, model_names

BUILT_IN = [n for n in model_names() if model_entry(n).cls.__module__.startswith("vaelab.")]
SETTINGS = {"conv-rd": {"hidden": [8, 8], "latent_channels": 2, "rd_lambdas": [0.3, 3.0], "rd_context": 4},
            "pixel-vae": {"latent_dim": 3, "ar_features": 4}}

# (command and its arguments after RUN; "{img}" is one digit PNG, "{npy}" a .npy of 20 digits, "{out}" a fresh path)
COMMANDS = {
    "sample": ["-n", "2", "--seed", "0", "-o", "{out}.png"],
    "reconstruct": ["--count", "2", "-o", "{out}"],
    "interpolate": ["{img}", "{img2}", "--steps", "3", "-o", "{out}.png"],
    "traverse": ["--steps", "3", "--top", "2", "-o", "{out}.png"],
    "manifold": ["--steps", "3", "-o", "{out}.png"],
    "inpaint": ["--count", "2", "--denoise", "--iterations", "2", "-o", "{out}"],
    "embed": ["--count", "3", "-o", "{out}.npy"],
    "anomaly": ["{img}", "--fit-images", "20", "--samples", "2", "-o", "{out}.csv"],
    "evaluate": ["--limit", "20", "-k", "2", "--skip", "samples,representation", "--no-save"],
    "report": [],
    "compress": ["{npy}", "-o", "{out}.vlc"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train

    root = tmp_path_factory.mktemp("every-model")
    out = {}
    for name in BUILT_IN:
        config = from_dict(RunConfig, {"model": {"name": name, **SETTINGS.get(name, {"latent_dim": 3})},
                                       "data": {"name": "digits", "limit": 256},
                                       "train": {"epochs": 1, "batch_size": 64, "report": False, "threads": 1}})
        train(config, root / name, progress=False)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from sklearn.datasets import load_digits

    from vaelab.imageio import save_image

    folder = tmp_path_factory.mktemp("inputs")
    digits = (load_digits().images[:20] * 15).astype(np.uint8)[:, None]
    save_image(folder / "a.png", digits[0])
    save_image(folder / "b.png", digits[1])
    np.save(folder / "digits.npy", digits)
    return {"img": str(folder / "a.png"), "img2": str(folder / "b.png"), "npy": str(folder / "digits.npy")}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("model", BUILT_IN)
def test_the_command_works_or_refuses_in_one_line(runs, inputs, tmp_path, cli, command, model):
    args = [a.format(out=tmp_path / "out", **inputs) for a in COMMANDS[command]]
    status, out, err = cli(command, runs[model], *args)
    assert "Traceback" not in err + out
    if status == 0:
        return
    # what a terminal shows: a progress bar redrawn with carriage returns leaves its last state
    lines = [line.split("\r")[-1] for line in err.splitlines() if line.split("\r")[-1].strip()]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("vaelab: error: "), (status, err[-2000:])


@pytest.mark.parametrize("model", BUILT_IN)
def test_decompress_and_compare_work_on_every_model(runs, inputs, tmp_path, cli, model):
    status, _, err = cli("compress", runs[model], inputs["npy"], "-o", tmp_path / "f.vlc")
    if status == 0:
        status, _, err = cli("decompress", tmp_path / "f.vlc", "--run", runs[model], "-o", tmp_path / "decoded")
        assert status == 0, err
    else:
        assert status == 2 and err.count("\n") == 1
    other = next(m for m in BUILT_IN if m != model)
    status, _, err = cli("compare", runs[model], runs[other], "-o", tmp_path / "compare.png")
    assert status == 0, err


@pytest.mark.parametrize("model", BUILT_IN)
def test_the_explorer_serves_every_model_or_refuses_in_one_line(runs, model):
    from vaelab import VaelabError
    from vaelab.web import prepare_runs

    try:
        prepare_runs([runs[model]], max_points=30)
    except VaelabError as exc:
        assert "\n" not in str(exc)

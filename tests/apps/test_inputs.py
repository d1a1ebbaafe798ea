"""Bad inputs to every command: exit status 2 and one line saying what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

COMMANDS = [
    ("reconstruct",),
    ("embed",),
    ("anomaly", "--score", "reconstruction"),
    ("inpaint", "--mask", "bottom"),
    ("interpolate", "{good}"),
    ("traverse",),
]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "text.png").write_text("this is not an image\n")
    np.save(folder / "five-channels.npy", np.zeros((2, 5, 8, 8), np.uint8))
    np.save(folder / "five-dims.npy", np.zeros((1, 1, 1, 8, 8), np.uint8))
    return {"text": folder / "text.png", "missing": folder / "missing.png",
            "channels": folder / "five-channels.npy", "dims": folder / "five-dims.npy"}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("kind", ["text", "missing", "channels", "dims"])
def test_bad_input_gives_status_2_and_one_line(command, kind, tiny_vae_run, bad_inputs, digit_files, cli, tmp_path):
    name, *extra = command
    extra = [str(digit_files[0][0]) if e == "{good}" else e for e in extra]
    status, _, err = cli(name, tiny_vae_run, bad_inputs[kind], *extra, "-o", tmp_path / "out.png"
                         if name in ("interpolate", "traverse") else tmp_path / ("o.npy" if name == "embed" else "o"))
    assert status == 2
    assert err.startswith("vaelab: error: ") and err.count("\n") == 1, err
    assert str(bad_inputs[kind]) in err


def test_a_missing_run_is_one_line(cli, tmp_path):
    status, _, err = cli("sample", tmp_path / "no-such-run")
    assert status == 2 and "is not a run directory" in err and err.count("\n") == 1


def test_conversion_notices_name_the_files(tmp_path):
    from PIL import Image

    from vaelab.imageio import load_images

    for i in range(5):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / f"rgb{i}.png")
    Image.fromarray(np.full((8, 8), 9, np.uint8)).save(tmp_path / "grey.png")
    _, _, notices = load_images(sorted(str(p) for p in tmp_path.iterdir()), 1, (8, 8))
    converted = next(n for n in notices if n.startswith("converted RGB input to grey: "))
    assert "rgb0.png" in converted and "and 2 more" in converted and "grey.png" not in converted
    resized = next(n for n in notices if n.startswith("resized input from 16×16 to the model's 8×8: "))
    assert "rgb0.png" in resized

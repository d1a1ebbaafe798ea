"""`vaelab compress` and `vaelab decompress` end to end, on image files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vaelab import metrics
from vaelab.apps import codec
from vaelab.cli import main
from vaelab.imageio import read_image, save_image


@pytest.fixture
def image_files(tmp_path, digit_images):
    folder = tmp_path / "in"
    for i, image in enumerate(digit_images[:5]):
        save_image(folder / f"digit-{i}.png", image)
    return sorted(folder.iterdir())


def test_compress_then_decompress(tiny_rd_run, tiny_rd, image_files, digit_images, tmp_path, capsys):
    out = tmp_path / "digits.vlc"
    assert main(["compress", str(tiny_rd_run), *map(str, image_files), "-o", str(out), "--quality", "2"]) == 0
    printed = capsys.readouterr().out
    assert "digit-3.png" in printed and "5 images at quality 2" in printed and str(out) in printed
    data = out.read_bytes()
    info = codec.inspect(data)
    assert info["images"] == 5 and info["quality"] == 2.0

    assert main(["decompress", str(out), "-o", str(tmp_path / "dec"), "--run", str(tiny_rd_run)]) == 0
    # the file kept the images' names, and decompress gives them back
    assert info["names"] == [f"digit-{i}.png" for i in range(5)]
    decoded = np.stack([read_image(tmp_path / "dec" / f"digit-{i}.png") for i in range(5)])
    # the PNGs hold exactly what the library decodes
    assert np.array_equal(decoded, codec.decompress(data, tiny_rd))
    assert np.array_equal(decoded, codec.decompress(codec.compress(tiny_rd, digit_images[:5], quality=2), tiny_rd))


def test_without_names_the_file_is_the_unnamed_format_and_images_are_numbered(tiny_rd_run, tiny_rd, image_files,
                                                                             digit_images, tmp_path):
    out = tmp_path / "digits.vlc"
    assert main(["compress", str(tiny_rd_run), *map(str, image_files), "-o", str(out), "--quality", "2",
                 "--no-names", "-q"]) == 0
    data = out.read_bytes()
    # byte for byte the library's unnamed file (format version 1, what the codec's numbers measure)
    assert data == codec.compress(tiny_rd, digit_images[:5], quality=2)
    assert codec.inspect(data)["names"] is None and codec.inspect(data)["format_version"] == 1
    assert main(["decompress", str(out), "-o", str(tmp_path / "dec"), "--run", str(tiny_rd_run)]) == 0
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == [f"image-{i:04d}.png" for i in range(1, 6)]


def test_kept_names_cost_their_bytes_and_are_made_safe_to_write(tiny_rd, digit_images):
    from vaelab.cli.decompress import output_names

    plain = codec.compress(tiny_rd, digit_images[:3], quality=2)
    named = codec.compress(tiny_rd, digit_images[:3], quality=2, names=["a.png", "b.png", "ünïcode.png"])
    assert len(named) == len(plain) + sum(1 + len(n.encode()) for n in ["a.png", "b.png", "ünïcode.png"])
    assert codec.inspect(named)["header_bytes"] + sum(codec.inspect(named)["image_bytes"]) == len(named)
    assert np.array_equal(codec.decompress(named, tiny_rd), codec.decompress(plain, tiny_rd))
    assert output_names(["../../etc/passwd", "x.png", "x.jpg", "", "scan.npy[2]"], 5) == \
        ["passwd.png", "x.png", "x-2.png", "image-0004.png", "scan.npy_2.png"]


def test_compress_to_a_target_psnr(tiny_rd_run, tiny_rd, image_files, digit_images, tmp_path, capsys):
    out = tmp_path / "digits.vlc"
    images = digit_images[:5]
    ends = [metrics.psnr(images, codec.decompress(codec.compress(tiny_rd, images, quality=q), tiny_rd)).mean()
            for q in (1, 3)]
    target = round(float(np.mean(ends)), 2)   # a target inside the model's range on these images
    assert main(["compress", str(tiny_rd_run), *map(str, image_files), "-o", str(out), "--psnr", str(target)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-2]
    data = out.read_bytes()
    quality = codec.inspect(data)["quality"]
    assert f"at quality {quality:g}" in summary
    reached = float(summary.split("mean PSNR ")[1].split(" dB")[0])
    assert reached >= target and 1 < quality < 3
    names = [p.name for p in image_files]
    assert data == codec.compress_to_psnr(tiny_rd, images, target, names=names)[0]


def test_decompress_finds_its_run_by_fingerprint(tiny_rd_run, tiny_vae_run, image_files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "a.vlc"
    assert main(["compress", str(tiny_rd_run), str(image_files[0]), "-o", str(out), "-q"]) == 0
    work = tmp_path / "work"
    shutil.copytree(tiny_vae_run, work / "runs" / "a-vae")     # a run that did not write it
    shutil.copytree(tiny_rd_run, work / "runs" / "b-rd")
    monkeypatch.chdir(work)
    assert main(["decompress", str(out), "-o", "dec"]) == 0
    assert "using runs/b-rd" in capsys.readouterr().out
    assert (work / "dec" / image_files[0].name).is_file()


def test_info_needs_no_model(tiny_rd_run, image_files, tmp_path, capsys):
    out = tmp_path / "a.vlc"
    assert main(["compress", str(tiny_rd_run), *map(str, image_files), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["decompress", str(out), "--info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["images"] == 5 and info["total_bytes"] == out.stat().st_size


def test_errors_are_one_line(tiny_rd_run, tiny_vae_run, image_files, tmp_path, capsys):
    out = tmp_path / "a.vlc"
    assert main(["compress", str(tiny_rd_run), str(image_files[0]), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    cases = [
        (["decompress", str(out), "-o", str(tmp_path / "d"), "--run", str(tiny_vae_run)], "fingerprint"),
        (["decompress", str(image_files[0]), "-o", str(tmp_path / "d")], "not a vaelab codec file"),
        (["decompress", str(out)], "give -o DIR"),
        (["compress", str(tiny_rd_run), str(image_files[0]), "-o", str(out), "--quality", "9"], "between 1 and 3"),
        (["compress", str(tmp_path), str(image_files[0]), "-o", str(out)], "not a run directory"),
        (["compress", str(tiny_rd_run), str(image_files[0]), "-o", str(out), "--quality", "2", "--psnr", "20"],
         "not both"),
        (["compress", str(tiny_rd_run), str(image_files[0]), "-o", str(out), "--psnr", "99", "-q"], "reach at most"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("vaelab: error: ") and message in err and err.count("\n") == 1
    out.write_bytes(out.read_bytes()[:-3])
    assert main(["decompress", str(out), "-o", str(tmp_path / "d"), "--run", str(tiny_rd_run)]) == 2
    assert "checksum" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for name in ("compress", "decompress"):
        assert main([name, "--help"]) == 0
        assert "Examples:" in capsys.readouterr().out

"""``vaelab decompress``: a codec file -> PNG images, with the run that wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import click


def find_run(fingerprint: str, search: Path) -> Path | None:
    """The run directory under ``search`` whose weights have this fingerprint (hex), if any.

    Fingerprints are computed from each run's weights file and metadata alone, without
    building the models.
    """
    from ..coding.fingerprint import fingerprint_tensors
    from ..errors import VaelabError
    from ..runs import CONFIG_FILE, MODEL_FILE
    from ..weights import load_weights

    if not search.is_dir():
        return None
    for run_dir in sorted(p for p in search.iterdir() if (p / CONFIG_FILE).is_file() and (p / MODEL_FILE).is_file()):
        try:
            tensors, meta = load_weights(run_dir / MODEL_FILE)
            shape = json.loads(meta.get("image_shape", "[]"))
            if fingerprint_tensors(meta.get("model", ""), shape, tensors).hex() == fingerprint:
                return run_dir
        except (VaelabError, ValueError, TypeError):
            continue  # not a run we can read: not the one that wrote the file
    return None


MAX_CODEC_FILE_BYTES = 1 << 30   # read no more: a file decodes to at most 1 GiB of pixels anyway


def output_names(names: list[str] | None, count: int) -> list[str]:
    """PNG file names for the decoded images: the names the file kept (made safe: no directories or
    odd characters, ``.png``, unique), else ``image-0001.png`` …"""
    import re

    if names is None:
        digits = max(4, len(str(count)))
        return [f"image-{i:0{digits}d}.png" for i in range(1, count + 1)]
    out, seen = [], set()
    for i, name in enumerate(names, start=1):
        stem = name.replace("\\", "/").rsplit("/", 1)[-1]
        stem = stem.rsplit(".", 1)[0] if "." in stem and not stem.endswith("]") else stem
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")[:100] or f"image-{i:04d}"
        candidate, n = f"{stem}.png", 2
        while candidate.lower() in seen:
            candidate, n = f"{stem}-{n}.png", n + 1
        seen.add(candidate.lower())
        out.append(candidate)
    return out


@click.command("decompress", context_settings={"max_content_width": 110})
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None,
              help="folder to write the images into (image-0001.png, …).")
@click.option("--run", "run", type=click.Path(path_type=Path), default=None,
              help="the run whose model wrote FILE (default: the run under ./runs whose fingerprint matches).")
@click.option("--info", is_flag=True, help="print the file's header and per-image bytes as JSON; decode nothing.")
@click.option("--threads", type=int, default=0, help="CPU threads for the decoder network (0 = PyTorch's default).")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar.")
def command(file: Path, out: Path | None, run: Path | None, info: bool, threads: int, quiet: bool):
    """Decode FILE (written by `vaelab compress`) into PNG images in OUT.

    The file names the fingerprint of the model that wrote it; decoding with any other
    model is refused. Without --run, the run directories under ./runs are searched for it.
    FILE - reads the file from standard input; only regular files are read otherwise.

    \b
    Examples:
      vaelab decompress clothes.vlc -o decoded/ --run runs/codec-fmnist
      vaelab decompress clothes.vlc -o decoded/          # finds the run under ./runs
      vaelab decompress clothes.vlc --info               # header and bytes per image
      cat clothes.vlc | vaelab decompress - -o decoded/ --run runs/codec-fmnist
    """
    from ..apps import codec
    from ..errors import VaelabError
    from ..fileio import STDIN, read_bytes

    data = read_bytes(file, "codec file", max_bytes=MAX_CODEC_FILE_BYTES, stdin=True)
    if str(file) == STDIN:
        file = Path("standard input")   # what errors name
    try:
        header = codec.inspect(data)
    except VaelabError as exc:
        raise VaelabError(str(exc), file) from None
    if info:
        click.echo(json.dumps(header, indent=2))
        return
    if out is None:
        raise VaelabError("give -o DIR, the folder for the decoded images (or --info to only read the header)")

    import torch
    from tqdm.auto import tqdm

    from ..runs import load_model as load
    from ..imageio import save_image

    if threads:
        torch.set_num_threads(threads)
    if run is None:
        run = find_run(header["fingerprint"], Path("runs"))
        if run is None:
            raise VaelabError(f"no run under ./runs has the fingerprint {header['fingerprint']} that wrote this file; "
                              "pass --run RUN_DIR", file)
        click.echo(f"using {run} (fingerprint {header['fingerprint']})")
    model = load(run)
    with tqdm(total=header["images"], unit="img", desc="decoding", disable=quiet or header["images"] < 50) as bar:
        try:
            images = codec.decompress(data, model, progress=bar.update)
        except VaelabError as exc:
            raise VaelabError(str(exc), file) from None
    paths = [out / name for name in output_names(header.get("names"), len(images))]
    for path, image in zip(paths, images):
        save_image(path, image)
    click.echo(f"decoded {len(images)} image{'s' * (len(images) != 1)} of shape {tuple(images.shape[1:])} "
               f"from {len(data):,} bytes into {out}/ ({paths[0].name}"
               f"{' … ' + paths[-1].name if len(paths) > 1 else ''})")

"""Peak memory of reading one hostile upload, before and after issue 20.

Each worst-case file is tiny on the wire and 16 megapixels decoded. It is read as the
explorer's upload endpoint reads it — image to the model's channels and size — once the old
way (``read_image`` at full size, then ``convert``) and once the bounded way
(``read_image_for``, then ``convert``), each in a fresh interpreter; the figure is the
process' VmHWM minus its VmRSS just before the read (Pillow and numpy allocate in C, where
tracemalloc cannot see).

    .venv/bin/python benchmarks/upload_memory.py            # 4000×4000, read for a 28×28 grey model
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import sys
from vaelab.imageio import convert, read_image, read_image_for

def mb(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ":")) / 1024

data, size = open(sys.argv[2], "rb").read(), (int(sys.argv[3]), int(sys.argv[3]))
before = mb("VmRSS")
image = read_image(data) if sys.argv[1] == "full" else read_image_for(data, size)[0]
convert(image, 1, size)
print(mb("VmHWM") - before)
"""


def worst_cases(side: int) -> dict[str, bytes]:
    from PIL import Image

    def encode(image, fmt="PNG", **options) -> bytes:
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        return buf.getvalue()

    size = (side, side)
    return {"RGBA PNG, all zero": encode(Image.new("RGBA", size)),
            "palette PNG with transparency": encode(Image.new("P", size), transparency=0),
            "16-bit grey PNG": encode(Image.new("I;16", size)),
            "float TIFF (deflate)": encode(Image.new("F", size), "TIFF", compression="tiff_adobe_deflate"),
            "RGB JPEG": encode(Image.new("RGB", size), "JPEG")}


def peak_mb(path: Path, how: str, model_side: int) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, how, str(path), str(model_side)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=4000, help="the images' side in pixels")
    parser.add_argument("--model-side", type=int, default=28, help="the model's side in pixels")
    args = parser.parse_args(argv)
    print(f"{'file':<32}{'bytes':>9}{'full size MB':>14}{'bounded MB':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in worst_cases(args.side).items():
            path = Path(tmp) / "upload"
            path.write_bytes(data)
            full, bounded = (peak_mb(path, how, args.model_side) for how in ("full", "bounded"))
            print(f"{name:<32}{len(data):>9,}{full:>14.0f}{bounded:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

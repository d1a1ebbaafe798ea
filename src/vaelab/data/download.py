"""Fetching data set files with checksums, into a cache directory.

Only for users with a network: vaelab never downloads at test time (the tests serve small
files from a local HTTP server). A download lands in a temporary file, is checked against
its published MD5, and only then renamed into the cache; a wrong checksum deletes it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import VaelabError
from ..fileio import atomic_open

# Published checksums of the files as their authors serve them.
MIRRORS: dict[str, list[str]] = {
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/"],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
}
CHECKSUMS: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "cifar10": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
}


def cache_dir(configured: str = "") -> Path:
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("VAELAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vaelab"


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(dataset: str, filename: str, dest_dir: Path, timeout: float = 60.0) -> Path:
    """Download ``filename`` of ``dataset`` into ``dest_dir`` and verify its checksum."""
    from tqdm.auto import tqdm

    expected = CHECKSUMS[dataset][filename]
    dest = dest_dir / filename
    if dest.exists() and md5_of(dest) == expected:
        return dest
    errors = []
    for base in MIRRORS[dataset]:
        url = base + filename
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with atomic_open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                                          desc=f"downloading {filename}", leave=False) as bar:
                    digest = hashlib.md5(usedforsecurity=False)
                    for block in iter(lambda: response.read(1 << 16), b""):
                        digest.update(block)
                        out.write(block)
                        bar.update(len(block))
                    if digest.hexdigest() != expected:
                        raise _ChecksumMismatch(digest.hexdigest())
            return dest
        except _ChecksumMismatch as exc:
            errors.append(f"{url}: checksum {exc} ≠ published {expected}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise VaelabError(
        f"could not download {dataset} file {filename} ({'; '.join(errors)}); put the file into "
        f"{dest_dir} or pass --data-dir"
    )


class _ChecksumMismatch(Exception):
    pass

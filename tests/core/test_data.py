"""Data sets, splits, binarisation and batch loading."""

import gzip
import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab.data import BatchLoader, DataConfig, binarize_fixed, load_data
from vaelab.data import download as dl
from vaelab.data.sources import SHAPE_LEVELS, read_idx, render_shapes
from vaelab.errors import VaelabError

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def fake_mnist(folder: Path, n_train=50, n_test=20, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, arr in arrays.items():
        write_idx(folder / f"{name}.gz", arr)
    return arrays


def test_splits_never_overlap_and_cover_the_pool():
    for name in ("digits", "mnist-5k"):
        splits = load_data(DataConfig(name=name))
        sets = [set(s.indices.tolist()) for s in (splits.train, splits.val, splits.test)]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        assert sum(map(len, sets)) == {"digits": 1797, "mnist-5k": 5000}[name]
        assert splits.train.images.dtype == torch.uint8
        assert splits.train.labels is not None and splits.train.labels.max() == 9


def test_digits_are_scaled_to_8_bit():
    from sklearn.datasets import load_digits

    splits = load_data(DataConfig(name="digits"))
    raw = load_digits().images
    idx = splits.train.indices[:10].numpy()
    np.testing.assert_array_equal(splits.train.images[:10, 0].numpy(), np.round(raw[idx] * 255 / 16).astype(np.uint8))


@pytest.mark.skipif(not FMNIST.exists(), reason="needs Debian's dataset-fashion-mnist")
def test_fashion_mnist_keeps_the_official_test_split():
    splits = load_data(DataConfig(name="fashion-mnist", val_fraction=0.1))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (54000, 6000, 10000)
    assert splits.image_shape == (1, 28, 28)
    raw_test = read_idx(Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"), 3)
    np.testing.assert_array_equal(splits.test.images[:, 0].numpy(), raw_test)
    assert len(splits.class_names) == 10


def test_idx_files_from_a_data_dir_and_broken_ones(tmp_path):
    arrays = fake_mnist(tmp_path / "mnist")
    splits = load_data(DataConfig(name="mnist", data_dir=str(tmp_path), val_fraction=0.2, download=False))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (40, 10, 20)
    np.testing.assert_array_equal(splits.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    broken = tmp_path / "broken" / "mnist"
    fake_mnist(broken)
    data = gzip.decompress((broken / "train-images-idx3-ubyte.gz").read_bytes())
    (broken / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(VaelabError, match="truncated"):
        load_data(DataConfig(name="mnist", data_dir=str(tmp_path / "broken"), download=False))


def test_missing_files_without_download_say_where_they_looked(tmp_path):
    with pytest.raises(VaelabError, match="not found"):
        load_data(DataConfig(name="mnist", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"), download=False))


def test_cifar10_binary_records(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    expected = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, 4, dtype=np.uint8)
        pixels = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())
        expected[name] = (labels, pixels.reshape(4, 3, 32, 32))
    splits = load_data(DataConfig(name="cifar10", data_dir=str(tmp_path), val_fraction=0.0, download=False))
    assert splits.image_shape == (3, 32, 32)
    np.testing.assert_array_equal(splits.test.images.numpy(), expected["test_batch.bin"][1])
    np.testing.assert_array_equal(splits.test.labels.numpy(), expected["test_batch.bin"][0])
    assert len(splits.train) == 20


def test_download_verifies_checksums_against_a_local_server(tmp_path, monkeypatch):
    served = tmp_path / "served"
    fake_mnist(served)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        sums = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in served.iterdir()}
        monkeypatch.setitem(dl.MIRRORS, "mnist", [base])
        monkeypatch.setitem(dl.CHECKSUMS, "mnist", sums)
        cache = tmp_path / "cache"
        splits = load_data(DataConfig(name="mnist", cache_dir=str(cache), data_dir=str(tmp_path / "nothing")))
        assert len(splits.test) == 20
        assert (cache / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
        # a file whose checksum does not match is refused and not kept
        bad = dict(sums, **{"train-images-idx3-ubyte.gz": "0" * 32})
        monkeypatch.setitem(dl.CHECKSUMS, "mnist", bad)
        cache2 = tmp_path / "cache2"
        with pytest.raises(VaelabError, match="checksum"):
            load_data(DataConfig(name="mnist", cache_dir=str(cache2), data_dir=str(tmp_path / "nothing")))
        assert not (cache2 / "mnist" / "train-images-idx3-ubyte.gz").exists()
    finally:
        server.shutdown()


def test_folder_data_set_converts_size_and_channels(tmp_path):
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            Image.new("RGB", (40, 30), (40 * i, 100, 200)).save(tmp_path / cls / f"{i}.png")
    splits = load_data(DataConfig(name=f"folder:{tmp_path}", image_size=16, channels=1, val_fraction=0.2,
                                  test_fraction=0.2))
    assert splits.image_shape == (1, 16, 16)
    assert sum(map(len, (splits.train, splits.val, splits.test))) == 12
    assert set(splits.class_names) == {"cats", "dogs"}


def test_unknown_data_set_lists_the_choices():
    with pytest.raises(VaelabError, match="choose one of: .*fashion-mnist"):
        load_data(DataConfig(name="imagenet"))


def test_shapes_are_deterministic_and_follow_their_factors():
    a = load_data(DataConfig(name="shapes", shapes_count=200, image_size=32, seed=3))
    b = load_data(DataConfig(name="shapes", shapes_count=200, image_size=32, seed=3))
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.train.factors, b.train.factors)
    assert a.factor_names == ("shape", "scale", "orientation", "x", "y")
    # moving the x factor moves the centre of mass right; the scale factor grows the area
    base = np.array([[0, 2, 0, 0, 16]] * 32)
    base[:, 3] = np.arange(32)
    imgs = render_shapes(base, 64)[:, 0].astype(float)
    cols = (imgs.sum(1) * np.arange(64)).sum(1) / imgs.sum((1, 2))
    assert np.all(np.diff(cols) > 0)
    sizes = np.array([[1, s, 0, 16, 16] for s in range(SHAPE_LEVELS[1])])
    area = render_shapes(sizes, 64).reshape(len(sizes), -1).sum(1)
    assert np.all(np.diff(area) > 0)


def test_fixed_binarisation_is_seeded_and_unbiased():
    images = torch.full((200, 1, 20, 20), 64, dtype=torch.uint8)
    a, b = binarize_fixed(images, 7), binarize_fixed(images, 7)
    assert torch.equal(a, b) and not torch.equal(a, binarize_fixed(images, 8))
    assert set(a.unique().tolist()) <= {0, 255}
    assert abs(a.float().mean().item() / 255 - 64 / 255) < 0.01


def test_evaluation_sets_are_binarised_once_with_a_seed():
    a = load_data(DataConfig(name="digits", binarize="dynamic"))
    b = load_data(DataConfig(name="digits", binarize="dynamic"))
    assert set(a.test.images.unique().tolist()) == {0, 255}
    assert torch.equal(a.test.images, b.test.images)
    assert a.train.images.unique().numel() > 2      # dynamic: training images stay grey


def test_dynamic_binarisation_draws_fresh_samples_per_epoch():
    images = torch.full((64, 1, 4, 4), 128, dtype=torch.uint8)
    loader = BatchLoader(images, 64, seed=1, binarize=True)
    first = next(iter(loader))
    again = next(iter(loader))
    loader.set_epoch(1)
    other = next(iter(loader))
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert abs(first.mean().item() - 128 / 255) < 0.1


def test_distributed_shards_reassemble_the_single_process_batches():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1)
    single = list(BatchLoader(images, 8, seed=5))
    ranks = [list(BatchLoader(images, 8, seed=5, rank=r, world_size=2)) for r in range(2)]
    for step, batch in enumerate(single):
        merged = torch.cat([ranks[0][step], ranks[1][step]])
        assert sorted(merged.flatten().tolist()) == sorted(batch.flatten().tolist())
    # a new epoch reshuffles
    loader = BatchLoader(images, 8, seed=5)
    loader.set_epoch(1)
    assert not torch.equal(torch.cat(list(loader)), torch.cat(single))


def test_loader_can_start_mid_epoch_with_the_same_noise():
    images = torch.randint(0, 256, (32, 1, 3, 3), dtype=torch.uint8)
    full = list(BatchLoader(images, 8, seed=2, binarize=True).batches())
    tail = list(BatchLoader(images, 8, seed=2, binarize=True).batches(start=2))
    assert all(torch.equal(a, b) for a, b in zip(full[2:], tail))

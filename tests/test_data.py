"""The IDX reader on files the tests write byte by byte, the digits, the loader, normalisation."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from minitorch_cnn import data


def idx_bytes(array: np.ndarray, code: int = 0x08, dtype=">u1") -> bytes:
    """An IDX file by hand: 0, 0, type code, ndim; big-endian uint32 dims; big-endian data."""
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write(path, payload: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_read_idx_round_trips_images_and_labels(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 7
    labels = np.array([3, 9, 0], np.uint8)
    got = data.read_idx(write(tmp_path / "img", idx_bytes(images), gz))
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    assert np.array_equal(data.read_idx(write(tmp_path / "lab", idx_bytes(labels), gz)), labels)


def test_read_idx_big_endian_types(tmp_path):
    ints = np.array([[1, -2], [70000, 5]], np.int32)
    floats = np.array([1.5, -2.25], np.float64)
    assert np.array_equal(data.read_idx(write(tmp_path / "i", idx_bytes(ints, 0x0C, ">i4"))),
                          ints)
    got = data.read_idx(write(tmp_path / "f", idx_bytes(floats, 0x0E, ">f8")))
    assert got.dtype == np.float64 and np.array_equal(got, floats)


GOOD = idx_bytes(np.zeros((2, 3, 3), np.uint8))


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "truncated"),
        (b"\x00\x00", "truncated"),
        (b"\x01\x00\x08\x03" + GOOD[4:], "magic"),
        (b"\x00\x00\x07\x03" + GOOD[4:], "magic"),  # unknown type code
        (b"\x00\x00\x08\x00", "magic"),  # zero dims
        (GOOD[:10], "truncated IDX header"),
        (GOOD[:-1], "truncated"),
        (GOOD + b"\x00", "trailing bytes"),
    ],
    ids=["empty", "short", "nonzero-magic", "bad-type", "zero-dims", "short-header",
         "short-data", "trailing"],
)
def test_read_idx_rejects_corrupt_files(tmp_path, payload, message):
    path = write(tmp_path / "bad-idx", payload)
    with pytest.raises(ValueError, match=message) as err:
        data.read_idx(path)
    assert "bad-idx" in str(err.value)  # names the file


def test_read_idx_rejects_broken_gzip(tmp_path):
    compressed = gzip.compress(GOOD)
    path = write(tmp_path / "cut.gz", compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(path)
    path = write(tmp_path / "garbage.gz", b"\x1f\x8b" + b"\xff" * 30)
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(path)


def write_mnist(directory, n_train=12, n_test=5, gz=True, seed=0, label_shift=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train) + label_shift,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write(directory / (name + (".gz" if gz else "")), idx_bytes(array), gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_load_mnist_scales_and_shapes(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    split = data.load_mnist(tmp_path)
    assert split.x_train.shape == (12, 1, 28, 28) and split.x_train.dtype == np.float32
    assert split.x_test.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(split.x_train[:, 0] * 255, arrays["train-images-idx3-ubyte"],
                               rtol=1e-6)
    assert split.y_train.dtype == np.int64
    assert np.array_equal(split.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_load_mnist_finds_torchvision_layout(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    assert len(data.load_dataset(f"mnist:{tmp_path}").x_train) == 12


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images"):
        data.load_mnist(tmp_path)
    write_mnist(tmp_path / "bad-labels", label_shift=10)
    with pytest.raises(ValueError, match="labels 0..9"):
        data.load_mnist(tmp_path / "bad-labels")
    write_mnist(tmp_path / "mismatch")
    write(tmp_path / "mismatch" / "t10k-labels-idx1-ubyte.gz",
          idx_bytes(np.zeros(4, np.uint8)), gz=True)
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        data.load_mnist(tmp_path / "mismatch")
    write_mnist(tmp_path / "swapped")
    (tmp_path / "swapped" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (tmp_path / "swapped" / "t10k-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(ValueError, match="labels"):
        data.load_mnist(tmp_path / "swapped")


def test_load_dataset_rejects_unknown_spec():
    with pytest.raises(ValueError, match="digits"):
        data.load_dataset("cifar")


def test_upsample_bilinear_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 8, 8))
    ours = data.upsample_bilinear(x, 24, 24)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x)[:, None], size=(24, 24),
                                             mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)
    ours = data.upsample_bilinear(x, 11, 5)  # non-integer factors, and shrinking
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x)[:, None], size=(11, 5),
                                             mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_load_digits_is_mnist_shaped_and_split_by_seed():
    pytest.importorskip("sklearn")
    split = data.load_digits(seed=0)
    assert split.x_train.shape == (1438, 1, 28, 28) and split.x_test.shape == (359, 1, 28, 28)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_train.min() >= 0 and split.x_train.max() <= 1
    assert not split.x_train[:, :, :2].any() and not split.x_train[:, :, -2:].any()  # border
    assert set(np.unique(split.y_test)) == set(range(10))
    again = data.load_digits(seed=0)
    assert np.array_equal(split.x_test, again.x_test)
    other = data.load_digits(seed=1)
    assert not np.array_equal(split.y_test, other.y_test)
    # train and test are disjoint: no test image appears in the training set
    train_rows = {row.tobytes() for row in split.x_train.reshape(len(split.x_train), -1)}
    duplicates = sum(row.tobytes() in train_rows
                     for row in split.x_test.reshape(len(split.x_test), -1))
    assert duplicates <= 2  # the digits data set itself holds a few identical images


def test_loader_covers_each_sample_once_per_epoch():
    x, y = np.arange(10.0)[:, None], np.arange(10)
    loader = data.DataLoader(x, y, batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 3
    epoch1 = [b for b in loader]
    epoch2 = [b for b in loader]
    assert [len(yb) for _, yb in epoch1] == [4, 4, 2]
    order1 = np.concatenate([yb for _, yb in epoch1])
    order2 = np.concatenate([yb for _, yb in epoch2])
    assert sorted(order1) == list(range(10)) and sorted(order2) == list(range(10))
    assert not np.array_equal(order1, order2)  # a fresh permutation each epoch
    for xb, yb in epoch1:
        assert np.array_equal(xb[:, 0], yb)  # x and y stay paired
    replay = data.DataLoader(x, y, batch_size=4, shuffle=True, seed=3)
    assert np.array_equal(np.concatenate([yb for _, yb in replay]), order1)


def test_loader_order_and_drop_last():
    x, y = np.zeros((10, 1)), np.arange(10)
    plain = np.concatenate([yb for _, yb in data.DataLoader(x, y, batch_size=3)])
    assert np.array_equal(plain, np.arange(10))
    dropped = data.DataLoader(x, y, batch_size=3, drop_last=True)
    assert len(dropped) == 3 and [len(b) for _, b in dropped] == [3, 3, 3]
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(x, y, batch_size=0)
    with pytest.raises(ValueError, match="samples"):
        data.DataLoader(x, y[:5])


def test_normalize_uses_given_stats():
    x = np.random.default_rng(0).random((5, 1, 4, 4)).astype(np.float32) * 3 + 2
    mean, std = data.normalization_stats(x)
    z = data.normalize(x, mean, std)
    assert z.dtype == np.float32
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-5
    with pytest.raises(ValueError, match="std"):
        data.normalize(x, 0.0, 0.0)


def test_expand_path_expands_tilde_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MINITORCH_TEST_DIR", "sub")
    assert data.expand_path("~/data/mnist") == tmp_path / "data" / "mnist"
    assert data.expand_path("$HOME/$MINITORCH_TEST_DIR") == tmp_path / "sub"
    assert data.expand_path("${HOME}/x") == tmp_path / "x"
    assert data.expand_path(tmp_path / "plain") == tmp_path / "plain"  # a PathLike too
    assert data.expand_path("relative/dir") == data.Path("relative/dir")
    monkeypatch.setenv("MINITORCH_TEST_DIR", "a$b")  # a value may hold a "$": kept as it is
    assert data.expand_path("~/$MINITORCH_TEST_DIR") == tmp_path / "a$b"


@pytest.mark.parametrize("path", ["$MINITORCH_TEST_UNSET/mnist", "~/${MINITORCH_TEST_UNSET}"])
def test_expand_path_names_an_unset_variable(path, monkeypatch):
    monkeypatch.delenv("MINITORCH_TEST_UNSET", raising=False)
    with pytest.raises(ValueError, match="out: environment variable MINITORCH_TEST_UNSET in"):
        data.expand_path(path, argument="out")


def test_load_dataset_expands_its_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_mnist(tmp_path / "data" / "fashion")
    assert len(data.load_dataset("fashion-mnist:~/data/fashion").x_train) == 12
    assert len(data.load_dataset("idx:$HOME/data/fashion").x_test) == 5


@pytest.mark.parametrize("spec", ["mnist", "mnist:", "digits:somewhere", "cifar", ""])
def test_load_dataset_rejects_malformed_specs_listing_the_forms(spec):
    with pytest.raises(ValueError, match="data: expected one of 'digits', 'mnist:DIR', "
                                         "'fashion-mnist:DIR'.*; got"):
        data.load_dataset(spec)


def test_data_forms_follow_the_table():
    assert data.data_forms()[:4] == ["digits", "mnist:DIR", "fashion-mnist:DIR", "idx:DIR"]
    for kind, source in data.DATA_SOURCES.items():
        assert source.form.split(":")[0] == kind and source.description
        assert source.takes_dir == source.form.endswith(":DIR")

"""Data from the user's own files: CIFAR-10/CIFAR-2 binary batches, image folders, --resize.

Each test writes small files of the format byte by byte (or with Pillow for PNGs), reads them
back exactly, and checks that a truncated, corrupt or foreign file gives one ``ValueError``
naming the file and what was wrong. The CLI tests train on a few dozen written images with the
``numpy`` backend (no JIT compile), end to end, as issue 19 asks.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from minitorch_cnn import cli, data

PIL_Image = pytest.importorskip("PIL.Image")

FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def cifar_record(label: int, image: np.ndarray) -> bytes:
    """One record of the binary version: the label byte, then the R, G, B planes (32x32)."""
    return bytes([label]) + b"".join(image[c].astype(np.uint8).tobytes() for c in range(3))


def write_cifar(directory, per_file=4, seed=0, labels=None):
    """Six CIFAR-10 files of ``per_file`` random records each; returns {name: (x, y)}."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in FILES:
        x = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
        y = (rng.integers(0, 10, per_file) if labels is None else np.resize(labels, per_file))
        (directory / name).write_bytes(b"".join(map(cifar_record, y, x)))
        written[name] = (x, y.astype(np.int64))
    return written


def expected_cifar10(written):
    train = [written[name] for name in FILES[:5]]
    x_train = np.concatenate([x for x, _ in train]).astype(np.float32) / np.float32(255)
    y_train = np.concatenate([y for _, y in train])
    x_test, y_test = written["test_batch.bin"]
    return x_train, y_train, x_test.astype(np.float32) / np.float32(255), y_test


# ---------------------------------------------------------------------------------- CIFAR


def test_read_cifar_batch_places_every_byte(tmp_path):
    record = bytearray(3073)
    record[0] = 7  # the label
    record[1 + 0 * 1024 + 1 * 32 + 2] = 200  # R plane, row 1, column 2
    record[1 + 1 * 1024 + 31 * 32 + 0] = 17  # G plane, row 31, column 0
    record[1 + 2 * 1024 + 0 * 32 + 31] = 255  # B plane, row 0, column 31
    second = bytes([3]) + bytes(range(256)) * 12  # 3072 pixel bytes 0..255 repeated
    path = tmp_path / "test_batch.bin"
    path.write_bytes(bytes(record) + second)
    images, labels = data.read_cifar_batch(path)
    assert images.shape == (2, 3, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [7, 3]
    expected = np.zeros((3, 32, 32), np.uint8)
    expected[0, 1, 2], expected[1, 31, 0], expected[2, 0, 31] = 200, 17, 255
    assert np.array_equal(images[0], expected)
    assert images[1, 1, 0, 0] == (1024 % 256) and images[1, 2, 31, 31] == 255


@pytest.mark.parametrize("subfolder", ["", "cifar-10-batches-bin"], ids=["flat", "archive"])
def test_load_cifar10_reads_train_and_test_exactly(tmp_path, subfolder):
    written = write_cifar(tmp_path / subfolder if subfolder else tmp_path)
    split = data.load_dataset(f"cifar10:{tmp_path}")
    for got, want in zip(split, expected_cifar10(written), strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert split.x_train.shape == (20, 3, 32, 32) and split.x_test.shape == (4, 3, 32, 32)


def test_cifar2_keeps_airplanes_and_birds_remapped_as_the_book(tmp_path):
    labels = np.array([0, 1, 2, 3, 2, 9, 0])  # airplane, automobile, bird, cat, bird, ...
    written = write_cifar(tmp_path, per_file=7, labels=labels)
    x_train, y_train, x_test, y_test = expected_cifar10(written)
    split = data.load_dataset(f"cifar2:{tmp_path}")
    assert data.CIFAR2_LABEL_MAP == {0: 0, 2: 1}
    keep = np.isin(y_train, [0, 2])
    assert np.array_equal(split.x_train, x_train[keep])  # the files' order, kept
    assert split.y_train.tolist() == [0, 1, 1, 0] * 5 and split.y_train.dtype == np.int64
    assert np.array_equal(split.x_test, x_test[np.isin(y_test, [0, 2])])
    assert split.y_test.tolist() == [0, 1, 1, 0]
    assert data.class_names(f"cifar2:{tmp_path}") == ["airplane", "bird"]
    assert data.class_names(f"cifar10:{tmp_path}")[2] == "bird"


def _cut(path):
    path.write_bytes(path.read_bytes()[:-1])


def _label_10(path):
    raw = bytearray(path.read_bytes())
    raw[3073 * 2] = 10  # the third record's label byte
    path.write_bytes(bytes(raw))


def _pickled(path):
    path.write_bytes(b"\x80\x02}q\x00(X\x05\x00\x00\x00batch" + b"\x00" * 100)


@pytest.mark.parametrize(
    "spoil, message",
    [
        (_cut, r"12291 bytes is not a whole, nonzero number of 3073-byte records"),
        (lambda path: path.write_bytes(b""), r"0 bytes is not a whole, nonzero number"),
        (_label_10, r"record 2 has label byte 10; CIFAR-10 labels are 0..9"),
        (_pickled, r"pickled Python version"),
    ],
    ids=["truncated", "empty", "label-10", "pickle"],
)
def test_corrupt_cifar_file_names_the_file_and_the_fault(tmp_path, spoil, message):
    write_cifar(tmp_path)
    spoil(tmp_path / "data_batch_3.bin")
    with pytest.raises(ValueError, match=message) as error:
        data.load_dataset(f"cifar2:{tmp_path}")
    assert str(error.value).startswith(f"{tmp_path / 'data_batch_3.bin'}: ")


def test_missing_cifar_files_say_where_and_what(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        data.load_cifar10(tmp_path / "nowhere")
    write_cifar(tmp_path / "partial")
    (tmp_path / "partial" / "data_batch_5.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"no CIFAR-10 binary version .*data_batch_5"):
        data.load_cifar10(tmp_path / "partial")
    (tmp_path / "py" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "py" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x02")
    with pytest.raises(FileNotFoundError, match="pickled Python version"):
        data.load_cifar10(tmp_path / "py")


# ---------------------------------------------------------------------------- image folder


def write_png(path, pixels: np.ndarray, mode: str = "RGB"):
    """``pixels``: (H, W, 3) or (H, W, 4) or (H, W) uint8, saved losslessly as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL_Image.fromarray(pixels, mode=mode).save(path)
    return path


def write_folder(root, sizes=((6, 5),) * 5, seed=0):
    """Two classes, dog/ and cat/, of RGB PNGs; returns the (3, H, W) arrays in class order."""
    rng = np.random.default_rng(seed)
    images = {"cat": [], "dog": []}
    for name in ("dog", "cat"):  # written out of order: the classes are sorted by name
        for k, (h, w) in enumerate(sizes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            write_png(root / name / f"{name}{k:02d}.png", pixels)
            images[name].append(pixels.transpose(2, 0, 1))  # (3, H, W)
    return images


def test_image_folder_reads_pixels_and_labels_exactly(tmp_path):
    images = write_folder(tmp_path)
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\x00\x01junk")  # hidden: skipped
    (tmp_path / ".ipynb_checkpoints").mkdir()  # a hidden folder is no class
    split = data.load_dataset(f"imagefolder:{tmp_path}", seed=3)
    x = np.stack(images["cat"] + images["dog"]).astype(np.float32) / np.float32(255)
    y = np.array([0] * 5 + [1] * 5)
    for got, want in zip(split, data.train_test_split(x, y, 0.2, seed=3), strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert split.x_train.shape == (8, 3, 6, 5) and len(split.x_test) == 2
    assert data.class_names(f"imagefolder:{tmp_path}") == ["cat", "dog"]


def test_read_image_makes_grey_and_rgba_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    assert np.array_equal(data.read_image(write_png(tmp_path / "g.png", grey, "L")),
                          np.stack([grey] * 3))
    rgba = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    got = data.read_image(write_png(tmp_path / "a.png", rgba, "RGBA"))
    assert np.array_equal(got, rgba[..., :3].transpose(2, 0, 1))


def test_image_folder_of_two_sizes_needs_resize(tmp_path):
    images = write_folder(tmp_path, sizes=((6, 5), (6, 5), (9, 12)))
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path / 'cat' / 'cat02.png'}: 9x12 pixels (H x W) but "
            f"{tmp_path / 'cat' / 'cat00.png'}: 6x5; images of different sizes need "
            f"--resize N")):
        data.load_image_folder(tmp_path)
    split = data.load_image_folder(tmp_path, resize=4, test_fraction=0.5, seed=1)
    x = np.stack([data.resize_bilinear(image.astype(np.float32) / np.float32(255), 4, 4)
                  for image in images["cat"] + images["dog"]])
    want = data.train_test_split(x, np.array([0, 0, 0, 1, 1, 1]), 0.5, seed=1)
    assert split.x_train.shape == (3, 3, 4, 4) and split.x_train.dtype == np.float32
    for got, expected in zip(split, want, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "spoil, culprit, message",
    [
        (lambda root: (root / "dog" / "notes.txt").write_text("not a picture"),
         "dog/notes.txt", "not an image Pillow can read"),
        (lambda root: (root / "cat" / "cat01.png").write_bytes(
            (root / "cat" / "cat01.png").read_bytes()[:60]),
         "cat/cat01.png", "not an image Pillow can read"),
        (lambda root: (root / "cow").mkdir(), "cow", "empty class folder"),
    ],
    ids=["text-file", "truncated-png", "empty-class"],
)
def test_foreign_or_corrupt_image_folder_names_the_file(tmp_path, spoil, culprit, message):
    write_folder(tmp_path)
    spoil(tmp_path)
    with pytest.raises(ValueError, match=message) as error:
        data.load_dataset(f"imagefolder:{tmp_path}")
    assert str(error.value).startswith(f"{tmp_path / culprit}: ")


def test_image_folder_without_classes_or_images_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path / 'empty'}: no class folders"):
        data.load_dataset(f"imagefolder:{tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        data.load_image_folder(tmp_path / "nowhere")
    write_folder(tmp_path / "two", sizes=((4, 4),))
    with pytest.raises(ValueError, match="2 images are too few for a train/test split"):
        data.load_image_folder(tmp_path / "two")


# --------------------------------------------------------------------------------- resize


def test_resize_bilinear_hand_computed():
    # shrinking [0, 4, 8, 12] to 2: output 0 is centred at 1, the triangle is 2 wide, so
    # pixels 0, 1, 2 weigh 0.75, 0.75, 0.25: (0*0.75 + 4*0.75 + 8*0.25) / 1.75 = 20/7;
    # output 1: pixels 1, 2, 3 weigh 0.25, 0.75, 0.75: (1 + 6 + 9) / 1.75 = 64/7.
    # (Plain bilinear would read 2 and 10, the means of two pixels each.)
    got = data.resize_bilinear(np.array([[0.0, 4.0, 8.0, 12.0]]), 1, 2)
    np.testing.assert_allclose(got, [[20 / 7, 64 / 7]], rtol=1e-15)
    # enlarging [0, 4] to 4 samples at -0.25, 0.25, 0.75, 1.25: clamped, 0, 1, 3, 4
    np.testing.assert_allclose(data.resize_bilinear(np.array([[0.0, 4.0]]), 1, 4),
                               [[0.0, 1.0, 3.0, 4.0]], rtol=1e-15)
    np.testing.assert_allclose(data.resize_bilinear(np.array([[0.0], [4.0]]), 4, 1),
                               [[0.0], [1.0], [3.0], [4.0]], rtol=1e-15)


@pytest.mark.parametrize("size", [(5, 7), (3, 1), (40, 9), (17, 23), (34, 46)])
def test_resize_bilinear_is_pillows_bilinear_filter(size):
    x = np.random.default_rng(0).random((17, 23)).astype(np.float32)
    pillow = PIL_Image.fromarray(x, mode="F").resize(size[::-1], PIL_Image.BILINEAR)
    np.testing.assert_allclose(data.resize_bilinear(x, *size), np.asarray(pillow),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [(5, 7), (40, 9), (34, 46), (1, 4)])
def test_resize_bilinear_matches_torch_antialias(size):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).random((2, 3, 17, 23))
    want = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                           align_corners=False, antialias=True)
    np.testing.assert_allclose(data.resize_bilinear(x, *size), want.numpy(), rtol=1e-12,
                               atol=1e-12)
    if size[0] >= 17 and size[1] >= 23:  # enlarging: plain bilinear, upsample_bilinear
        np.testing.assert_allclose(data.resize_bilinear(x, *size),
                                   data.upsample_bilinear(x, *size), rtol=1e-12, atol=1e-12)


def test_resize_applies_to_every_data_set(tmp_path):
    write_cifar(tmp_path, labels=[0, 2])
    whole = data.load_dataset(f"cifar2:{tmp_path}")
    small = data.load_dataset(f"cifar2:{tmp_path}", resize=28)
    assert small.x_train.shape == (20, 3, 28, 28) and small.x_train.dtype == np.float32
    np.testing.assert_array_equal(small.x_test, data.resize_bilinear(whole.x_test, 28, 28))
    assert np.array_equal(small.y_train, whole.y_train)
    digits = data.load_dataset("digits", resize=12)
    assert digits.x_train.shape[1:] == (1, 12, 12) and digits.x_test.shape[1:] == (1, 12, 12)


@pytest.mark.parametrize("resize, error", [(0, ValueError), (-3, ValueError),
                                           (2.5, TypeError), (True, TypeError)])
def test_resize_must_be_a_positive_int(resize, error):
    with pytest.raises(error, match="resize: expected a positive int"):
        data.load_dataset("digits", resize=resize)


def test_new_forms_are_in_the_table():
    assert data.data_forms()[4:7] == ["cifar10:DIR", "cifar2:DIR", "imagefolder:DIR"]
    assert data.class_names("digits") is None


# ------------------------------------------------------------------------------------ CLI

TINY = ("--backend", "numpy", "--epochs", "1", "--batch-size", "8", "--no-plot",
        "--no-checkpoint", "--no-progress")


def test_cli_trains_on_cifar2_end_to_end(tmp_path, capsys):
    write_cifar(tmp_path / "cifar", per_file=8, labels=[0, 2, 5, 2])  # 20 train, 4 test
    status = cli.main(["train", "--model", "dlwpt_net", "--data", f"cifar2:{tmp_path / 'cifar'}",
                       "--out", str(tmp_path / "runs"), "--run-name", "c2", *TINY])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"on cifar2:{tmp_path / 'cifar'} (30 train / 6 test images of 3x32x32)" in out
    assert out.splitlines()[-1].startswith("final test accuracy ")
    assert (tmp_path / "runs" / "c2" / "metrics.json").is_file()


def test_cli_trains_on_an_image_folder_with_resize(tmp_path, capsys):
    write_folder(tmp_path / "photos", sizes=((20, 24), (40, 30), (33, 33)) * 3)
    status = cli.main(["train", "--model", "dlwpt_net", "--data",
                       f"imagefolder:{tmp_path / 'photos'}", "--resize", "32", "--out",
                       str(tmp_path / "runs"), "--run-name", "folder", *TINY])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "(14 train / 4 test images of 3x32x32)" in out
    metrics = (tmp_path / "runs" / "folder" / "metrics.json").read_text()
    assert '"resize": 32' in metrics


def test_cli_reports_a_corrupt_file_by_name(tmp_path, capsys):
    write_cifar(tmp_path)
    _cut(tmp_path / "test_batch.bin")
    status = cli.main(["train", "--model", "dlwpt_net", "--data", f"cifar2:{tmp_path}", *TINY,
                       "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert status == 2
    assert f"error: {tmp_path / 'test_batch.bin'}: not a CIFAR-10 binary batch" in err


def test_explain_samples_draws_a_labelled_grid(tmp_path, capsys):
    write_cifar(tmp_path / "cifar", labels=[0, 1, 2, 3])
    out_dir = tmp_path / "img"
    status = cli.main(["explain", "samples", "--data", f"cifar10:{tmp_path / 'cifar'}",
                       "--n", "12", "--out", str(out_dir)])
    assert status == 0, capsys.readouterr().err
    png = (out_dir / "samples.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "samples.png" in capsys.readouterr().out
    assert cli.main(["explain", "samples", "--data", "digits", "--n", "0", "--out",
                     str(out_dir)]) == 2
    assert "n: expected a positive int" in capsys.readouterr().err

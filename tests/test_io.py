"""State dicts with PyTorch (both ways, every model) and .npz checkpoints (atomic, no pickle)."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import io, models, nn

torch = pytest.importorskip("torch")
ref_models = pytest.importorskip("reference.models")


def small_model():
    mc.init.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


@pytest.mark.parametrize("name", list(models.MODELS))
def test_state_dict_round_trips_with_torch_both_ways(name):
    ours = models.MODELS[name]()
    twin = ref_models.MODELS[name]()
    # ours -> torch
    state = ours.state_dict()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # strict
    for key, value in twin.state_dict().items():
        assert np.array_equal(value.numpy(), state[key]), key
        assert value.numpy().dtype == state[key].dtype, key  # float32, int64 for the counter
    # torch -> ours: a freshly initialised torch model's values land in ours
    twin = ref_models.MODELS[name]()
    torch_state = twin.state_dict()
    ours.load_state_dict(torch_state)
    for key, value in ours.state_dict().items():
        assert np.array_equal(value, torch_state[key].numpy()), key


def test_lenet5_forward_matches_torch_after_loading_torch_weights():
    twin = ref_models.lenet5()
    ours = models.lenet5()
    ours.load_state_dict(twin.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    with mc.use_backend("numpy"):
        y = ours(x)
    np.testing.assert_allclose(y, twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def test_load_state_dict_errors_name_the_key_and_leave_the_model_untouched():
    model = small_model()
    before = model.state_dict()
    state = model.state_dict()
    state["3.weight"] = np.zeros((3, 9), np.float32)
    with pytest.raises(ValueError, match=r"shape mismatch for '3\.weight'.*\(3, 8\).*\(3, 9\)"):
        model.load_state_dict({**state, "0.weight": state["0.weight"] * 0})
    bad = model.state_dict()
    del bad["1.running_var"]
    with pytest.raises(ValueError, match=r"missing keys: \['1\.running_var'\]"):
        model.load_state_dict({k: v * 0 if v.dtype.kind == "f" else v for k, v in bad.items()})
    with pytest.raises(ValueError, match=r"unexpected keys: \['extra'\]"):
        model.load_state_dict({**model.state_dict(), "extra": np.zeros(1)})
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key
    model.load_state_dict(bad, strict=False)  # non-strict: loads what is there


def test_save_load_round_trip_with_meta(tmp_path):
    model = small_model()
    path = io.save(model, tmp_path / "ckpt.npz", meta={"epoch": 3, "model": "small"})
    other = small_model()
    for p in other.parameters():
        p.data = p.data + 1
    meta = io.load(other, path)
    assert meta == {"epoch": 3, "model": "small"}
    for key, value in other.state_dict().items():
        assert np.array_equal(value, model.state_dict()[key])
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temp file left
    assert io.load(small_model(), io.save(model, tmp_path / "plain.npz")) == {}


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    model = small_model()
    path = io.save(model, tmp_path / "ckpt.npz", meta={"epoch": 1})
    original = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save(model, path, meta={"epoch": 2})
    assert path.read_bytes() == original  # the old checkpoint survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def test_load_refuses_pickled_objects(tmp_path):
    model = small_model()
    path = tmp_path / "evil.npz"
    state = {k: v for k, v in model.state_dict().items()}
    state["0.weight"] = np.array([object()] * 3, dtype=object)
    np.savez(path, **state)
    with pytest.raises(ValueError, match="not a readable .npz checkpoint"):
        io.load(model, path)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"],
                         ids=["empty", "garbage", "truncated-zip"])
def test_load_rejects_corrupt_files_cleanly(tmp_path, content):
    model = small_model()
    before = model.state_dict()
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.npz"):
        io.load(model, path)
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())


def test_load_truncated_checkpoint_and_mismatched_model(tmp_path):
    path = io.save(small_model(), tmp_path / "ckpt.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match="cut.npz"):
        io.load(small_model(), cut)
    lenet = models.lenet5()
    before = lenet.state_dict()
    with pytest.raises(ValueError, match="ckpt.npz.*missing keys"):
        io.load(lenet, path)
    assert all(np.array_equal(v, before[k]) for k, v in lenet.state_dict().items())


def test_state_dict_is_a_copy():
    model = small_model()
    state = model.state_dict()
    state["0.weight"][...] = 123
    assert not np.any(model.state_dict()["0.weight"] == 123)


def test_text_and_figure_writes_are_atomic_and_a_failure_keeps_the_old_file(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = tmp_path / "sub" / "metrics.json"
    io.write_text(target, '{"epoch": 1}\n')
    assert target.read_text() == '{"epoch": 1}\n'

    def fail(f):
        f.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.atomic_write(target, fail)
    assert target.read_text() == '{"epoch": 1}\n'  # the previous file, untouched
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]  # no temp file left

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = io.save_figure(fig, tmp_path / "curves.png", dpi=50)
    plt.close(fig)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_atomic_writes_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    import os
    import stat

    path = io.write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask

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


# ------------------------------------------------------------ io.save(obj) / io.load(path)


def assert_same(ours, expected, where="obj"):
    """Equal and of exactly the same types, nesting and order; arrays bit for bit."""
    assert type(ours) is type(expected), f"{where}: {type(ours)} != {type(expected)}"
    if isinstance(expected, (np.ndarray, np.generic)):
        assert ours.dtype == expected.dtype and ours.shape == expected.shape, where
        assert np.asarray(ours).tobytes() == np.asarray(expected).tobytes(), where
    elif isinstance(expected, dict):
        assert list(ours) == list(expected), where
        for key in expected:
            assert_same(ours[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(ours) == len(expected), where
        for i, (a, b) in enumerate(zip(ours, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert repr(ours) == repr(expected), where  # nan, inf and -0.0 included
    else:
        assert ours == expected, where


def test_d2l_file_io_section_side_by_side_with_torch(tmp_path, monkeypatch):
    """d2l "File I/O": a tensor, a list of tensors, a dict of tensors, an MLP's parameters."""
    monkeypatch.chdir(tmp_path)
    x, y = np.arange(4), np.zeros(4, np.float32)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    io.save(x, "x-file")
    torch.save(tx, "x-file.pt")
    assert_same(io.load("x-file"), torch.load("x-file.pt").numpy())
    io.save([x, y], "x-files")
    torch.save([tx, ty], "x-files.pt")
    x2, y2 = io.load("x-files")
    tx2, ty2 = torch.load("x-files.pt")
    assert_same([x2, y2], [tx2.numpy(), ty2.numpy()])
    io.save({"x": x, "y": y}, "mydict")
    torch.save({"x": tx, "y": ty}, "mydict.pt")
    theirs = torch.load("mydict.pt")
    assert_same(io.load("mydict"), {k: v.numpy() for k, v in theirs.items()})

    def mlp(lib):
        return lib.Sequential(lib.Linear(20, 256), lib.ReLU(), lib.Linear(256, 10))

    net, X = mlp(nn), np.random.default_rng(0).standard_normal((2, 20)).astype(np.float32)
    io.save(net.state_dict(), "mlp.params")
    clone = mlp(nn)
    clone.load_state_dict(io.load("mlp.params"))
    clone.eval()
    assert np.array_equal(clone(X), net(X))  # Y_clone == Y
    twin = mlp(torch.nn)  # the same file loads into the PyTorch twin
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in io.load("mlp.params").items()})
    np.testing.assert_allclose(twin(torch.from_numpy(X)).detach().numpy(), net(X), rtol=1e-5,
                               atol=1e-6)
    io.save(net, "net.params")  # a module is stored as its state dict
    assert_same(io.load("net.params"), net.state_dict())


ROUND_TRIPS = {
    "float32-bit-exact": np.array([0.1, -0.0, np.inf, -np.inf, 1e-45, 3.4e38], np.float32),
    "float32-nan-payloads": np.array([0x7FC00001, 0xFFC12345, 0x7F800001], np.uint32).view(
        np.float32),
    "float64-3d": np.random.default_rng(0).standard_normal((2, 3, 4)),
    "int64-0d": np.array(7),
    "int8-empty": np.zeros((0, 3), np.int8),
    "uint16": np.arange(5, dtype=np.uint16),
    "bool": np.array([[True, False]]),
    "float16": np.array([1.5, 65504], np.float16),
    "complex128": np.array([1 + 2j]),
    "unicode": np.array(["a", "ü"]),
    "fortran-order": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "strided-view": np.arange(20.0)[::3],
    "numpy-scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.float64(np.nan)],
    "python-scalars": [0, -(2**80), 0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -0.0,
                       float("nan"), float("inf"), float("-inf"), True, False, None,
                       "", "text ü"],
    "tuple-stays-tuple": (np.ones(2), (1, (2.5,)), []),
    "empty-containers": {"list": [], "tuple": (), "dict": {}},
    "nested": {"model": {"0.weight": np.ones((2, 2), np.float32)}, "epoch": 3,
               "history": [{"loss": 0.5, "acc": np.float64(0.9)}, (None, "x")], "lr": 0.01},
    "awkward-keys": {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "": np.full(1, 2.0),
                     "__structure__": np.full(1, 3.0), "__meta__": 1, "file": np.full(1, 4.0),
                     "allow_pickle": np.full(1, 5.0), "x\x00y": np.full(1, 6.0), "ü é": 7,
                     "root": np.full(1, 8.0)},
    "key-order": {"b": 1, "a": 2, "c": np.zeros(1)},
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_save_load_round_trips_every_type(tmp_path, name):
    obj = ROUND_TRIPS[name]
    back = io.load(io.save(obj, tmp_path / "obj.npz"))
    expected = obj.copy() if isinstance(obj, np.ndarray) else obj
    assert_same(back, expected)
    if name == "fortran-order":
        assert back.flags.f_contiguous


def test_float32_arrays_are_bit_exact(tmp_path):
    bits = np.random.default_rng(0).integers(0, 2**32, 10_000, dtype=np.uint32)
    values = bits.view(np.float32)  # every pattern: NaNs with payloads, subnormals, -0.0
    back = io.load(io.save({"w": values}, tmp_path / "w.npz"))["w"]
    assert back.dtype == np.float32 and np.array_equal(back.view(np.uint32), bits)


def test_the_format_is_an_npz_named_by_paths_with_a_json_manifest(tmp_path):
    """What the module docstring documents, read back with numpy and json alone."""
    import json

    a, b = np.zeros(2, np.float32), np.ones((1, 3))
    path = io.save({"w": [a, b], "step": 3, "lr": 0.1, "pair": (None, True)}, tmp_path / "f",
                   meta={"epoch": 2})
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["__structure__", "w/0", "w/1"]
        assert np.array_equal(archive["w/1"], b)
        manifest = json.loads(str(archive["__structure__"]))
    assert manifest == {"format": "minitorch_cnn.io", "version": 1, "meta": {"epoch": 2},
                        "root": {"dict": [["w", {"list": [{"array": "w/0"}, {"array": "w/1"}]}],
                                          ["step", {"int": 3}], ["lr", {"float": "0.1"}],
                                          ["pair", {"tuple": [{"none": None},
                                                              {"bool": True}]}]]}}
    with np.load(io.save(np.float32(2), tmp_path / "s"), allow_pickle=False) as archive:
        assert archive.files == ["root", "__structure__"]
        assert json.loads(str(archive["__structure__"]))["root"] == {"scalar": "root"}
    with np.load(io.save(small_model(), tmp_path / "m")) as archive:
        assert archive.files[:2] == ["0.weight", "0.bias"]  # a state dict keeps its keys


def test_device_arrays_and_torch_tensors_are_stored_as_numpy(tmp_path):
    class DeviceArray:  # a Numba CUDA device array's host copy protocol
        def copy_to_host(self):
            return np.arange(3.0)

    obj = {"device": DeviceArray(), "tensor": torch.arange(4, dtype=torch.float32)}
    back = io.load(io.save(obj, tmp_path / "d.npz"))
    assert_same(back, {"device": np.arange(3.0), "tensor": np.arange(4, dtype=np.float32)})
    twin = ref_models.lenet5()
    io.save(twin, tmp_path / "torch.npz")  # a torch module: its state dict, as numpy
    ours = models.lenet5()
    assert io.load(ours, tmp_path / "torch.npz") == {}
    assert np.array_equal(ours.state_dict()["0.weight"], twin.state_dict()["0.weight"].numpy())


def old_save(model, path, meta=None):
    """How io.save wrote checkpoints before the manifest (version 0), verbatim."""
    import json

    arrays = model.state_dict()
    if meta is not None:
        arrays["__meta__"] = np.array(json.dumps(meta))
    return io.atomic_write(path, lambda f: np.savez(f, **arrays))


def test_files_of_the_previous_version_still_load(tmp_path):
    model = small_model()
    for meta in (None, {"epoch": 4}):
        path = old_save(model, tmp_path / f"old-{meta is None}.npz", meta)
        assert_same(io.load(path), model.state_dict())  # a plain dict; __meta__ is not in it
        other = small_model()
        for p in other.parameters():
            p.data = p.data + 1
        assert io.load(other, path) == (meta or {})
        assert_same(other.state_dict(), model.state_dict())
        arrays, read_meta = io.read_state(path)
        assert list(arrays) == list(model.state_dict()) and read_meta == (meta or {})
        other.load_state_dict(io.load(path))  # PyTorch's habit on an old file


def test_read_state_and_load_into_a_model_refuse_a_file_that_is_not_a_state_dict(tmp_path):
    path = io.save([np.zeros(2)], tmp_path / "list.npz")
    with pytest.raises(ValueError, match=r"list\.npz: holds a list that is not a state dict"):
        io.read_state(path)
    with pytest.raises(ValueError, match=r"list\.npz: holds a list"):
        io.load(small_model(), path)
    nested = io.save({"model": small_model().state_dict(), "epoch": 1}, tmp_path / "n.npz")
    with pytest.raises(ValueError, match=r"n\.npz: holds a dict that is not a state dict"):
        io.read_state(nested)
    model = small_model()
    model.load_state_dict(io.load(nested)["model"])  # the checkpoint-dict habit


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def manifest(root, **fields):
    import json

    return np.array(json.dumps({"format": "minitorch_cnn.io", "version": 1, "root": root,
                                **fields}))


def foreign_zip(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return path


FOREIGN = {  # name -> (write the file at path, what the error must say)
    "random-bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(300)),
                     r"not a readable \.npz checkpoint \(no zip signature at its start\)"),
    "empty": (lambda p: p.write_bytes(b""), r"not a readable \.npz checkpoint \(empty file\)"),
    "pickle": (lambda p: p.write_bytes(__import__("pickle").dumps([1])),
               "no zip signature at its start"),
    "zip-not-ours": (foreign_zip, r"member 'notes\.txt' is not a \.npy array"),
    "npy": (lambda p: np.save(open(p, "wb"), np.zeros(3)),
            r"a single \.npy array, not an \.npz archive"),
    "manifest-not-json": (lambda p: write_npz(p, __structure__=np.array("{nope")),
                          r"__structure__ is not JSON"),
    "manifest-not-a-string": (lambda p: write_npz(p, __structure__=np.zeros(2)),
                              r"__structure__ is a float64 array of shape \(2,\), not a string"),
    "other-format": (lambda p: write_npz(p, __structure__=np.array('{"format": "x"}')),
                     r"__structure__ is not a minitorch_cnn\.io manifest"),
    "newer-version": (lambda p: write_npz(p, __structure__=manifest({"int": 1}, version=2)),
                      r"format version 2; this minitorch_cnn reads up to 1"),
    "missing-array": (lambda p: write_npz(p, __structure__=manifest({"array": "w"})),
                      r"names an array 'w' that the archive lacks"),
    "extra-array": (lambda p: write_npz(p, w=np.zeros(1), __structure__=manifest({"int": 1})),
                    r"arrays not in the manifest: \['w'\]"),
    "malformed-node": (lambda p: write_npz(p, __structure__=manifest({"set": [1]})),
                       r"malformed node \{'set'"),
    "bad-float": (lambda p: write_npz(p, __structure__=manifest({"float": "one"})),
                  "corrupt or foreign file"),
    "bool-as-int": (lambda p: write_npz(p, __structure__=manifest({"int": True})),
                    r"malformed node \{'int'"),
    "bad-dict": (lambda p: write_npz(p, __structure__=manifest({"dict": [[1, {"int": 1}]]})),
                 r"malformed dict node"),
    "scalar-not-0d": (lambda p: write_npz(p, s=np.zeros(2), __structure__=manifest(
        {"scalar": "s"})), r"scalar 's' has shape \(2,\)"),
    "bad-old-meta": (lambda p: write_npz(p, w=np.zeros(1), __meta__=np.array("{")),
                     r"__meta__ is not JSON"),
}


@pytest.mark.parametrize("name", list(FOREIGN))
def test_load_names_the_file_and_the_problem_of_corrupt_or_foreign_files(tmp_path, name):
    write, message = FOREIGN[name]
    path = tmp_path / f"{name}.bin"
    write(path)
    with pytest.raises(ValueError, match=rf"{name}\.bin: .*{message}"):
        io.load(path)


def test_load_truncated_new_format_file(tmp_path):
    path = io.save({"w": np.arange(100.0), "n": 1}, tmp_path / "full.npz")
    for cut in (10, 200, len(path.read_bytes()) - 30):
        part = tmp_path / f"cut{cut}.npz"
        part.write_bytes(path.read_bytes()[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.npz: not a readable \.npz checkpoint"):
            io.load(part)
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.npz")


@pytest.mark.parametrize("obj, error, message", [
    (np.array([object()]), TypeError, r"obj is an array of Python objects"),
    ({"a": [np.array([None, 1])]}, TypeError, r"obj\['a'\]\[0\] is an array of Python objects"),
    ({1: np.zeros(1)}, TypeError, r"obj has a key 1 of type int; expected str keys"),
    ({"a": {1, 2}}, TypeError, r"obj\['a'\]: cannot store a set \(expected an array"),
    ([nn.Linear(2, 2)], TypeError, r"obj\[0\]: cannot store a Linear .*module\.state_dict\(\)"),
    (1 + 2j, TypeError, r"obj: cannot store a complex"),
])
def test_save_names_what_it_cannot_store(tmp_path, obj, error, message):
    with pytest.raises(error, match=message):
        io.save(obj, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_save_refuses_a_structure_that_contains_itself(tmp_path):
    loop: list = [np.zeros(1)]
    loop.append({"again": loop})
    with pytest.raises(ValueError, match=r"obj\[1\]\['again'\] contains itself"):
        io.save(loop, tmp_path / "x.npz")
    shared = np.zeros(1)
    assert_same(io.load(io.save([shared, shared], tmp_path / "y.npz")), [shared, shared])


def test_save_and_load_check_their_arguments(tmp_path):
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike, got int"):
        io.save(np.zeros(1), 3)
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike, got Sequential"):
        io.load(small_model())
    with pytest.raises(TypeError, match=r"model: expected a module \(with load_state_dict\), "
                                        r"got str"):
        io.load("model", tmp_path / "x.npz")


def test_saving_any_object_is_atomic(tmp_path, monkeypatch):
    path = io.save([np.ones(3)], tmp_path / "obj.npz")
    original = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save({"other": np.zeros(2)}, path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["obj.npz"]


def structures():
    """Nested dicts (any str keys), lists and tuples of arrays, NumPy and Python scalars."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.float16])
    arrays = dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3,
                                                                       min_side=0, max_side=3)))
    leaves = st.one_of(
        arrays, dtypes.flatmap(lambda dt: hnp.from_dtype(np.dtype(dt)).map(dt)),
        st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(), st.text(max_size=5))
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=3), st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), children, max_size=3)), max_leaves=8)


def test_save_load_round_trips_random_structures(tmp_path):
    from hypothesis import given

    @given(structures())
    def round_trip(obj):
        assert_same(io.load(io.save(obj, tmp_path / "obj.npz")), obj)

    round_trip()

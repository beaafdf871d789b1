"""Training on the GPU with our kernels only: each training kernel, then LeNet-5 step by step.

Part (a) checks each kernel of ``kernels.cuda.train`` against torch on small random inputs
(sigmoid with huge ``|x|``, softmax cross-entropy with huge logits and a batch longer than
the reduction block, SGD with momentum and weight decay over two steps, Linear both as a
GEMM and as a 1x1 conv), and compiles each to PTX for sm_90 with the real compiler.
Part (b) trains ``minitorch_cnn.gpu_train.GpuLeNet5`` and its torch twin
``reference.models.lenet5`` from the same weights on the same two batches with the same SGD,
float64, and compares the loss of each step (1e-10 relative), every parameter after each
step (1e-8) and every update (the change of a parameter in a step, 1e-8 of its own scale).

Without a GPU this runs in the Numba CUDA simulator, where each thread is a Python thread:
one LeNet-5 step costs about 20 s, so part (b) uses batches of one image, and the conv layers
run the direct rung (the implicit-GEMM rung, the default on a GPU, is ~3x slower to simulate
and is compared with torch on its own in ``tests/test_cuda_kernels.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

kc = pytest.importorskip("kernels.cuda")
if kc.unavailable_reason() is not None:  # pragma: no cover - only without GPU and simulator
    pytest.skip(kc.unavailable_reason(), allow_module_level=True)
torch = pytest.importorskip("torch")

import numba  # noqa: E402
from numba import cuda  # noqa: E402

import reference.models as ref_models  # noqa: E402
from kernels.cuda import train as kt  # noqa: E402
from minitorch_cnn import models  # noqa: E402
from minitorch_cnn.gpu_train import PARAMETER_SHAPES, GpuLeNet5  # noqa: E402
from tests.checks import check_against_torch  # noqa: E402

DTYPES = [np.float64, np.float32]
TF = torch.nn.functional


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def host(d):
    return d.copy_to_host()


# --------------------------------------------------------------------------- (a) kernels


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_sigmoid_forward_matches_torch_including_huge_magnitudes(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(30) * 4,
                        [0.0, -0.0, 1e3, -1e3, 88.0, -88.0, 745.0, -745.0, 1e308, -1e308,
                         np.inf, -np.inf, np.nan]]).reshape(43, 1)
    with np.errstate(over="ignore"):
        x = x.astype(dtype)  # 1e308 becomes inf in float32
    y = kt.sigmoid_forward(dev(x))
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    check_against_torch(y, expected, "sigmoid")
    assert np.all(np.isfinite(host(y)[:-1]))  # no overflow to NaN at either end


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_sigmoid_backward_matches_torch_autograd(dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 4, 5)) * 3).astype(dtype)
    x[0, 0, :2] = [50.0, -50.0]
    grad_y = rng.standard_normal(x.shape).astype(dtype)
    tx = torch.from_numpy(x).requires_grad_()
    torch.sigmoid(tx).backward(torch.from_numpy(grad_y))
    y = kt.sigmoid_forward(dev(x))
    check_against_torch(kt.sigmoid_backward(dev(grad_y), y), tx.grad.numpy(), "grad_x")


def test_grid_stride_kernel_gives_the_same_result_for_any_grid():
    """The grid-stride loop covers every element whatever the launch: 1 block of 256
    threads, 3 blocks of 32 (each thread handles 3 elements), 1 block of 1 thread."""
    rng = np.random.default_rng(2)
    x = dev(rng.standard_normal(250))
    results = []
    for grid, block in [(1, 256), (3, 32), (1, 1)]:
        y = cuda.device_array(250)
        kt.sigmoid_forward_kernel(numba.float64)[grid, block](x, y)
        results.append(host(y))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def _cross_entropy_problem(rng, N, K, dtype):
    logits = (rng.standard_normal((N, K)) * 3).astype(dtype)
    logits[0] += 1000.0  # exp(1000) overflows: only a stabilised log-sum-exp survives
    logits[-1, 1] = -1000.0
    labels = rng.integers(0, K, N).astype(np.int64)
    return logits, labels


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_cross_entropy_loss_and_grad_match_torch_with_huge_logits(dtype):
    rng = np.random.default_rng(3)
    logits, labels = _cross_entropy_problem(rng, 5, 10, dtype)
    tl = torch.from_numpy(logits).requires_grad_()
    expected = TF.cross_entropy(tl, torch.from_numpy(labels))
    expected.backward()
    loss, lse = kt.cross_entropy_forward(dev(logits), dev(labels))
    check_against_torch(loss, expected.detach().numpy().reshape(1), "loss")
    check_against_torch(lse, torch.logsumexp(tl.detach(), 1).numpy(), "log_sum_exp")
    grad = kt.cross_entropy_backward(dev(logits), dev(labels), lse)
    check_against_torch(grad, tl.grad.numpy(), "grad_logits")


def test_cross_entropy_mean_over_a_batch_longer_than_the_block_is_exact_and_repeatable():
    """N = 300 > REDUCE_THREADS = 128: threads first add 2 or 3 samples each, then the tree;
    two runs give the same bits (fixed order, no atomics)."""
    rng = np.random.default_rng(4)
    logits, labels = _cross_entropy_problem(rng, 300, 3, np.float64)
    expected = TF.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).numpy()
    d_logits, d_labels = dev(logits), dev(labels)
    first = host(kt.cross_entropy_forward(d_logits, d_labels)[0])
    second = host(kt.cross_entropy_forward(d_logits, d_labels)[0])
    check_against_torch(first, expected.reshape(1), "loss")
    assert first.tobytes() == second.tobytes()


def test_cross_entropy_label_out_of_range_gives_nan_not_garbage():
    logits = np.zeros((2, 3))
    loss, _ = kt.cross_entropy_forward(dev(logits), dev(np.array([0, 3], dtype=np.int64)))
    assert np.isnan(host(loss)[0])


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 1e-3), (0.0, 1e-3), (0.9, 0.0)],
                         ids=["momentum-wd", "no-momentum", "no-wd"])
def test_sgd_two_steps_match_torch_optim_sgd(momentum, weight_decay):
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal((3, 4, 5))
    grads = [rng.standard_normal(p0.shape) for _ in range(2)]
    tp = torch.from_numpy(p0.copy()).requires_grad_()
    opt = torch.optim.SGD([tp], lr=0.1, momentum=momentum, weight_decay=weight_decay)
    param, buf = dev(p0), cuda.device_array(p0.shape)
    for step, g in enumerate(grads):
        tp.grad = torch.from_numpy(g)
        opt.step()
        kt.sgd_step(param, dev(g), buf, kt.SgdHyper(0.1, momentum, weight_decay),
                    first=step == 0)
        check_against_torch(param, tp.detach().numpy(), f"param after step {step + 1}")
        if momentum:
            check_against_torch(buf, opt.state[tp]["momentum_buffer"].numpy(), "buffer")


def _linear_problem(rng, dtype, N=3, K=7, O=5):
    x = rng.standard_normal((N, K)).astype(dtype)
    w = rng.standard_normal((O, K)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    gy = rng.standard_normal((N, O)).astype(dtype)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    y = TF.linear(tx, tw, tb)
    y.backward(torch.from_numpy(gy))
    return (x, w, b, gy), (y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(),
                           tb.grad.numpy())


@pytest.mark.parametrize("route", ["gemm", "conv"])
def test_linear_forward_and_backward_match_torch(route):
    """``gemm``: the kernels of ``train``; ``conv``: a 1x1 conv through the conv kernels."""
    forward, backward = {"gemm": (kt.linear_forward, kt.linear_backward),
                         "conv": (kt.linear_forward_conv, kt.linear_backward_conv)}[route]
    rng = np.random.default_rng(6)
    (x, w, b, gy), (y_ref, gx_ref, gw_ref, gb_ref) = _linear_problem(rng, np.float64)
    check_against_torch(forward(dev(x), dev(w), dev(b)), y_ref, "y")
    gx, gw, gb = backward(dev(gy), dev(x), dev(w))
    check_against_torch(gx, gx_ref, "grad_x")
    check_against_torch(gw, gw_ref, "grad_weight")
    check_against_torch(gb, gb_ref, "grad_bias")


def test_linear_gemm_without_bias_and_in_float32_matches_torch():
    rng = np.random.default_rng(7)
    (x, w, _, _), _ = _linear_problem(rng, np.float32, N=2, K=33, O=4)
    expected = TF.linear(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    check_against_torch(kt.linear_forward(dev(x), dev(w)), expected, "y")


def test_layer_specs_chain_lenet5_shapes():
    """Each layer's spec takes the shape the previous one gives, down to Linear 7's 400."""
    from minitorch_cnn.gpu_train import layer_specs

    S = layer_specs(3)
    assert S.conv0.x_shape == (3, 1, 28, 28) and S.conv0.y_shape == (3, 6, 28, 28)
    assert S.pool2.x_shape == S.conv0.y_shape and S.pool2.y_shape == (3, 6, 14, 14)
    assert S.conv3.x_shape == S.pool2.y_shape and S.conv3.y_shape == (3, 16, 10, 10)
    assert S.pool5.x_shape == S.conv3.y_shape and S.pool5.y_shape == (3, 16, 5, 5)
    assert layer_specs(3) is S  # built once per batch size


# The whole model in the simulator costs ~19 s a step with the direct conv rung (~62 s with
# igemm, whose kernels are tested on their own): batch 1, but two steps, so that momentum
# runs through every layer.
BATCH = 1
STEPS = 2
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-3


def two_steps():
    """Two SGD steps of GpuLeNet5 and of the torch twin, from the same float64 weights.

    ~40 s in the simulator, so one test makes all three checks on it (a module-scoped
    fixture would run once per pytest-xdist worker)."""
    state = {k: v.astype(np.float64) for k, v in models.lenet5().state_dict().items()}
    net = GpuLeNet5(state, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    twin = ref_models.lenet5().double()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    opt = torch.optim.SGD(twin.parameters(), lr=LR, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    rng = np.random.default_rng(8)
    history = []  # per step: (our loss, torch loss, our params, torch params)
    with kc.conv_algorithm("direct"):
        for _ in range(STEPS):
            x = rng.standard_normal((BATCH, 1, 28, 28))
            labels = rng.integers(0, 10, BATCH)
            ours = net.train_step(x, labels)
            opt.zero_grad()
            loss = TF.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(labels))
            loss.backward()
            opt.step()
            theirs = {k: v.detach().numpy().copy() for k, v in twin.state_dict().items()}
            history.append((ours, loss.item(), net.state_dict(), theirs))
    return state, history


def test_lenet5_two_sgd_steps_match_torch_losses_parameters_and_updates():
    state, history = two_steps()
    # the loss of each step, to 1e-10 relative
    for step, (ours, theirs, _, _) in enumerate(history):
        assert abs(ours - theirs) <= 1e-10 * abs(theirs), f"step {step + 1}: {ours} {theirs}"
    assert history[0][0] != history[1][0]  # the second batch saw updated weights
    # every parameter after each step, to 1e-8, under PyTorch's keys in its order
    for step, (_, _, ours, theirs) in enumerate(history):
        assert list(ours) == list(theirs)
        for name, value in ours.items():
            assert value.dtype == np.float64
            np.testing.assert_allclose(value, theirs[name], rtol=1e-8,
                                       atol=1e-8 * np.abs(theirs[name]).max(),
                                       err_msg=f"{name} after step {step + 1}")
    # each update (far smaller than the weights) to 1e-8 of its own scale: a wrong gradient
    # in an early layer, hidden in the comparison of the weights themselves, shows here
    before_ours, before_theirs = state, state
    for step, (_, _, ours, theirs) in enumerate(history):
        for name in PARAMETER_SHAPES:
            delta_ours = ours[name] - before_ours[name]
            delta_theirs = theirs[name] - before_theirs[name]
            scale = np.abs(delta_theirs).max()
            assert scale > 0, f"{name} did not move in step {step + 1}"
            np.testing.assert_allclose(delta_ours, delta_theirs, rtol=1e-8, atol=1e-8 * scale,
                                       err_msg=f"update of {name} in step {step + 1}")
        before_ours, before_theirs = ours, theirs


# --------------------------------------------------------------------------- bad input


def _state(dtype=np.float64):
    return {k: v.astype(dtype) for k, v in models.lenet5().state_dict().items()}


def test_gpu_lenet5_rejects_wrong_state_dict_keys_shapes_and_dtypes():
    state = _state()
    with pytest.raises(ValueError, match="state_dict: expected the keys"):
        GpuLeNet5({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(ValueError, match=r"state_dict\['7.weight'\]: expected shape"):
        GpuLeNet5({**state, "7.weight": np.zeros((120, 401))})
    with pytest.raises(TypeError, match="all float32 or all float64"):
        GpuLeNet5({**state, "0.bias": state["0.bias"].astype(np.float32)})
    with pytest.raises(ValueError, match="linear: expected one of"):
        GpuLeNet5(state, linear="einsum")


def test_gpu_lenet5_train_step_rejects_bad_batches_before_any_kernel_runs():
    net = GpuLeNet5(_state())
    x = np.zeros((2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 1, 28, 28\)"):
        net.train_step(np.zeros((2, 1, 32, 32)), [0, 1])
    with pytest.raises(TypeError, match="x: expected float64"):
        net.train_step(x.astype(np.float32), [0, 1])
    with pytest.raises(ValueError, match=r"labels: expected classes in \[0, 10\)"):
        net.train_step(x, [0, 10])
    with pytest.raises(TypeError, match="labels: expected integer classes"):
        net.train_step(x, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"labels: expected shape \(2,\)"):
        net.train_step(x, [0, 1, 2])
    with pytest.raises(RuntimeError, match="backward: call forward first"):
        net.backward(dev(np.zeros((2, 10))))
    with pytest.raises(RuntimeError, match="step: call backward first"):
        net.step()

"""Compile every kernel of the ``cuda`` backend to PTX, without a GPU.

``numba.cuda.compile_ptx`` runs the real CUDA compiler (NVVM, from the ``numba-cuda[cu13]``
wheels) on each kernel for a given compute capability. The simulator runs Python semantics
and accepts code the real compiler rejects (an untyped branch, a dtype mix, a tuple index out
of range); compiling catches that. It does not work under ``NUMBA_ENABLE_CUDASIM=1``, so run
this in a process without it::

    python -m kernels.cuda.ptx            # every kernel, float32 and float64, for sm_90
    python -m kernels.cuda.ptx --out DIR  # also write DIR/<kernel>.ptx (for ``ptxas -v``)

It prints one line per kernel: the name, the dtype, the PTX size, and whether the kernel
uses local memory (``.local``): the igemm kernels keep their register blocks in registers
only if the compiler unrolls the ``TM x TN`` loops, and this line shows it did.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

NVVM_MISSING = 3
"""Exit status of ``main`` when the CUDA compiler (NVVM) is not installed."""


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` for every kernel and dtype."""
    import numba
    from numba import types

    from kernels.common import AdaptivePoolSpec, ConvSpec, PadSpec, PoolSpec, UnpoolSpec

    from . import (
        _arrays,
        conv_backward,
        conv_direct,
        conv_gemm,
        conv_igemm,
        conv_tiled,
        elementwise,
        pool,
    )
    from . import loss as loss_kernels
    from . import optim_ops as optim_kernels
    from .batch_norm import kernel_signatures as batch_norm_signatures
    from .conv_transpose import channel_bias_kernel
    from .linear import kernel_signatures as linear_signatures  # kernels.cuda.linear is the op
    from .pad import backward_kernel as pad_backward_kernel
    from .pad import forward_kernel as pad_forward_kernel

    # one example of each record: Numba types a NamedTuple of ints by its class and length
    conv_spec = numba.typeof(ConvSpec.from_shapes((1, 1, 3, 3), (1, 1, 2, 2), (1, 1), (0, 0),
                                                  (1, 1), 1))
    gemm = numba.typeof(conv_igemm.unsplit(M=1, R=4, COLS=4))  # Gemm with a nested Phase
    pool_spec = numba.typeof(PoolSpec.from_shape((1, 1, 2, 2), (2, 2), (2, 2), (0, 0)))
    adaptive_spec = numba.typeof(AdaptivePoolSpec.from_shape((1, 1, 2, 2), (1, 1)))
    unpool_spec = numba.typeof(UnpoolSpec.from_shape((1, 1, 2, 2), (4, 4)))
    pad_spec = numba.typeof(PadSpec.from_shape((1, 1, 2, 2), (1, 1, 1, 1), "reflect"))
    index4 = types.Array(types.int64, 4, "C")
    out = []
    for DT in (numba.float32, numba.float64):

        def a(ndim, DT=DT):
            return types.Array(DT, ndim, "C")

        def add(name, dispatcher, *args, DT=DT):
            out.append((name, str(DT), dispatcher, types.void(*args)))

        add("conv2d_direct", conv_direct.forward_kernel(DT), a(4), a(4), a(1), a(4), conv_spec)
        add("conv2d_grad_input_direct", conv_direct.grad_input_kernel(DT), a(4), a(4), a(4),
            conv_spec)
        add("conv2d_grad_weight_direct", conv_direct.grad_weight_kernel(DT), a(4), a(4), a(4),
            conv_spec)
        add("conv2d_tiled", conv_tiled.tiled_kernel(DT), a(4), a(4), a(1), a(4), conv_spec)
        for mode in conv_igemm.MODES:
            for tile in conv_igemm.CONFIGS:
                add(f"conv2d_igemm[{mode},{tile}]", conv_igemm.igemm_kernel(DT, mode, tile),
                    a(4), a(4), a(1), a(1), conv_spec, gemm)
        # the conv ladder's other rungs: 1 (naive thread order), 4-7 (conv_gemm)
        add("conv2d_naive", conv_direct.forward_kernel(DT, False), a(4), a(4), a(1), a(4),
            conv_spec)
        add("conv2d_grad_input_naive", conv_direct.grad_input_kernel(DT, False), a(4), a(4),
            a(4), conv_spec)
        add("conv2d_grad_weight_naive", conv_direct.grad_weight_kernel(DT, False), a(4), a(4),
            a(4), conv_spec)
        for rung in conv_gemm.RUNGS:
            for mode in conv_igemm.MODES:
                add(f"conv2d_{rung}[{mode}]", conv_gemm.gemm_kernel(DT, mode, rung), a(4), a(4),
                    a(1), a(1), conv_spec, gemm)
        add("conv2d_grad_bias", conv_backward.bias_grad_kernel(DT), a(4), a(1))
        add("sum_splits", conv_backward.sum_splits_kernel(DT), a(3), a(2))
        add("add_channel_bias", channel_bias_kernel(DT), a(4), a(1))
        add("max_pool2d_forward", pool.max_forward_kernel(DT), a(4), a(4), index4, pool_spec)
        add("max_pool2d_backward", pool.max_backward_kernel(DT), a(4), index4, a(4), pool_spec)
        add("avg_pool2d_forward", pool.avg_forward_kernel(DT), a(4), a(4), pool_spec)
        add("avg_pool2d_backward", pool.avg_backward_kernel(DT), a(4), a(4), pool_spec)
        add("adaptive_avg_pool2d_forward", pool.adaptive_forward_kernel(DT), a(4), a(4),
            adaptive_spec)
        add("adaptive_avg_pool2d_backward", pool.adaptive_backward_kernel(DT), a(4), a(4),
            adaptive_spec)
        add("adaptive_max_pool2d_forward", pool.adaptive_max_forward_kernel(DT), a(4), a(4),
            index4, adaptive_spec)
        add("adaptive_max_pool2d_backward", pool.adaptive_max_backward_kernel(DT), a(4), index4,
            a(4), adaptive_spec)
        add("max_unpool2d_forward", pool.unpool_forward_kernel(DT), a(4),
            types.Array(types.int64, 1, "C"), a(4), unpool_spec)
        add("max_unpool2d_backward", pool.unpool_backward_kernel(DT), a(4), index4, a(4),
            unpool_spec)
        add("pad_bottom_right", _arrays.pad_kernel(DT), a(4), a(4))
        add("pad_forward", pad_forward_kernel(DT), a(4), a(4), types.float64, pad_spec)
        add("pad_backward", pad_backward_kernel(DT), a(4), a(4), pad_spec)
    index1 = types.Array(types.int64, 1, "C")  # max unpooling's winners: no float dtype
    out.append(("fill_int64", "int64", pool.fill_kernel, types.void(index1, types.int64)))
    out.append(("max_unpool2d_claim", "int64", pool.unpool_claim_kernel,
                types.void(index4, index1, unpool_spec)))
    # what training adds, and the element-wise ops (both dtypes)
    return (out + elementwise.kernel_signatures()
            + linear_signatures() + loss_kernels.kernel_signatures()
            + optim_kernels.kernel_signatures() + batch_norm_signatures())


def compile_all(cc=(9, 0), out_dir=None, verbose=True):
    """Compile every kernel for compute capability ``cc``; return ``{(name, dtype): ptx}``."""
    from numba import config
    from numba.cuda import compile_ptx

    if config.ENABLE_CUDASIM:
        raise RuntimeError("compile_ptx does not run under NUMBA_ENABLE_CUDASIM=1; unset it")
    results = {}
    for name, dtype, dispatcher, signature in kernel_signatures():
        start = time.perf_counter()
        ptx, _ = compile_ptx(dispatcher.py_func, signature, cc=cc)
        results[(name, dtype)] = ptx
        if verbose:
            local = "uses .local" if ".local" in ptx else "no local memory"
            print(f"{name:42s} {dtype:8s} {len(ptx):8d} chars  {local:16s} "
                  f"{time.perf_counter() - start:5.1f}s", flush=True)
        if out_dir is not None:
            safe = name.replace("[", "_").replace("]", "").replace(",", "_")
            path = pathlib.Path(out_dir) / f"{safe}_{dtype}.ptx"
            path.write_text(ptx)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="9.0", help="compute capability (default 9.0)")
    parser.add_argument("--out", default=None, help="write the PTX files to this folder")
    args = parser.parse_args(argv)
    cc = tuple(int(v) for v in args.cc.split("."))
    if args.out:
        pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    try:
        from numba.cuda.cudadrv.error import NvvmSupportError
    except ImportError:  # pragma: no cover - older numba-cuda layouts
        NvvmSupportError = ()
    try:
        results = compile_all(cc, args.out)
    except NvvmSupportError as exc:
        print(f"NVVM missing: {exc}", file=sys.stderr)
        return NVVM_MISSING
    print(f"compiled {len(results)} kernels for sm_{cc[0]}{cc[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

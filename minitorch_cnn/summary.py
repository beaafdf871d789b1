"""Parameter counts and a layer-by-layer table (d2l style): output shape, parameters, FLOPs.

``summary(model, (1, 28, 28))`` runs one forward pass on zeros of batch size 1, records
every leaf module it passes through (in call order), and prints a table::

    layer            type         output shape       params        FLOPs
    0                Conv2d       (1, 6, 28, 28)        156      239,904
    ...

FLOPs count a multiply-add as two (``2*N*C_out*H_out*W_out*(C_in/groups)*kH*kW`` for a
conv, plus the bias additions); pooling and activations count one operation per element or
per window element. They are the forward pass only; a backward costs about twice as much.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .nn import module as _module


def count_parameters(model) -> int:
    """The number of trainable scalars (buffers such as running means do not count)."""
    return int(sum(p.size for p in model.parameters()))


class LayerRow(NamedTuple):
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    flops: int


def trace(model, input_shape: tuple[int, ...], dtype=np.float32) -> list[LayerRow]:
    """One row per leaf-module call of a forward pass on ``zeros((1, *input_shape))``.

    The model is put in eval mode for the trace (no dropout, batch norm on running stats)
    and restored afterwards; each layer's cache is cleared again.
    """
    names = {id(m): name or type(m).__name__ for name, m in model.named_modules()}
    rows: list[LayerRow] = []

    def record(module, x, y):
        if next(module.children(), None) is not None:
            return  # a container: its leaves are recorded
        params = sum(p.size for p in module._parameters.values() if p is not None)
        rows.append(LayerRow(names.get(id(module), type(module).__name__),
                             type(module).__name__, tuple(y.shape), int(params),
                             int(module.forward_flops(tuple(x.shape), tuple(y.shape)))))

    was_training = [m.training for m in model.modules()]
    model.eval()
    _module._recorders.append(record)
    try:
        model(np.zeros((1, *input_shape), dtype))
    finally:
        _module._recorders.pop()
        for m, mode in zip(model.modules(), was_training, strict=True):
            object.__setattr__(m, "training", mode)
        model._free_caches()  # the trace is never differentiated: drop what backward would need
    return rows


def summary(model, input_shape: tuple[int, ...], print_fn=print) -> list[LayerRow]:
    """Print the table for one image of ``input_shape`` (C, H, W); returns its rows."""
    rows = trace(model, input_shape)
    width = max([len("layer")] + [len(r.name) for r in rows])
    print_fn(f"{'layer':<{width}}  {'type':<18} {'output shape':<20} {'params':>12} "
             f"{'FLOPs':>14}")
    for r in rows:
        print_fn(f"{r.name:<{width}}  {r.kind:<18} {str(r.output_shape):<20} {r.params:>12,} "
                 f"{r.flops:>14,}")
    print_fn(f"total: {count_parameters(model):,} parameters, "
             f"{sum(r.flops for r in rows):,} forward FLOPs per image")
    return rows


__all__ = ["LayerRow", "count_parameters", "summary", "trace"]

"""Parameter, Module and Sequential: the autograd-free layer protocol.

There is no autograd here. Every layer writes its own ``backward``:

- ``forward(x)`` computes ``y`` and keeps, in a named cache, exactly what ``backward`` needs
  (for a conv that is ``x``; for a sigmoid it is ``y``);
- ``backward(grad_y)`` reads the cache, adds the gradient of every parameter into
  ``param.grad`` (accumulating, as PyTorch does) and returns ``grad_x``.

A composite module (``Sequential``, a residual block, a model) calls its children's
``forward`` in order and their ``backward`` in the reverse order, so a learner can read the
chain rule off the code. A module that appears twice in one forward pass would overwrite its
cache, so models use one instance per position (pooling and activations have no parameters,
so this changes no state-dict key).

Parameter names, buffer names and ``state_dict()`` keys follow PyTorch exactly
(``"0.weight"`` in a ``Sequential``, ``"conv1.bias"`` for an attribute, ``running_mean``,
``running_var`` and ``num_batches_tracked`` for batch norm), so a state dict moves between a
model here and its PyTorch twin both ways.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class Parameter:
    """A trainable array and its gradient.

    Attributes
    ----------
    data : ndarray
        The value, updated in place or replaced by the optimizer.
    grad : ndarray or None
        The accumulated gradient, same shape and dtype as ``data``; ``None`` until a
        ``backward`` writes one or after ``zero_grad()``.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = np.array(data, copy=True)
        if self.data.dtype.kind != "f":
            raise TypeError(f"Parameter: expected a floating-point array, got {self.data.dtype}")
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """``self.grad += grad`` (``self.grad = grad`` the first time), as autograd does."""
        if grad.shape != self.data.shape:
            raise ValueError(
                f"gradient of shape {grad.shape} does not match the parameter's {self.data.shape}"
            )
        grad = grad.astype(self.data.dtype, copy=False)
        if self.grad is None:
            self.grad = np.array(grad, copy=True)
        else:
            self.grad = self.grad + grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer and model.

    Subclasses set parameters (:class:`Parameter`), buffers (:meth:`register_buffer`) and
    child modules as attributes in ``__init__``, and define ``forward`` and ``backward``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------------- registration

    def __setattr__(self, name: str, value: object) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call Module.__init__() (super().__init__()) before "
                f"assigning {name!r}"
            )
        for table in (self._parameters, self._buffers, self._modules):
            if name in table and table is not self._buffers:
                del table[name]
        if isinstance(value, (Parameter, Module)):
            self.__dict__.pop(name, None)  # a plain attribute of that name would shadow it
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> object:
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name``; ``None`` marks an absent one (``bias=False``)."""
        self._parameters[name] = param

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep ``value`` in the state dict under ``name`` (not trained: no gradient)."""
        self._buffers[name] = value

    # ----------------------------------------------------------------- the protocol

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.forward(x)
        if _recorders:
            _recorders[-1](self, x, y)
        return y

    def forward_flops(self, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> int:
        """Floating-point operations of one forward call (used by ``summary``); 0 if unknown."""
        return 0

    def _need_cache(self, cache: object) -> object:
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward: no forward pass to differentiate; call "
                f"forward (or the module) first (each backward consumes its forward's cache)"
            )
        return cache

    # ----------------------------------------------------------------- traversal

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module of the tree, pre-order, with dotted names ('' for this one)."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every child's subtree (children first, in order), then on self.

        PyTorch's ``Module.apply``, d2l's way to initialise: ``net.apply(init_normal)``.
        Returns self.
        """
        if not callable(fn):
            raise TypeError(f"fn: expected a callable taking a module, got {type(fn).__name__}")
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """``(name, Parameter)`` pairs in PyTorch's order and with PyTorch's names."""
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, module in self.named_modules():
            for name, buf in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), buf

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad = None``, PyTorch's default)."""
        for param in self.parameters():
            param.grad = None

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch norm uses batch statistics); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def to(self, dtype: np.dtype | type) -> Module:
        """Cast every parameter and floating-point buffer to ``dtype``; returns self."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = param.data.astype(dtype)
                    param.grad = None if param.grad is None else param.grad.astype(dtype)
            for name, buf in module._buffers.items():
                if buf.dtype.kind == "f":
                    module._buffers[name] = buf.astype(dtype)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ----------------------------------------------------------------- state dicts

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed as PyTorch keys them."""
        out: dict[str, np.ndarray] = {}
        self._collect_state(out, "")
        return out

    def _collect_state(self, out: dict[str, np.ndarray], prefix: str) -> None:
        # PyTorch's order: own parameters, own buffers, then each child recursively.
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param.data.copy()
        for name, buf in self._buffers.items():
            out[prefix + name] = np.array(buf, copy=True)
        for name, child in self._modules.items():
            child._collect_state(out, f"{prefix}{name}.")

    def _state_slots(self) -> dict[str, tuple[Module, str, bool]]:
        """Every state entry as ``name -> (owning module, attribute, is_parameter)``."""
        slots: dict[str, tuple[Module, str, bool]] = {}
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    slots[dot + name] = (module, name, True)
            for name in module._buffers:
                slots[dot + name] = (module, name, False)
        return slots

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy ``state`` into the parameters and buffers.

        Everything is checked before anything is written: a missing or unexpected key (with
        ``strict``) or a shape mismatch raises ``ValueError`` naming it and leaves the model
        untouched. Values are cast to the dtype the model already has. Accepts NumPy arrays
        or anything ``np.asarray`` takes (torch CPU tensors included).
        """
        slots = self._state_slots()
        arrays = {}
        for key, value in state.items():
            if hasattr(value, "detach"):  # a torch tensor: no torch import needed
                value = value.detach().cpu().numpy()
            arrays[key] = np.asarray(value)
        missing = [k for k in slots if k not in arrays]
        unexpected = [k for k in arrays if k not in slots]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        for key, (module, name, is_param) in slots.items():
            if key not in arrays:
                continue
            current = module._parameters[name].data if is_param else module._buffers[name]
            if arrays[key].shape != current.shape:
                problems.append(
                    f"shape mismatch for {key!r}: the model has {current.shape}, "
                    f"the state dict has {arrays[key].shape}"
                )
        if problems:
            raise ValueError(
                f"load_state_dict into {type(self).__name__}: " + "; ".join(problems)
                + " (nothing was loaded)"
            )
        for key, (module, name, is_param) in slots.items():
            if key not in arrays:
                continue
            if is_param:
                param = module._parameters[name]
                param.data = arrays[key].astype(param.data.dtype, copy=True)
            else:
                buf = module._buffers[name]
                module._buffers[name] = arrays[key].astype(buf.dtype, copy=True)

    # ----------------------------------------------------------------- printing

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


# A stack of callbacks ``(module, x, y)`` that ``summary`` pushes while it traces a model.
_recorders: list = []


class Sequential(Module):
    """Children called in order; backward calls them in reverse order.

    Children are named ``"0"``, ``"1"``, ... as in PyTorch, so ``model[0]`` is the first
    layer and its weight's state-dict key is ``"0.weight"``.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential: argument {index} is a {type(module).__name__}, not a Module"
                )
            self._modules[str(index)] = module

    def forward(self, x: np.ndarray) -> np.ndarray:
        for module in self._modules.values():
            x = module(x)
        return x

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        for module in reversed(list(self._modules.values())):
            grad_y = module.backward(grad_y)
        return grad_y

    def __getitem__(self, index: int) -> Module:
        modules = list(self._modules.values())
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

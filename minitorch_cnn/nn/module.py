"""Parameter, Module and Sequential: the autograd-free layer protocol.

There is no autograd here. Every layer writes its own ``backward``:

- ``forward(x)`` computes ``y`` and saves, in a named cache, exactly what ``backward`` needs
  (for a conv that is ``x``; for a sigmoid it is ``y``): ``self._save(cache)``;
- ``backward(grad_y)`` takes that cache back, ``cache = self._restore()``, adds the gradient
  of every parameter into ``param.grad`` (accumulating, as PyTorch does) and returns
  ``grad_x``.

A composite module (``Sequential``, a residual block, a model) calls its children's
``forward`` in order and their ``backward`` in the reverse order, so a learner can read the
chain rule off the code.

Shared modules. One module may appear several times in a forward pass (d2l's tied layer:
``shared = nn.Linear(8, 8)`` twice in one ``Sequential``), so its caches form a *stack*:
each forward pushes one, each backward pops the newest. Backward runs the uses in the reverse
order of forward, so each pop meets the matching push, and the gradients of all uses add up
in ``param.grad``. ``parameters()``, ``named_parameters()`` and ``modules()`` yield a shared
object once (the first name wins); ``state_dict()`` keeps it under every name, as PyTorch.

When caches are freed. PyTorch frees a graph nobody differentiates; here the rule is: a
*top-level* call (``model(x)`` while no other module call is running in this thread) first
empties the cache stacks of the whole tree below ``model``. So a forward that is never
followed by backward (evaluation, ``predict``, ``summary``) holds its caches only until the
next ``model(x)``, and backward must come before the next top-level call (as a training step
does it): ``y = f(f(x))`` inside one forward can be differentiated, ``a = f(x); b = f(a)`` as
two top-level calls cannot (the second frees the first's cache; its backward then raises).
Call the model, not ``model.forward(x)``, at the top: the rule counts calls of the module.

The model's input is data. PyTorch computes no gradient for an input that does not require
one (``x.requires_grad`` is False for a batch of images), so the first convolution of a net
skips its grad_x, the costliest part of its backward. Here ``backward`` returns grad_x, and
``model.needs_input_grad`` (True by default, so ``grad_x = model.backward(grad_y)`` keeps
working) says whether anyone wants it. A training loop sets ``model.needs_input_grad =
False``; then the layer that reads the model's input skips its grad_x and returns ``None``,
and so does ``model.backward``. Which layer reads the input is seen at call time: a
top-level call records its ``x`` (:class:`ModelInput`), every module call inside it that
receives that very array counts as a reader (a ``Sequential`` passes it on and does not
count), and a layer skips only when it is the one reader, so a block that also adds its
input to a shortcut still gets every gradient. A model whose own ``forward`` both passes its
input to a layer and computes with it should keep ``needs_input_grad = True``.

Parameter names, buffer names and ``state_dict()`` keys follow PyTorch exactly
(``"0.weight"`` in a ``Sequential``, ``"conv1.bias"`` for an attribute, ``running_mean``,
``running_var`` and ``num_batches_tracked`` for batch norm), so a state dict moves between a
model here and its PyTorch twin both ways.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from ..device import DEVICES, _device_copy, _move, device_of, is_device_array, to_host


class Parameter:
    """A trainable array and its gradient.

    Attributes
    ----------
    data : ndarray or CUDA device array
        The value, updated in place or replaced by the optimizer. A NumPy array, or a device
        array after ``model.to("cuda")``.
    grad : same kind as data, or None
        The accumulated gradient, same shape and dtype as ``data``, where ``data`` lives;
        ``None`` until a ``backward`` writes one or after ``zero_grad()``.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = _device_copy(data) if is_device_array(data) else np.array(data, copy=True)
        if self.data.dtype.kind != "f":
            raise TypeError(f"Parameter: expected a floating-point array, got {self.data.dtype}")
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        """Where ``data`` lives: ``"cpu"`` (NumPy) or ``"cuda"`` (a device array)."""
        return device_of(self.data)

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """``self.grad += grad`` (``self.grad = grad`` the first time), as autograd does.

        On the device the sum is ``F.add`` on the cuda backend: the gradient never visits
        the host. A gradient that lives elsewhere than ``data`` (NumPy weights used on device
        data, which the cuda backend allows) is copied to where ``data`` lives first.
        """
        if tuple(grad.shape) != self.shape:
            raise ValueError(
                f"gradient of shape {tuple(grad.shape)} does not match the parameter's "
                f"{self.shape}"
            )
        if device_of(grad) != self.device:  # weights on one side, data on the other: the
            grad = _move(grad, self.device)  # gradient joins the parameter (one copy)
        if self.device == "cuda":
            if grad.dtype != self.data.dtype:
                raise TypeError(f"gradient of dtype {grad.dtype} for a parameter of dtype "
                                f"{self.data.dtype}")
            from .. import functional as F

            self.grad = (_device_copy(grad) if self.grad is None
                         else F.add(self.grad, grad, backend="cuda"))
            return
        grad = grad.astype(self.data.dtype, copy=False)
        if self.grad is None:
            self.grad = np.array(grad, copy=True)
        else:
            self.grad = self.grad + grad

    def __repr__(self) -> str:
        device = "" if self.device == "cpu" else ", device='cuda'"
        return f"Parameter(shape={self.shape}, dtype={self.data.dtype}{device})"


class ModelInput:
    """The input of the running top-level call of a model that said it needs no grad_x.

    ``x`` is that array; ``readers`` counts the module calls inside the model that received
    it (a layer skips its grad_x only when it is the one reader; module docstring).
    """

    __slots__ = ("readers", "x")

    def __init__(self, x: object) -> None:
        self.x, self.readers = x, 0

    def skips(self) -> bool:
        """True when one layer alone reads the model's input: its grad_x is not needed."""
        return self.readers <= 1


def needs_grad_x(record: ModelInput | None) -> bool:
    """Whether a layer whose forward kept ``record`` (from :func:`model_input`) returns grad_x.

    Always, unless it alone read the input of a model that needs no grad_x.
    """
    return record is None or not record.skips()


def model_input(x: object) -> ModelInput | None:
    """The running top-level call's :class:`ModelInput` if ``x`` is its input, else None.

    There is one only while a model with ``needs_input_grad = False`` runs its forward. A
    layer keeps it in its cache and asks ``record.skips()`` in backward (by then every reader
    has been counted).
    """
    record = getattr(_calls, "model_input", None)
    return record if record is not None and record.x is x else None


class Module:
    """Base class of every layer and model.

    Subclasses set parameters (:class:`Parameter`), buffers (:meth:`register_buffer`) and
    child modules as attributes in ``__init__``, and define ``forward`` and ``backward``.

    ``needs_input_grad`` (True unless set): whether ``backward`` of this model, called at the
    top, must return the gradient of its input (module docstring; a training loop sets it
    False, as PyTorch's input has ``requires_grad=False``).
    """

    needs_input_grad = True
    _passes_input_on = False  # True for a container that only hands x to its first child

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_caches", [])  # one per forward not yet differentiated

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

    def __call__(self, x: np.ndarray, *args, **kwargs) -> np.ndarray:
        """``forward(x, *args, **kwargs)``, as PyTorch's; a top-level call first frees the
        tree's cache stacks (module doc). Only ``x`` counts as the layer's input (the one
        ``backward`` returns a gradient for); other arguments (``MaxUnpool2d``'s indices,
        ``ConvTranspose2d``'s ``output_size``) go to ``forward`` as they came.
        """
        running = getattr(_calls, "running", 0)
        if running == 0:
            self._free_caches()
            _calls.model_input = None if self.needs_input_grad else ModelInput(x)
        elif not self._passes_input_on and model_input(x) is not None:
            _calls.model_input.readers += 1
        _calls.running = running + 1
        try:
            y = self.forward(x, *args, **kwargs)
        finally:
            _calls.running = running
            if running == 0:
                _calls.model_input = None
        if _recorders:
            _recorders[-1](self, x, y)
        return y

    def forward_flops(self, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> int:
        """Floating-point operations of one forward call (used by ``summary``); 0 if unknown."""
        return 0

    def _save(self, cache: object) -> None:
        """Push what this forward's backward needs (a NamedTuple) on the module's stack."""
        self._caches.append(cache)

    def _restore(self) -> object:
        """Pop the cache of the newest forward not yet differentiated.

        Raises RuntimeError when there is none (backward without forward, or once more than
        there were forwards).
        """
        if not self._caches:
            raise RuntimeError(
                f"{type(self).__name__}.backward: no forward pass to differentiate; call "
                f"forward (or the module) first (each backward consumes one forward's cache)"
            )
        return self._caches.pop()

    @property
    def _cache(self) -> object:
        """The newest saved cache, the one the next backward pops (None if none): to inspect."""
        return self._caches[-1] if self._caches else None

    def _free_caches(self) -> None:
        """Empty the cache stack of this module and of every module below it."""
        for module in self.modules():
            module._caches.clear()

    # ----------------------------------------------------------------- traversal

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, child)`` of the direct children, each child once (its first name)."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """Every module of the tree, pre-order, with dotted names ('' for this one).

        A module reachable under several names is yielded once, under the first
        (``remove_duplicate=False``: under each). ``memo`` is the set of modules already
        yielded, as PyTorch's.
        """
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                               remove_duplicate)

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

    def _named_members(self, table: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, object]]:
        """Entries of ``_parameters`` or ``_buffers`` over the tree, each object once."""
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        seen: set[int] = set()
        for module_prefix, module in modules:
            for name, member in getattr(module, table).items():
                if member is None or (remove_duplicate and id(member) in seen):
                    continue
                seen.add(id(member))
                yield (f"{module_prefix}.{name}" if module_prefix else name), member

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(name, Parameter)`` pairs in PyTorch's order and with PyTorch's names.

        A Parameter shared by several modules (or a module used twice) comes once, under its
        first name, so an optimizer steps it once. ``recurse=False``: this module's own only.
        """
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every Parameter once, in ``named_parameters()`` order."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, buffer)`` pairs (running statistics), each module's buffers once."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

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

    def to(self, *args: object, device: str | None = None,
           dtype: np.dtype | type | None = None) -> Module:
        """Move and/or cast every parameter, gradient and floating-point buffer; returns self.

        As PyTorch's: ``model.to("cuda")`` (parameters, gradients and running statistics
        become CUDA device arrays), ``model.to("cpu")`` (back to NumPy),
        ``model.to(np.float32)`` (cast), ``model.to("cuda", np.float64)`` (both). A model on
        the device runs under ``mc.use_backend("cuda")``; its optimizer keeps its state there
        too, and ``state_dict()`` still returns NumPy arrays. Integer buffers (batch norm's
        ``num_batches_tracked``, a counter) stay on the host. Casting a model already on the
        device goes through the host once.
        """
        for arg in args:
            if isinstance(arg, str):
                if device is not None:
                    raise TypeError(f"to(): got two devices, {device!r} and {arg!r}")
                device = arg
            elif dtype is None:
                dtype = arg
            else:
                raise TypeError(f"to(): got two dtypes, {dtype!r} and {arg!r}")
        if device is not None:
            if not isinstance(device, str) or device not in DEVICES:
                raise ValueError(f"device: expected one of {list(DEVICES)}, got {device!r}")
            if device == "cuda":
                from ..backend import backends

                status = backends(verbose=True)["cuda"]
                if status != "available":
                    raise ValueError(f"device: 'cuda' is not usable here ({status})")
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")

        def convert(a: object) -> object:
            if a is None:
                return None
            where = device_of(a) if device is None else device
            if dtype is not None and a.dtype != dtype:
                a = to_host(a).astype(dtype)
            return _move(a, where)

        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data, param.grad = convert(param.data), convert(param.grad)
            for name, buf in module._buffers.items():
                if buf.dtype.kind == "f":
                    module._buffers[name] = convert(buf)
        return self

    @property
    def device(self) -> str:
        """Where the parameters live, ``"cpu"`` or ``"cuda"`` (``"cpu"`` without any)."""
        for param in self.parameters():
            return param.device
        return "cpu"

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
            if param is not None:  # NumPy always: a device array is copied to the host
                out[prefix + name] = np.array(to_host(param.data), copy=True)
        for name, buf in self._buffers.items():
            out[prefix + name] = np.array(to_host(buf), copy=True)
        for name, child in self._modules.items():
            child._collect_state(out, f"{prefix}{name}.")

    def _state_slots(self) -> dict[str, tuple[Module, str, bool]]:
        """Every state entry as ``name -> (owning module, attribute, is_parameter)``.

        A shared module or Parameter has a slot under each of its names, as in
        ``state_dict()``; loading writes it once per name (the last one wins, as PyTorch).
        """
        slots: dict[str, tuple[Module, str, bool]] = {}
        for prefix, module in self.named_modules(remove_duplicate=False):
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
            arrays[key] = np.asarray(to_host(value))
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
            if arrays[key].shape != tuple(current.shape):
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
            if is_param:  # where the model's array lives: a device model stays on the device
                param = module._parameters[name]
                value = arrays[key].astype(param.data.dtype, copy=True)
                param.data = _move(value, param.device)
            else:
                buf = module._buffers[name]
                module._buffers[name] = _move(arrays[key].astype(buf.dtype, copy=True),
                                              device_of(buf))

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

# ``_calls.model_input``: the running top-level call's ModelInput, or None (module docstring).
# ``_calls.running``: how many ``Module.__call__`` are running in this thread; 0 means the
# next call is a top-level one.
_calls = threading.local()


class Sequential(Module):
    """Children called in order; backward calls them in reverse order.

    Children are named ``"0"``, ``"1"``, ... as in PyTorch, so ``model[0]`` is the first
    layer and its weight's state-dict key is ``"0.weight"``.
    """

    _passes_input_on = True  # x goes to the first child only: not a reader of its own

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

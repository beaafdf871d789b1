"""minitorch-cnn: an educational convolution engine with hand-written kernels.

>>> import minitorch_cnn as mc
>>> from minitorch_cnn import functional as F
>>> "naive" in mc.backends()
True
"""

from . import data, functional, init, io, losses, models, nn, optim
from .backend import backends, get_backend, set_backend, use_backend
from .check import check
from .gradcheck import gradcheck
from .memory import keep_freed_memory

__version__ = "0.1.0"

__all__ = [
    "backends",
    "check",
    "data",
    "functional",
    "get_backend",
    "gradcheck",
    "init",
    "io",
    "keep_freed_memory",
    "losses",
    "models",
    "nn",
    "optim",
    "set_backend",
    "use_backend",
]

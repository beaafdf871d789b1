"""The hypothesis strategies, which live in :mod:`minitorch_cnn.strategies`.

They moved into the package so that :func:`minitorch_cnn.check` can grade a learner's own
kernel with the very problems the tests draw; this module re-exports them for the tests.
"""

from minitorch_cnn.strategies import (  # noqa: F401
    FEATURES,
    ConvProblem,
    Corr2dProblem,
    PoolProblem,
    _compact,
    _pair,
    _values,
    adaptive_problems,
    conv_problems,
    corr2d_problems,
    pool_problems,
)

"""The one comparison helper (tests/checks.py) can fail: an inf or a NaN hides nothing."""

from __future__ import annotations

import numpy as np
import pytest

from .checks import assert_close, check_against_torch


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_inf_in_the_reference_does_not_widen_the_tolerance(dtype):
    expected = np.array([np.inf, 1.0, -np.inf], dtype)
    check_against_torch(expected.copy(), expected)
    with pytest.raises(AssertionError):
        check_against_torch(np.array([np.inf, 2.0, -np.inf], dtype), expected)
    with pytest.raises(AssertionError):
        assert_close(np.array([np.inf, 1.5, -np.inf]), expected.astype(np.float64), tol=1e-8)


def test_infs_and_nans_must_sit_in_the_same_places():
    expected = np.array([np.nan, 1.0, np.inf])
    assert_close(expected.copy(), expected, tol=1e-8)
    for wrong in ([1.0, 1.0, np.inf], [np.nan, np.nan, np.inf], [np.nan, 1.0, -np.inf]):
        with pytest.raises(AssertionError):
            assert_close(np.array(wrong), expected, tol=1e-8)


def test_shape_and_dtype_must_match():
    with pytest.raises(AssertionError, match="shape"):
        check_against_torch(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(AssertionError, match="dtype"):
        check_against_torch(np.zeros(3, np.float32), np.zeros(3))

"""Dense GEMM wrappers against einsum, with and without ``out``."""

import tracemalloc

import numpy as np
import pytest

from n2prune.kernels.gemm import matmul, matmul_nt, matmul_tn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_variants_match_einsum(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 5)).astype(dtype)
    b = rng.standard_normal((5, 3)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(matmul(a, b), np.einsum("ik,kj->ij", a, b), rtol=tol)
    c = rng.standard_normal((7, 4)).astype(dtype)
    np.testing.assert_allclose(matmul_tn(a, c), np.einsum("ki,kj->ij", a, c), rtol=tol)
    d = rng.standard_normal((6, 5)).astype(dtype)
    np.testing.assert_allclose(matmul_nt(a, d), np.einsum("ik,jk->ij", a, d), rtol=tol)
    assert matmul(a, b).dtype == dtype


def test_out_is_written_and_returned():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3))
    out = np.full((4, 3), np.nan)
    assert matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b)
    out = np.full((6, 3), np.nan)
    assert matmul_tn(a, rng.standard_normal((4, 3)), out=out) is out
    assert np.isfinite(out).all()
    out = np.full((4, 4), np.nan)
    assert matmul_nt(a, a, out=out) is out
    np.testing.assert_allclose(out, a @ a.T)


def peak_bytes(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_transposed_variants_do_not_copy_operands():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((400, 300)).astype(np.float32)     # 480 kB
    b = rng.standard_normal((400, 10)).astype(np.float32)
    c = rng.standard_normal((10, 300)).astype(np.float32)
    # Only the (300, 10) / (10, 400) result may be allocated, not a copy of a.
    assert peak_bytes(lambda: matmul_tn(a, b)) < 100_000
    assert peak_bytes(lambda: matmul_nt(c, a)) < 100_000

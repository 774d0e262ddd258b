"""Principal axes of features and the projection on them that bounds
distances from below.

The verified kNN search (:class:`~mmreid_rcl.clustering.knn.PCAKnn`) and
the projected indexes of the approximate ones search the features
projected on a few principal axes plus the norm of what the projection
misses: the distances of those vectors never exceed the true ones (see
:func:`reduce_with_residual`).
"""
from typing import Tuple

import numpy as np

from mmreid_rcl.utils.threads import blas_threads


def _orthonormal_columns(block: np.ndarray, passes: int = 2) -> np.ndarray:
    """An orthonormal basis (float64) of the span of ``block``'s columns.

    Through the eigendecomposition of the small Gram matrix; a second pass
    repairs the rounding of the first. Directions the block hardly spans
    are dropped, so the result may have fewer columns. When none is
    dropped the result is the orthonormal matrix nearest to the block
    (columns keep their order and meaning). LAPACK's QR of a tall block is
    several times slower here.
    """
    basis = block.astype(np.float64)
    for _ in range(passes):
        vals, vecs = np.linalg.eigh(basis.T @ basis)
        keep = vals > max(vals[-1], 1e-300) * 1e-10
        if keep.all():
            basis = basis @ ((vecs / np.sqrt(vals)) @ vecs.T)
        else:
            basis = basis @ (vecs[:, keep] / np.sqrt(vals[keep]))
    return basis


def principal_axes(x: np.ndarray,
                   dim: int,
                   train_size: int = 2048,
                   seed: int = 0,
                   num_iters: int = 3) -> Tuple[np.ndarray, np.ndarray]:
    """Leading principal axes of the rows of ``x``, fitted on a sample.

    Subspace iteration on the covariance of ``train_size`` seeded samples
    (a few products with a D x (dim + 16) block instead of a full D x D
    eigendecomposition), then Rayleigh-Ritz. The axes are orthonormal to
    float precision whatever the data, which the verified search relies on;
    how well they catch the variance only affects its speed.

    Args:
        x (np.ndarray): float32 features (N, D).
        dim (int): number of axes, ``dim <= D``.
        train_size (int): samples the covariance is estimated from.
        seed (int): seed of the sample and of the start block.
        num_iters (int): rounds of subspace iteration.

    Returns:
        tuple[np.ndarray, np.ndarray]: axes (D, d) float32 with orthonormal
        columns, ``d = dim`` unless the sample spans fewer directions, and
        the sample mean (D,) float32.
    """
    n, full_dim = x.shape
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(n, min(train_size, n), replace=False))]
    mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
    sample -= mean
    cov = sample.T @ sample  # float32, D x D
    del sample
    width = min(dim + 16, full_dim)
    # The products below are small: on one BLAS thread they take
    # milliseconds, while waking threads for them (for LAPACK's eigh above
    # all) costs seconds on a busy machine.
    with blas_threads(1):
        basis = rng.standard_normal((full_dim, width)).astype(np.float32)
        for _ in range(num_iters):
            # A well-conditioned block is enough between iterations.
            basis = _orthonormal_columns(cov @ basis, passes=1)
            basis = basis.astype(np.float32)
        small = (basis.T @ (cov @ basis)).astype(np.float64)
        _, rot = np.linalg.eigh((small + small.T) / 2)
        axes = basis.astype(np.float64) @ rot[:, ::-1][:, :dim]
        # Orthonormal in float64 before rounding.
        axes = _orthonormal_columns(axes)
    return np.ascontiguousarray(axes, dtype=np.float32), mean


def reduce_with_residual(x: np.ndarray,
                         axes: np.ndarray,
                         mean: np.ndarray,
                         step: int = 8192) -> np.ndarray:
    """Centred coordinates on ``axes`` plus the norm of what they miss.

    Row i is ``[P^T (x_i - m), |(I - P P^T)(x_i - m)|]``. For any two rows
    the squared distance of these vectors is at most the squared distance
    of the features (the projected part is a contraction and the residuals
    differ by at least the difference of their norms), so it is a lower
    bound that a brute-force search can rank by.

    Args:
        x (np.ndarray): float32 features (N, D).
        axes (np.ndarray): orthonormal columns (D, dim) float32.
        mean (np.ndarray): centre (D,) float32.
        step (int): rows projected at once (bounds temporaries).

    Returns:
        np.ndarray: float32 (N, dim + 1).
    """
    n = x.shape[0]
    dim = axes.shape[1]
    out = np.empty((n, dim + 1), dtype=np.float32)
    offset = mean @ axes
    mean_sq = float(mean @ mean)
    for start in range(0, n, step):
        block = x[start:start + step]
        reduced = block @ axes
        reduced -= offset
        out[start:start + step, :dim] = reduced
        centred_sq = (np.einsum('ij,ij->i', block, block) -
                      2 * (block @ mean) + mean_sq)
        residual_sq = centred_sq - np.einsum('ij,ij->i', reduced, reduced)
        out[start:start + step, dim] = np.sqrt(np.maximum(residual_sq, 0))
    return out


def project_with_residual(x: np.ndarray, dim: int, train_size: int,
                          seed: int) -> np.ndarray:
    """:func:`reduce_with_residual` on the ``dim`` principal axes of ``x``
    fitted on ``train_size`` seeded samples (:func:`principal_axes`)."""
    axes, mean = principal_axes(x, dim, train_size, seed)
    return reduce_with_residual(x, axes, mean)

"""Principal axes of features and the projection on them that bounds
distances from below.

The verified kNN search (:class:`~mmreid_rcl.clustering.knn.PCAKnn`) and
the projected indexes of the approximate ones search the features
projected on a few principal axes plus the norm of what the projection
misses: the distances of those vectors never exceed the true ones (see
:func:`reduce_with_residual`).
"""
from typing import Optional, Tuple

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
                   num_iters: int = 3,
                   start: Optional[np.ndarray] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
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
        start (np.ndarray, optional): a D x w block, ``w <= dim + 16``,
            whose columns start the iteration in place of as many random
            ones, e.g. :func:`rough_principal_axes` of a smaller sample:
            from there one round catches about the variance that three
            catch from a random start, on features a few hundred axes
            describe well (256 axes of the synthetic 2048-d features:
            within 1e-3 of held-out rows' variance, tested); on
            isotropic ones it catches a little less, which AutoKnn's
            screen keeps from reaching the fit.

    Returns:
        tuple[np.ndarray, np.ndarray]: axes (D, d) float32 with orthonormal
        columns, ``d = dim`` unless the sample spans fewer directions, and
        the sample mean (D,) float32.
    """
    n, full_dim = x.shape
    width = min(dim + 16, full_dim)
    if start is not None and (start.ndim != 2 or start.shape[0] != full_dim
                              or start.shape[1] > width):
        raise ValueError(f'principal_axes: start must be a {full_dim} x w '
                         f'block with w <= {width}, got shape {start.shape}')
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(n, min(train_size, n), replace=False))]
    mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
    sample -= mean
    cov = sample.T @ sample  # float32, D x D
    del sample
    # The products below are small: on one BLAS thread they take
    # milliseconds, while waking threads for them (for LAPACK's eigh above
    # all) costs seconds on a busy machine.
    with blas_threads(1):
        basis = rng.standard_normal((full_dim, width)).astype(np.float32)
        if start is not None:
            basis[:, :start.shape[1]] = start
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


def rough_principal_axes(sample: np.ndarray, dim: int,
                         seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Leading principal axes of a small sample, cheaply, for estimates.

    One round of subspace iteration on the centred sample itself
    (``A^T (A B)``, no D x D covariance), float32 throughout, the blocks
    orthonormalised by Cholesky QR. Several times cheaper than
    :func:`principal_axes` on 512 rows of 2048-d features, the axes are
    orthonormal only to float32 rounding of a Cholesky factor (around
    1e-4 for an ill-conditioned block): fine for estimating what a
    projection can do, not for the verified search, which needs
    :func:`principal_axes`.

    Args:
        sample (np.ndarray): float32 rows (M, D), M > 1.
        dim (int): number of axes, ``dim <= D``.
        seed (int): seed of the start block.

    Returns:
        tuple[np.ndarray, np.ndarray]: axes (D, d) float32, ``d <=
        min(dim, M - 1)``, and the sample mean (D,) float32.
    """
    num, full_dim = sample.shape
    mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = sample - mean
    width = min(dim + 16, full_dim, num - 1)
    rng = np.random.default_rng(seed)
    with blas_threads(1):
        start = rng.standard_normal((num, width), dtype=np.float32)
        basis = _cholesky_orthonormal(centred.T @ start)
        basis = _orthonormal_float32(centred.T @ (centred @ basis))
        reduced = centred @ basis
        small = (reduced.T @ reduced).astype(np.float64)
        _, rot = np.linalg.eigh((small + small.T) / 2)
        axes = basis @ rot[:, ::-1][:, :min(dim, width)].astype(np.float32)
    return np.ascontiguousarray(axes), mean


def _cholesky_orthonormal(block: np.ndarray) -> np.ndarray:
    """Columns spanning ``block`` (float32), nearly orthonormal, by Cholesky
    QR, with a relative shift that keeps the factorisation defined when the
    block is nearly rank-deficient."""
    gram = (block.T @ block).astype(np.float64)
    gram[np.diag_indices_from(gram)] += 1e-7 * np.trace(gram) + 1e-300
    lower = np.linalg.cholesky(gram)
    return block @ np.linalg.inv(lower).T.astype(np.float32)


def _orthonormal_float32(block: np.ndarray) -> np.ndarray:
    """Cholesky QR twice: the second pass repairs the float32 rounding of
    the first (CholeskyQR2)."""
    return _cholesky_orthonormal(_cholesky_orthonormal(block))


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


def project_with_residual(x: np.ndarray,
                          dim: int,
                          train_size: int,
                          seed: int,
                          start: Optional[np.ndarray] = None) -> np.ndarray:
    """:func:`reduce_with_residual` on the ``dim`` principal axes of ``x``
    fitted on ``train_size`` seeded samples (:func:`principal_axes`: three
    rounds of subspace iteration, or one from the block ``start``)."""
    axes, mean = principal_axes(x, dim, train_size, seed,
                                num_iters=3 if start is None else 1,
                                start=start)
    return reduce_with_residual(x, axes, mean)

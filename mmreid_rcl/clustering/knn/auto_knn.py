"""Exact kNN search by the faster of brute force and the verified
projection, chosen by proving a sample of rows first."""
from typing import Optional, Tuple

import numpy as np

from mmreid_rcl.registry import KNN_SEARCHERS
from ..pca import reduce_with_residual, rough_principal_axes
from .base_knn import DEFAULT_BLOCK_SIZE, BaseKnn
from .exact_knn import exact_search
from .pca_knn import VERIFY_MARGIN, KnownRows, PCAKnn

# The cost model of AutoKnn, in multiply-adds of a BLAS product (fitted on
# faiss 1.15, one thread, N = 3000 to 8000, 17 to 2048 columns, 10 to 480
# kept; within about 20% of the measured times): a pair of a brute-force
# search costs PAIR_COST (writing, reading and comparing its distance) plus
# its columns plus SELECT_COST per candidate kept (faiss' heaps); a
# candidate whose exact product the projected search computes costs
# GATHER_COST per dimension (gathered rows, memory-bound, and the
# re-ranking); fitting the axes and projecting cost SETUP_COST times their
# multiply-adds (float64 orthonormalisation, thread pools).
PAIR_COST = 128
SELECT_COST = 1.5
GATHER_COST = 12
SETUP_COST = 1.5
# The projection is chosen when its estimated cost is below this share of
# brute force: the slack covers the model's and the sample's errors.
PCA_MARGIN = 0.8
# The screen's estimate of the proven share may be this far below the
# share the projection needs before it rules the projection out: its axes
# are rougher than the probe's and its sample small.
SCREEN_SLACK = 0.25

# The bound vectors and squared norms of PCAKnn.project, and the rows the
# probe searched (None when it did not run).
Projection = Tuple[np.ndarray, np.ndarray, Optional[KnownRows]]


def search_cost(n: int, columns: int, kept: int) -> float:
    """Cost of a brute-force search of ``n`` queries among ``n`` samples
    of ``columns`` dimensions keeping ``kept`` per query, in multiply-adds
    (see :data:`PAIR_COST`)."""
    return float(n) * n * (PAIR_COST + columns + SELECT_COST * kept)


def projection_cost_share(n: int, full_dim: int, dim: int, k: int,
                          train_size: int) -> float:
    """Cost of step 1 of :class:`PCAKnn` (fitting ``dim`` axes on
    ``train_size`` samples: their covariance and four products with a
    D x (dim + 16) block, then projecting N rows) as a share of the cost
    of brute force."""
    fit = min(train_size, n) * full_dim**2 + 4 * full_dim**2 * (dim + 16)
    return SETUP_COST * (fit + float(n) * full_dim * dim) / search_cost(
        n, full_dim, k)


def pca_cost_share(n: int, full_dim: int, dim: int, k: int, width: int,
                   first_unproven: float, unproven: float) -> float:
    """Cost of steps 2 to 5 of :class:`PCAKnn` (the projection done), as a
    share of the cost of brute force.

    ``search_cost(n, dim + 1, width)`` for the first pass, the same with
    ``4 width`` candidates for the rows it leaves, ``GATHER_COST * D`` per
    exact product computed (about half of the ``width`` candidates of a
    row the first pass proves, all of them for the others, and all ``4
    width`` of the wider pass) and the brute force of the rows never
    proven.

    Args:
        n (int): samples N.
        full_dim (int): feature dimension D.
        dim (int): principal axes.
        k (int): neighbours per row.
        width (int): candidates per row of the first pass.
        first_unproven (float): share of the rows the first pass does not
            prove.
        unproven (float): share of the rows left to brute force.

    Returns:
        float: the cost over that of ``search_cost(n, full_dim, k)``.
    """
    brute = search_cost(n, full_dim, k)
    first = search_cost(n, dim + 1, width)
    wider = first_unproven * search_cost(n, dim + 1, min(n, 4 * width))
    computed = 0.5 + 5 * first_unproven  # products per first-pass width
    gathered = GATHER_COST * float(n) * width * full_dim * computed
    return (first + wider + gathered) / brute + unproven


def screen_proven_share(x: np.ndarray,
                        k: int,
                        dim: int,
                        widths: Tuple[int, ...],
                        rows: int,
                        seed: int = 0
                        ) -> Tuple[Tuple[float, ...], np.ndarray]:
    """Estimates of the share of rows the verified projection proves,
    from a small sample and without projecting all N rows.

    ``rows // 2`` seeded samples give rough principal axes
    (:func:`~mmreid_rcl.clustering.pca.rough_principal_axes`); ``rows``
    others are projected on them and searched among themselves, where
    a row's k-th neighbour among all N is most like its ``k'``-th among the
    ``rows - 1`` others, ``k' = floor(k (rows - 1) / (N - 1))`` (at least
    1), and the bound distance of a search keeping ``w`` candidates like
    the ``ceil(w (rows - 1) / (N - 1))``-th. A row counts as proven with
    ``w`` candidates when the similarity bound
    ``(|x_i|^2 + max |x_j|^2 - d)/2`` of that bound distance is below its
    ``k'``-th similarity, the criterion of :class:`PCAKnn`. The rounding
    and the sample's own norms lean toward proving; the rougher axes the
    other way.

    Args:
        x (np.ndarray): features (N, D).
        k (int): neighbours per row.
        dim (int): principal axes.
        widths (tuple[int]): candidates kept, one estimate each.
        rows (int): rows of the sample searched, ``1.5 rows <= N``;
            with ``k (rows - 1) < N - 1`` the estimates lean toward brute
            force (:meth:`AutoKnn.screen_size` avoids that).
        seed (int): seed of the samples and of the axes.

    Returns:
        tuple: the estimated proven share for each width, and the rough
        axes (D, d) float32, which :meth:`PCAKnn.project` can start its
        fit from.
    """
    n = len(x)
    rng = np.random.default_rng(seed)
    picked = rng.choice(n, rows + rows // 2, replace=False)
    axes, mean = rough_principal_axes(
        x[np.sort(picked[rows:])], dim, seed=seed)
    sample = x[np.sort(picked[:rows])]
    z = reduce_with_residual(sample, axes, mean)
    sims = sample @ sample.T
    np.fill_diagonal(sims, -np.inf)
    z_sq = np.einsum('ij,ij->i', z, z)
    dist = z_sq[:, None] + z_sq[None] - 2 * (z @ z.T)
    np.fill_diagonal(dist, np.inf)
    scale = (rows - 1) / (n - 1)
    kept = max(1, int(k * scale))
    kth = -np.partition(-sims, kept - 1, axis=1)[:, kept - 1]
    sq_norms = np.einsum('ij,ij->i', sample, sample)
    shares = []
    for width in widths:
        rank = min(rows - 1, max(kept + 1, int(np.ceil(width * scale))))
        bound_dist = np.partition(dist, rank - 1, axis=1)[:, rank - 1]
        bound = (sq_norms + sq_norms.max() - bound_dist) / 2
        shares.append(float(np.mean(bound + VERIFY_MARGIN < kth)))
    return tuple(shares), axes


@KNN_SEARCHERS.register_module(name=['AutoKnn', 'auto'])
class AutoKnn(BaseKnn):
    """Exact neighbours by brute force or by the verified projection of
    :class:`PCAKnn`, whichever the features make faster (the default).

    The projection pays only when its bound proves most rows: on
    anisotropic, low-rank features it is several times faster than brute
    force, on isotropic ones it proves none and costs several times more.
    The choice, from a cost model counted in multiply-adds
    (:func:`search_cost`, :func:`projection_cost_share`,
    :func:`pca_cost_share`):

    1. Fewer than ``min_rows`` samples: brute force (always cheap).
    2. Brute force if the projection could not pay even with every row
       proven: the share of brute force its fit, projection and first pass
       cost reaches :data:`PCA_MARGIN` (0.8).
    3. With N from 6 ``screen_rows`` to about ``2 k screen_rows``, a
       screen that projects no more than ``3 screen_rows`` samples
       (:meth:`screen_size`, :func:`screen_proven_share`:
       rough axes from half of them, the others searched among
       themselves) estimates the shares the first and the wider pass
       would prove; when even those estimates plus :data:`SCREEN_SLACK`
       (0.25) leave the projection unable to pay (step 5's threshold),
       brute force, without projecting all N rows. On features where the
       projection proves nothing (isotropic ones) this saves most of the
       probe's cost: the screen costs a few percent of brute force where
       the probe costs about a tenth. Otherwise the probe's fit starts
       from the screen's rough axes and needs one round instead of three,
       which pays for most of the screen.
    4. Otherwise the features are projected and :meth:`PCAKnn.first_pass`
       runs on ``probe_rows`` seeded random rows, each searched among all
       N: the share u1 it leaves estimates that of all rows. When the
       projection is chosen, these rows keep what the probe found
       (:class:`~.pca_knn.KnownRows`) and are not searched again.
    5. With the projection paid, the projected search costs, relative to
       brute force (P = 128, w = ``refine * k`` candidates)::

           [(P + dim + 1 + 1.5 w)(1 + u1) + 4.5 w u1] / (P + D + 1.5 k)
           + 12 w D (0.5 + 5 u1) / (N (P + D + 1.5 k)) + u2

       where u2 is the share of rows left to brute force: it pays when
       that is below 0.8, i.e. when the proven share ``1 - u2`` exceeds
       0.2 plus the other terms. If it cannot even with u2 = 0, brute
       force; else :meth:`PCAKnn.wider_pass` runs on the sample's rows
       the first pass left, giving u2, and the projection is used if the
       proven share exceeds the threshold. E.g. D = 2048, dim = 256,
       k = 30, N = 20,000: above 49% with u1 = 0, 57% with u1 = 0.1,
       74% with u1 = 0.3.

    The probe costs the projection (0.1 to 0.4 of brute force at N =
    5,000 to 8,000) and the first pass of ``probe_rows`` rows, wasted when
    brute force is chosen then (unless the screen ruled it out first);
    the projection is reused otherwise. A
    searcher used again on a problem of the same N, D and ``k`` (the
    re-clustering of every epoch: the label generator keeps one searcher)
    reuses its last choice, without a probe, for ``reprobe_every - 1``
    calls, then probes again: features drift between epochs, and either
    choice is exact, so a stale one costs time only. Both
    searches are exact: the result is brute force's, up to the order of
    exact ties and float rounding (the projected search computes the kept
    similarities pair by pair). Besides what the chosen search reports
    (``knn_path`` and, for the projection, ``knn_unproven_rows`` and
    ``knn_brute_force_rows``), ``knn_choice`` states the choice and its
    reason, e.g. ``'auto: exact (probe proved 43% of 512 sampled rows,
    PCA pays above 80%)'``, ``knn_screen_proven`` the share the screen
    estimated for the wider pass (when it ran) and ``knn_probe_proven``
    the share of the sample the probe proved (when it ran).

    Args:
        min_rows (int): below this many samples, brute force without a
            probe. Defaults to 4096.
        probe_rows (int): rows of the probe. Defaults to 512.
        dim (int): principal axes of the projection. Defaults to 256.
        refine (int): candidates per neighbour of its first pass.
            Defaults to 4.
        train_size (int): samples the axes are fitted on. Defaults to
            2048.
        seed (int): seed of that sample and of the probe. Defaults to 0.
        block_size (int): candidates searched at once. Defaults to 2**20.
        reprobe_every (int): probe at most every this many searches of a
            problem of one size (1: at every search). Defaults to 10.
        screen_rows (int): rows the screen searches among themselves, at
            least (0: no screen; see :meth:`screen_size`). Defaults to
            1024.
    """
    name = 'auto'
    searches_rows = True

    def __init__(self,
                 min_rows: int = 4096,
                 probe_rows: int = 512,
                 dim: int = 256,
                 refine: int = 4,
                 train_size: int = 2048,
                 seed: int = 0,
                 block_size: int = DEFAULT_BLOCK_SIZE,
                 reprobe_every: int = 10,
                 screen_rows: int = 1024) -> None:
        self.min_rows = self._positive_int('min_rows', min_rows)
        if isinstance(screen_rows, bool) or not isinstance(
                screen_rows, (int, np.integer)) or screen_rows < 0:
            raise ValueError(f'knn {self.name!r}: screen_rows must be an int '
                             f'>= 0 (0: no screen), got {screen_rows!r}')
        self.screen_rows = screen_rows
        self.probe_rows = self._positive_int('probe_rows', probe_rows)
        self.reprobe_every = self._positive_int('reprobe_every',
                                                reprobe_every)
        # (N, D, k), whether the projection was chosen, the reason, and
        # the searches left before the next probe.
        self._last: Optional[Tuple[Tuple[int, int, int], bool, str,
                                   int]] = None
        checked = dict(
            dim=dim,
            refine=refine,
            train_size=train_size,
            block_size=block_size)
        for key, value in checked.items():
            self._positive_int(key, value)
        self.seed = seed
        self.pca = PCAKnn(
            dim=dim,
            refine=refine,
            train_size=train_size,
            seed=seed,
            verify=True,
            block_size=block_size)

    def _search(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[np.ndarray, np.ndarray]:
        return self._search_rows(x, k, None, info)

    def _search_rows(self, x: np.ndarray, k: int, rows: Optional[slice],
                     info: dict) -> Tuple[np.ndarray, np.ndarray]:
        """The search of the query rows ``rows`` (every row for None),
        chosen by the probe of all N samples, or as the last time."""
        reason, projection = self._choose(x, k, info)
        choice = 'exact' if projection is None else 'pca'
        info['knn_choice'] = f'auto: {choice} ({reason})'
        if projection is None:
            info['knn_path'] = 'brute force'
            return exact_search(x, k, rows)
        z, sq_norms, known = projection
        return self.pca.search_projected(x, z, sq_norms, k, info, rows,
                                         known)

    def _choose(self, x: np.ndarray, k: int,
                info: dict) -> Tuple[str, Optional[Projection]]:
        """:meth:`_probe`, or the last choice on a problem of this size
        while it has searches left (the projection computed again when
        it was chosen)."""
        size = (*x.shape, k)
        last = self._last
        if last is not None and last[0] == size and last[3] > 0:
            _, use_pca, reason, left = last
            self._last = (size, use_pca, reason, left - 1)
            info['knn_choice_reused'] = True
            reason = (f'as at the last probe: {reason}; probed again in '
                      f'{left} searches')
            return reason, ((*self.pca.project(x), None)
                            if use_pca else None)
        reason, projection = self._probe(x, k, info)
        self._last = (size, projection is not None, reason,
                      self.reprobe_every - 1)
        info['knn_choice_reused'] = False
        return reason, projection

    def screen_size(self, n: int, k: int) -> Optional[int]:
        """Rows the screen searches for N = ``n``, or None for no screen.

        At least ``screen_rows``, and enough for a row's k-th neighbour
        among all N to be at least the first among them
        (``k (rows - 1) >= N - 1``): with fewer the screen would compare
        the bound with a farther neighbour and lean toward brute force.
        None when the screen is off, when N is below 6 ``screen_rows``
        (the sample would be a large part of N) or when it would take
        more than 2 ``screen_rows`` rows (N above about 61,000 at k = 30
        and 1,024 rows, where the probe costs a few percent of brute
        force at most).
        """
        if not self.screen_rows or n < 6 * self.screen_rows:
            return None
        rows = max(self.screen_rows, -(-(n - 1) // k) + 1)
        return rows if rows <= 2 * self.screen_rows else None

    def _probe(self, x: np.ndarray, k: int,
               info: dict) -> Tuple[str, Optional[Projection]]:
        """The reason of the choice, and the projection (bound vectors,
        squared norms and the probe's rows, searched already) when it is
        the faster search, else None."""
        n, full_dim = x.shape
        if n < self.min_rows:
            return f'N={n} below min_rows={self.min_rows}', None
        pca = self.pca
        dim, width = pca.sizes(n, full_dim, k)
        best = projection_cost_share(n, full_dim, dim, k, pca.train_size) \
            + pca_cost_share(n, full_dim, dim, k, width, 0, 0)
        if best >= PCA_MARGIN:
            return (f'the projection costs at least {best:.0%} of brute '
                    f'force at N={n}, D={full_dim}'), None
        start = None
        rows = self.screen_size(n, k)
        if rows is not None:
            (first, wider), start = screen_proven_share(
                x, k, dim, (width, min(n, 4 * width)), rows, self.seed)
            info['knn_screen_proven'] = wider
            need = 1 - PCA_MARGIN + pca_cost_share(
                n, full_dim, dim, k, width,
                max(0.0, 1 - first - SCREEN_SLACK), 0)
            if need >= 1 or wider + SCREEN_SLACK < need:
                return (f'screen: about {wider:.0%} of {rows} sampled rows '
                        f'provable, PCA pays above {min(need, 1):.0%}'), None
        z, sq_norms = pca.project(x, start)
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(n, min(self.probe_rows, n), replace=False))
        sims, idx, first_left = pca.first_pass(x, z, sq_norms, k, rows)
        left = first_left
        num = len(rows)
        # Proven above 1 - margin + the rest of the cost: below the margin.
        need = 1 - PCA_MARGIN + pca_cost_share(n, full_dim, dim, k, width,
                                               len(left) / num, 0)
        if need < 1 and len(left):
            left = pca.wider_pass(x, z, sq_norms, k, rows, left, sims, idx)
        proven = 1 - len(left) / num
        info['knn_probe_proven'] = proven
        if need >= 1:
            return (f'probe\'s first pass proved {proven:.0%} of {num} '
                    'sampled rows, PCA cannot pay'), None
        reason = (f'probe proved {proven:.0%} of {num} sampled rows, PCA '
                  f'pays above {need:.0%}')
        if proven <= need:
            return reason, None
        return reason, (z, sq_norms,
                        KnownRows(rows, sims, idx, first_left, left))

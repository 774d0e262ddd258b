"""Feature families for clustering benchmarks and tests, made on demand.

- ``'synthetic'`` (:func:`make_features`): re-ID-like features, whose
  structure lives in a low-rank latent space (identities in families of
  look-alikes, camera and view shifts, per-image noise, a share of hard
  images);
- ``'isotropic'`` (:func:`make_isotropic`): unit centres uniform on the
  sphere plus isotropic Gaussian noise, the case where projections find
  no structure;
- a feature file (``.npz`` / ``.npy`` of
  :func:`mmreid_rcl.apis.save_features`, e.g. real features of a trained
  model): its first N rows, normalised, with its ``pids`` when stored.

:func:`load_family` gives any of them by name, :func:`family_name` how
benchmark rows name them.
"""
import os.path as osp
from typing import Optional, Tuple

import numpy as np

from .feature_io import load_features

FAMILIES = ('synthetic', 'isotropic')
IMAGES_PER_ID = 12936 / 751  # Market-1501 train split
NUM_CAMERAS = 6

# Scales of the synthetic features' parts (see ``make_features``); chosen
# so that DBSCAN (eps 0.6) finds about 90 % of the identities and leaves
# about 9 % of the images out at Market size.
CFG = dict(
    latent=256,  # effective rank of the features
    family=0.9,  # weight of the component shared by look-alike identities
    camera=0.5,  # per-camera shift shared by all identities
    view=0.6,  # per-(identity, camera) shift, in a 32-d subspace
    view_rank=32,
    noise=1.0,  # per-image variation, in a 128-d subspace
    noise_rank=128,
    iso=0.3,  # isotropic noise over all D dimensions
    hard=2.5)  # noise scale of hard images


def make_isotropic(num: int,
                   dim: int = 2048,
                   num_ids: Optional[int] = None,
                   seed: int = 0,
                   noise: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Isotropic features: unit centres drawn uniformly on the sphere
    (``N / 17.2`` by default), and every image its centre plus Gaussian
    noise of norm about ``noise``, normalised; and the true ids."""
    rng = np.random.default_rng(seed)
    if num_ids is None:
        num_ids = max(2, int(round(num / IMAGES_PER_ID)))
    centres = rng.standard_normal((num_ids, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    ids = rng.integers(num_ids, size=num)
    x = centres[ids] + np.float32(noise / np.sqrt(dim)) * \
        rng.standard_normal((num, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, ids.astype(np.int64)


def load_family(family: str, num: int, dim: int, num_ids: Optional[int],
                seed: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Features (num, D) of a family (see the module docstring) and their
    true ids (None for a file without ``pids``).

    Raises:
        ValueError: a feature file with fewer than ``num`` rows.
    """
    if family == 'synthetic':
        return make_features(num, dim, num_ids, seed)
    if family == 'isotropic':
        return make_isotropic(num, dim, num_ids, seed)
    data = load_features(family)
    if len(data['features']) < num:
        raise ValueError(f'{family} holds {len(data["features"])} rows, '
                         f'fewer than N={num}')
    x = np.ascontiguousarray(data['features'][:num], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = data.get('pids')
    return x, (None if ids is None else np.asarray(ids[:num], np.int64))


def family_name(family: str) -> str:
    """How rows name a family: its name, or a file's base name."""
    if family in FAMILIES:
        return family
    return 'real features ' + osp.basename(family)


def _identity_sizes(rng: np.random.Generator, num: int,
                    num_ids: int) -> np.ndarray:
    """Images per identity: log-normal, at least 2, adjusted to sum to
    ``num`` (int64, (num_ids,))."""
    weights = rng.lognormal(0.0, 0.6, num_ids)
    sizes = np.maximum(2, np.floor(weights / weights.sum() * num))
    sizes = sizes.astype(np.int64)
    while sizes.sum() != num:
        diff = int(num - sizes.sum())
        pick = rng.choice(num_ids, min(abs(diff), num_ids), replace=False)
        sizes[pick] += np.sign(diff)
        sizes = np.maximum(sizes, 2)
    return sizes


def make_features(num: int,
                  dim: int = 2048,
                  num_ids: Optional[int] = None,
                  seed: int = 0,
                  hard_share: float = 0.15,
                  chunk: int = 8192) -> Tuple[np.ndarray, np.ndarray]:
    """Synthetic re-ID features and their true ids.

    An image of identity ``p`` seen by camera ``c`` is, before
    normalisation, ``centre[p] + camera[c] + view[p, c] + s * noise`` in a
    latent space of ``CFG['latent']`` dimensions mapped isometrically into
    D, plus a small isotropic part (CNN features have an effective rank of
    a few hundred, not D). Identities come in families of about 8
    look-alikes whose centres share a component; the view offset and the
    noise live in low-dimensional subspaces, so that nearby images really
    are confusable; ``s`` is 1, or ``CFG['hard']`` for a share
    ``hard_share`` of hard images.

    Args:
        num (int): number of images N.
        dim (int): feature dimension D.
        num_ids (int, optional): identities; default ``N / 17.2``.
        seed (int): seed of every random draw.
        hard_share (float): share of hard images.
        chunk (int): rows generated at once (bounds temporary memory).

    Returns:
        tuple[np.ndarray, np.ndarray]: unit float32 features (N, D) and
        int64 true ids (N,), in a shuffled order.
    """
    if dim < CFG['latent']:
        raise ValueError(f'synthetic features need dim >= the latent rank '
                         f'{CFG["latent"]}, got dim={dim}')
    rng = np.random.default_rng(seed)
    if num_ids is None:
        num_ids = max(2, int(round(num / IMAGES_PER_ID)))

    def unit(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    sizes = _identity_sizes(rng, num, num_ids)
    ids = rng.permutation(np.repeat(np.arange(num_ids), sizes))
    cams = rng.integers(NUM_CAMERAS, size=num)
    scale = np.where(rng.random(num) < hard_share, CFG['hard'], 1.0)
    scale = scale.astype(np.float32)[:, None]

    # All structure lives in a latent space mapped isometrically into D
    # dimensions, plus a small isotropic part: CNN features have an
    # effective rank of a few hundred, not D.
    latent = CFG['latent']
    num_families = max(1, num_ids // 8)
    family = unit(normal(num_families, latent))
    centre = unit(CFG['family'] * family[rng.integers(
        num_families, size=num_ids)] + unit(normal(num_ids, latent)))
    camera = unit(normal(NUM_CAMERAS, latent))
    basis = unit(normal(CFG['view_rank'] + CFG['noise_rank'], latent))
    view_basis = basis[:CFG['view_rank']]
    noise_basis = basis[CFG['view_rank']:]
    view = normal(num_ids, NUM_CAMERAS, CFG['view_rank'])
    view /= np.linalg.norm(view, axis=-1, keepdims=True)
    embed = np.linalg.qr(normal(dim, latent))[0].T  # (latent, D) orthonormal

    x = np.empty((num, dim), dtype=np.float32)
    for start in range(0, num, chunk):
        sl = slice(start, min(start + chunk, num))
        p, c, m = ids[sl], cams[sl], sl.stop - sl.start
        noise = normal(m, CFG['noise_rank']) @ noise_basis
        noise *= CFG['noise'] / np.sqrt(CFG['noise_rank'])
        rows = (centre[p] + CFG['camera'] * camera[c] +
                CFG['view'] * (view[p, c] @ view_basis) + scale[sl] * noise)
        rows = rows @ embed
        rows += CFG['iso'] / np.sqrt(dim) * normal(m, dim)
        x[sl] = unit(rows)
    return x, ids.astype(np.int64)

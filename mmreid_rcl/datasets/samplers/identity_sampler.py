"""P identities x K instances batch sampling driven by (pseudo) labels."""
from typing import Iterator, Optional, Sequence, Sized, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmreid_rcl.registry import DATA_SAMPLERS
from mmreid_rcl.utils.validation import check_int
from .seeded_draws import DrawIndex, draw_seeds

_LabelsLike = Union[np.ndarray, torch.Tensor, Sequence[int]]

# Upper bound of (slot, sample) pairs handled at once when drawing
# instances, so that a few huge clusters cannot blow up memory.
_MAX_PAIRS_PER_CHUNK = 1 << 20
INSTANCE_RULES = ('round_robin', 'anchor_cross_camera')


@DATA_SAMPLERS.register_module()
class IdentitySampler(Sampler):
    """Yield indices in batches of P identities x K instances each.

    Every ``batch_size`` consecutive indices form one batch of
    ``P = batch_size // K`` distinct identities with ``K`` samples each,
    grouped by identity. The dataloader's ``batch_size`` must equal this
    sampler's ``batch_size``.

    Identities come from labels that live in the sampler, not in the dataset
    (a serialised dataset and persistent workers would keep stale copies):

    - ``set_labels(labels)``: one int per dataset sample, ``-1`` for a
      sample not used in this epoch (e.g. a DBSCAN outlier). A hook calls it
      with the new pseudo labels before each epoch's iterator is created;
      the sampler lives in the main process, so workers need no update.
    - ``label_key``: read the labels once from the dataset's data infos
      (e.g. ``'person_id'`` for supervised training or tests).

    Sampling. Identities are drawn without replacement within a pass through
    the identity list, which is reshuffled for every pass; a batch that
    straddles two passes still holds P distinct identities. The K instances
    of an identity visit its cameras round-robin, in a random camera order
    and a random order inside each camera, so that they span as many
    cameras as possible (``camera_aware=True``), or are a plain random
    subset otherwise. Samples repeat (drawn with replacement) only when an
    identity has fewer than K of them. ``instance_rule=
    'anchor_cross_camera'`` draws them as the published cluster-contrast
    sampler does instead: one anchor uniformly among the identity's
    samples, then K - 1 among its samples in the other cameras (among its
    other samples when it has one camera only), without replacement when
    there are at least K of those and with replacement otherwise, so that
    a camera with few samples of the identity can fill the K - 1 places
    with repeats (an identity of a single sample repeats it K times).

    Epoch length. An epoch is always ``num_iters`` batches per rank, whatever
    the number of pseudo identities, because ``EpochBasedTrainLoop`` fixes
    the epoch length when it starts.

    Determinism and distribution. All randomness comes from a NumPy
    generator seeded with ``seed + epoch`` (never the global RNG), and
    with ``seeded_draws`` each yielded index carries the seed of its
    sample's augmentation (see :mod:`.seeded_draws`). Every rank
    draws the same global stream of ``num_iters * world_size`` batches and
    rank ``r`` keeps batches ``r, r + W, r + 2W, ...``, so the ranks' shares
    are disjoint and together form the global stream.

    Args:
        dataset (Sized): The dataset. Needs ``__len__`` and
            ``get_data_info(i)`` returning a dict with ``camera_id`` (when
            ``camera_aware``) and ``label_key`` (when given).
        batch_size (int): Samples per batch, P x K; must be divisible by
            ``num_instances``.
        num_instances (int): K, samples per identity in a batch. Defaults
            to 4.
        num_iters (int, optional): Batches per epoch on each rank. Defaults
            to None: ``len(dataset) // (batch_size * world_size)`` (at least
            1), about one pass over the data per epoch.
        seed (int, optional): Base seed; None draws one random seed and
            syncs it across ranks. Defaults to None.
        camera_aware (bool): Spread each identity's K instances over its
            cameras. Defaults to True.
        labels (array-like, optional): Initial labels, as for
            :meth:`set_labels`. Defaults to None.
        label_key (str, optional): Data info key to read the labels from at
            construction. Cannot be combined with ``labels``. Defaults to
            None.
        rank (int, optional): This process's rank; None asks
            :func:`mmengine.dist.get_dist_info`. Defaults to None.
        world_size (int, optional): Number of processes; None asks
            :func:`mmengine.dist.get_dist_info`. Defaults to None.
        instance_rule (str): ``'round_robin'`` or ``'anchor_cross_camera'``
            (needs ``camera_aware``), see Sampling. Defaults to
            ``'round_robin'``.
        seeded_draws (bool): Yield :class:`DrawIndex` values, so that the
            random transforms of each sample draw from a seed derived from
            (seed, epoch, position in the epoch's stream): augmentation is
            then the same in every run with this seed, with any number of
            workers and after a resume inside an epoch. False yields plain
            ints and the transforms draw from the process-wide RNGs.
            Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 num_instances: int = 4,
                 num_iters: Optional[int] = None,
                 seed: Optional[int] = None,
                 camera_aware: bool = True,
                 labels: Optional[_LabelsLike] = None,
                 label_key: Optional[str] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None,
                 seeded_draws: bool = True,
                 instance_rule: str = 'round_robin') -> None:
        check_int(num_instances, 'IdentitySampler num_instances', 1)
        check_int(batch_size, 'IdentitySampler batch_size', 1)
        if batch_size % num_instances != 0:
            raise ValueError(
                f'IdentitySampler batch_size ({batch_size}) must be a '
                f'multiple of num_instances ({num_instances}): a batch is P '
                'identities x K instances')
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = (
            dist_world_size if world_size is None else world_size)
        check_int(self.world_size, 'IdentitySampler world_size', 1)
        check_int(self.rank, 'IdentitySampler rank', 0)
        if self.rank >= self.world_size:
            raise ValueError(f'IdentitySampler rank ({self.rank}) must be '
                             f'below world_size ({self.world_size})')
        if not hasattr(dataset, 'get_data_info'):
            raise TypeError('IdentitySampler needs a dataset with '
                            'get_data_info(i), got '
                            f'{type(dataset).__name__}')
        if labels is not None and label_key is not None:
            raise ValueError('IdentitySampler takes labels or label_key, not '
                             'both')

        if instance_rule not in INSTANCE_RULES:
            raise ValueError('IdentitySampler instance_rule must be one of '
                             f'{INSTANCE_RULES}, got {instance_rule!r}')
        if instance_rule == 'anchor_cross_camera' and not camera_aware:
            raise ValueError('IdentitySampler instance_rule='
                             '"anchor_cross_camera" needs the cameras: set '
                             'camera_aware=True')
        self.instance_rule = instance_rule
        if not isinstance(seeded_draws, bool):
            raise TypeError('IdentitySampler seeded_draws must be True or '
                            f'False, got {seeded_draws!r}')
        self.seeded_draws = seeded_draws
        self.dataset = dataset
        self.num_samples = len(dataset)
        self.batch_size = int(batch_size)
        self.num_instances = int(num_instances)
        self.num_ids_per_batch = self.batch_size // self.num_instances
        if num_iters is None:
            num_iters = max(
                1, self.num_samples // (self.batch_size * self.world_size))
        check_int(num_iters, 'IdentitySampler num_iters', 1)
        self.num_iters = int(num_iters)
        if seed is None:
            seed = sync_random_seed()
        check_int(seed, 'IdentitySampler seed', 0)
        self.seed = int(seed)
        self.start_iter = 0
        self.epoch = 0
        self.camera_aware = bool(camera_aware)
        self.label_key = label_key

        cameras, key_labels = self._read_data_infos()
        # Camera ids are only compared for equality, never ordered.
        self._cameras = cameras
        self._labels: Optional[np.ndarray] = None
        self._groups: Optional[Tuple[np.ndarray, ...]] = None
        if key_labels is not None:
            self.set_labels(key_labels)
        elif labels is not None:
            self.set_labels(labels)

    def _read_data_infos(
            self) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Read camera ids and ``label_key`` labels in one pass."""
        if not self.camera_aware and self.label_key is None:
            return None, None
        cameras, labels = [], []
        for i in range(self.num_samples):
            info = self.dataset.get_data_info(i)
            if self.camera_aware:
                if 'camera_id' not in info:
                    raise KeyError(
                        f'IdentitySampler(camera_aware=True) needs '
                        f'"camera_id" in every data info; sample {i} has '
                        f'keys {sorted(info)} (set camera_aware=False)')
                cameras.append(info['camera_id'])
            if self.label_key is not None:
                if self.label_key not in info:
                    raise KeyError(
                        f'IdentitySampler label_key="{self.label_key}" is '
                        f'not in the data info of sample {i} (keys '
                        f'{sorted(info)})')
                labels.append(info[self.label_key])
        cameras = (
            np.asarray(cameras, dtype=np.int64) if self.camera_aware else
            None)
        labels = (
            np.asarray(labels, dtype=np.int64)
            if self.label_key is not None else None)
        return cameras, labels

    @property
    def labels(self) -> Optional[np.ndarray]:
        """A copy of the current labels (None if not set)."""
        return None if self._labels is None else self._labels.copy()

    @property
    def num_identities(self) -> int:
        """Identities with at least one sample under the current labels."""
        return 0 if self._groups is None else len(self._groups[1])

    def set_labels(self, labels: _LabelsLike) -> None:
        """Set the (pseudo) label of every dataset sample.

        Args:
            labels (array-like): Integers of shape (len(dataset), ); ``-1``
                marks a sample that must not be drawn. Any other negative
                value is an error. Labels need not be contiguous.

        Raises:
            ValueError: Wrong shape, non-integer values, values below -1,
                or fewer than P identities.
        """
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != self.num_samples:
            raise ValueError(
                'IdentitySampler.set_labels needs one label per dataset '
                f'sample, shape ({self.num_samples}, ), got shape '
                f'{labels.shape}')
        if labels.dtype == np.bool_ or not (np.issubdtype(
                labels.dtype, np.integer) or labels.size == 0):
            raise ValueError('IdentitySampler.set_labels needs integer '
                             f'labels, got dtype {labels.dtype}')
        labels = labels.astype(np.int64)
        if labels.size and labels.min() < -1:
            raise ValueError(
                'IdentitySampler labels must be >= 0, or -1 for unused '
                f'samples, got {labels.min()}')
        groups = self._group(labels)
        num_ids = len(groups[1])
        if num_ids < self.num_ids_per_batch:
            raise ValueError(
                f'IdentitySampler needs at least P={self.num_ids_per_batch} '
                'identities with >= 1 sample for batches of P x K = '
                f'{self.num_ids_per_batch} x {self.num_instances}, but the '
                f'labels have {num_ids} ({int((labels < 0).sum())} samples '
                'labelled -1); lower batch_size or raise num_instances')
        self._labels = labels
        self._groups = groups

    def _group(self, labels: np.ndarray) -> Tuple[np.ndarray, ...]:
        """Sample indices grouped by identity, then by camera.

        Returns:
            tuple: ``order`` (M, ) indices of the labelled samples sorted by
            identity, camera and index; ``starts`` and ``counts`` (I, ) of
            each identity's run in ``order``; ``cam_group`` (M, ) a running
            number of the (identity, camera) run each entry of ``order``
            belongs to (one run per identity when not camera aware).
        """
        used = np.flatnonzero(labels >= 0)
        _, inverse, counts = np.unique(
            labels[used], return_inverse=True, return_counts=True)
        cameras = (
            self._cameras[used]
            if self.camera_aware else np.zeros(len(used), dtype=np.int64))
        by_id_cam = np.lexsort((used, cameras, inverse))
        order = used[by_id_cam]
        ids, cameras = inverse[by_id_cam], cameras[by_id_cam]
        new_run = np.ones(len(order), dtype=bool)
        new_run[1:] = (ids[1:] != ids[:-1]) | (cameras[1:] != cameras[:-1])
        cam_group = np.cumsum(new_run) - 1
        starts = np.cumsum(counts) - counts
        return order, starts, counts, cam_group

    def _draw_identities(self, rng: np.random.Generator,
                         num_batches: int) -> np.ndarray:
        """Identity indices of shape (num_batches * P, ), batch-major."""
        num_ids = self.num_identities
        p = self.num_ids_per_batch
        total = num_batches * p
        flat = np.empty(total, dtype=np.int64)
        pos = 0
        while pos < total:
            perm = rng.permutation(num_ids)
            filled = pos % p
            if filled:
                # The current batch already holds ids of the previous pass:
                # complete it with ids of this pass it does not hold yet, and
                # keep the rest of this pass in its shuffled order.
                partial = flat[pos - filled:pos]
                take = np.flatnonzero(~np.isin(perm, partial))[:p - filled]
                perm = np.concatenate([perm[take], np.delete(perm, take)])
            n = min(num_ids, total - pos)
            flat[pos:pos + n] = perm[:n]
            pos += n
        return flat

    def _draw_instances(self, rng: np.random.Generator,
                        slot_ids: np.ndarray) -> np.ndarray:
        """K dataset indices for every slot (one identity in one batch).

        Args:
            rng (np.random.Generator): The epoch's generator.
            slot_ids (np.ndarray): Identity index of every slot, (S, ).

        Returns:
            np.ndarray: Dataset indices of shape (S, K).
        """
        if self.instance_rule == 'anchor_cross_camera':
            return self._draw_anchored(rng, slot_ids)
        counts = self._groups[2][slot_ids]
        out = np.empty((len(slot_ids), self.num_instances), dtype=np.int64)
        # Chunk boundaries so that each chunk expands to a bounded number of
        # (slot, sample) pairs; a chunk holds at least one slot.
        cum = np.cumsum(counts)
        begin = 0
        while begin < len(slot_ids):
            base = cum[begin - 1] if begin else 0
            end = int(
                np.searchsorted(cum, base + _MAX_PAIRS_PER_CHUNK, 'right'))
            end = max(end, begin + 1)
            out[begin:end] = self._draw_chunk(rng, slot_ids[begin:end])
            begin = end
        return out

    def _draw_chunk(self, rng: np.random.Generator,
                    slot_ids: np.ndarray) -> np.ndarray:
        order, starts, counts, cam_group = self._groups
        k = self.num_instances
        num_slots = len(slot_ids)
        slot_counts = counts[slot_ids]
        total = int(slot_counts.sum())
        # Expand every slot to all samples of its identity: pair j belongs
        # to slot slot_of[j] and is entry pos[j] of ``order``. Pairs come
        # grouped by slot, then by camera (the layout of ``order``).
        slot_of = np.repeat(np.arange(num_slots), slot_counts)
        pos = np.repeat(starts[slot_ids] - np.cumsum(slot_counts) +
                        slot_counts, slot_counts) + np.arange(total)
        new_group = np.ones(total, dtype=bool)
        new_group[1:] = (slot_of[1:] != slot_of[:-1]) | (
            cam_group[pos[1:]] != cam_group[pos[:-1]])
        group = np.cumsum(new_group) - 1
        group_starts = np.flatnonzero(new_group)
        # A random order inside every (slot, camera) group: groups are
        # contiguous, so sorting group number + U[0, 1) shuffles each group
        # in place.
        shuffled = np.argsort(group + rng.random(total))
        round_idx = np.arange(total) - group_starts[group]
        # Round-robin over the cameras: the r-th sample of every camera comes
        # before the (r+1)-th of any, cameras taking turns in a random order
        # fixed per slot. Rounds >= K can never be among the first K, so
        # they are dropped before the second sort.
        keep = round_idx < k
        pos, slot_of = pos[shuffled][keep], slot_of[keep]
        group, round_idx = group[keep], round_idx[keep]
        cam_turn = rng.random(len(group_starts))[group]
        pos = pos[np.argsort((slot_of * k + round_idx) + cam_turn)]
        # Both sorts keep every slot's pairs together and in slot order.
        kept = np.bincount(slot_of, minlength=num_slots)
        rank = np.arange(len(pos)) - np.repeat(np.cumsum(kept) - kept, kept)
        take = rank < k
        out = np.empty((num_slots, k), dtype=np.int64)
        out[slot_of[take], rank[take]] = order[pos[take]]

        short = np.flatnonzero(slot_counts < k)
        if len(short):
            # Fewer than K samples: all of them, then draws with
            # replacement.
            have = slot_counts[short]
            missing = k - have
            rows = np.repeat(short, missing)
            cols = np.repeat(have, missing) + (
                np.arange(int(missing.sum())) -
                np.repeat(np.cumsum(missing) - missing, missing))
            picks = rng.integers(0, np.repeat(have, missing))
            out[rows, cols] = order[np.repeat(starts[slot_ids[short]],
                                              missing) + picks]
        return out

    def _draw_anchored(self, rng: np.random.Generator,
                       slot_ids: np.ndarray) -> np.ndarray:
        """``instance_rule='anchor_cross_camera'``: an anchor, then K - 1
        samples of its identity from other cameras (see Sampling); one
        slot at a time (a few thousand slots an epoch)."""
        order, starts, counts, _ = self._groups
        k = self.num_instances
        out = np.empty((len(slot_ids), k), dtype=np.int64)
        for row, identity in enumerate(slot_ids):
            members = order[starts[identity]:starts[identity] +
                            counts[identity]]
            anchor = members[rng.integers(len(members))]
            others = members[self._cameras[members] !=
                             self._cameras[anchor]]
            if not len(others):
                others = members[members != anchor]
            out[row, 0] = anchor
            if not len(others):
                out[row, 1:] = anchor
                continue
            out[row, 1:] = rng.choice(
                others, size=k - 1, replace=len(others) < k)
        return out

    def _batches(self) -> np.ndarray:
        """This rank's batches of the current epoch, shape
        (num_iters, batch_size)."""
        if self._groups is None:
            raise RuntimeError(
                'IdentitySampler: pseudo labels were not set; call '
                'set_labels() before iterating (a re-clustering hook does '
                'so before every epoch) or pass label_key/labels')
        rng = np.random.default_rng(self.seed + self.epoch)
        num_batches = self.num_iters * self.world_size
        slot_ids = self._draw_identities(rng, num_batches)
        instances = self._draw_instances(rng, slot_ids)
        batches = instances.reshape(num_batches, self.batch_size)
        return batches[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        batches = self._batches()[self.start_iter:]
        if not self.seeded_draws:
            return iter(batches.reshape(-1).tolist())
        # Position of each slot in the epoch's global stream: rank r keeps
        # the global batches r, r + W, ...; the draws of a sample depend on
        # (seed, epoch, position) only, not on workers or a resume.
        local = np.arange(self.start_iter, self.num_iters)
        global_batch = self.rank + local * self.world_size
        positions = (global_batch[:, None] * self.batch_size +
                     np.arange(self.batch_size)[None, :])
        seeds = draw_seeds(self.seed, self.epoch, positions)
        return (DrawIndex(i, s) for i, s in zip(
            batches.reshape(-1).tolist(),
            seeds.reshape(-1).tolist()))

    def set_start_iter(self, start_iter: int) -> None:
        """Skip the first ``start_iter`` batches of the epoch.

        A run resumed inside an epoch continues with the batches the
        uninterrupted run would have drawn next; ``__len__`` stays the full
        epoch length, as the training loop counts iterations from it.

        Args:
            start_iter (int): batches to skip, in ``[0, num_iters]``.
        """
        check_int(start_iter, 'IdentitySampler start_iter', 0)
        if start_iter > self.num_iters:
            raise ValueError(f'start_iter {start_iter} is beyond the '
                             f'{self.num_iters} iterations of an epoch')
        self.start_iter = int(start_iter)

    def __len__(self) -> int:
        """Indices per epoch on this rank, ``num_iters * batch_size``."""
        return self.num_iters * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; the sampling sequence depends on seed + epoch.

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = int(epoch)

    def state_dict(self) -> dict:
        """Labels, epoch and seed, to resume the same sampling sequence."""
        return dict(
            labels=None
            if self._labels is None else torch.from_numpy(self._labels),
            epoch=self.epoch,
            seed=self.seed)

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved.

        Args:
            state_dict (dict): With keys ``labels``, ``epoch`` and ``seed``.
        """
        missing = {'labels', 'epoch', 'seed'} - set(state_dict)
        if missing:
            raise KeyError('IdentitySampler.load_state_dict is missing '
                           f'{sorted(missing)}')
        if state_dict['labels'] is not None:
            self.set_labels(state_dict['labels'])
        else:
            self._labels, self._groups = None, None
        self.epoch = int(state_dict['epoch'])
        self.seed = int(state_dict['seed'])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(batch_size={self.batch_size}, '
                f'num_instances={self.num_instances}, '
                f'num_iters={self.num_iters}, seed={self.seed}, '
                f'camera_aware={self.camera_aware}, rank={self.rank}, '
                f'world_size={self.world_size})')

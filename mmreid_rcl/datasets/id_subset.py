"""Keeping a subset of a train split's identities (``id_subset=``).

Semi-supervised and label-budget experiments split the identities of one
train folder into a labelled part L and an unlabelled part U. Membership is
decided per identity by a seeded hash of its raw person id: the id is in L
when ``hash(seed, id)``, read as a number in [0, 1), is below ``fraction``.
So

- L and U are disjoint and together hold every id, by construction;
- the split depends on the seed and the id only: the same on every run,
  process and machine (SHA-256, not Python's salted ``hash``);
- adding images of other ids (a larger copy of the data set, a new camera)
  never moves an existing id between L and U.

The price of that stability is that L holds ``fraction`` of the ids in
expectation, not exactly (a seeded permutation of the sorted id list would
give the exact count, but one new id would reshuffle every assignment):
with CUHK03's 743 train ids and ``fraction=0.5, seed=0`` L has 375 ids
(3,645 images) and U 368 (3,594). The served split's
``metainfo['num_ids']`` tells the count.
"""
import hashlib
import logging
import os.path as osp
from typing import Iterable, List, Optional, Set

from mmengine.logging import print_log

from mmreid_rcl.utils.validation import check_int, is_real

PARTS = ('labelled', 'unlabelled')
_KEYS = {'fraction', 'seed', 'part', 'id_file'}


def id_hash_unit(person_id: int, seed: int) -> float:
    """A seeded, uniform-looking number in [0, 1) for one person id.

    Args:
        person_id (int): the raw person id.
        seed (int): the split's seed.

    Returns:
        float: the first 64 bits of ``sha256("seed:person_id")`` over 2^64.
    """
    digest = hashlib.sha256(f'{int(seed)}:{int(person_id)}'.encode()).digest()
    return int.from_bytes(digest[:8], 'big') / float(1 << 64)


def check_id_subset(id_subset: Optional[dict],
                    split: str) -> Optional[dict]:
    """Validate an ``id_subset`` setting and fill in its defaults.

    Args:
        id_subset (dict, optional): ``dict(fraction=F, seed=S,
            part='labelled'|'unlabelled')`` or ``dict(id_file=PATH,
            part=...)``; ``seed`` defaults to 0 and ``part`` to
            ``'labelled'``.
        split (str): the dataset's split; only ``'train'`` is allowed.

    Returns:
        dict, optional: the completed setting, None when none was given.

    Raises:
        ValueError: an unknown key, a bad value, both or neither of
            ``fraction`` and ``id_file``, or a split other than train.
    """
    if id_subset is None:
        return None
    if not isinstance(id_subset, dict):
        raise TypeError('id_subset must be a dict such as dict(fraction=0.5, '
                        f'seed=0, part=\'labelled\'), got {id_subset!r}')
    if split != 'train':
        raise ValueError(
            f'id_subset is for the train split only, got split={split!r}: '
            'query and gallery must keep all their ids so that the '
            'evaluation protocol stays the published one')
    unknown = set(id_subset) - _KEYS
    if unknown:
        raise ValueError(f'id_subset has unknown keys {sorted(unknown)}; '
                         f'expected some of {sorted(_KEYS)}')
    cfg = dict(seed=0, part='labelled')
    cfg.update(id_subset)
    if ('fraction' in cfg) == ('id_file' in cfg):
        raise ValueError('id_subset needs exactly one of "fraction" (a '
                         'seeded share of the ids) and "id_file" (a list of '
                         f'ids), got {id_subset!r}')
    if cfg['part'] not in PARTS:
        raise ValueError(f'id_subset part must be one of {PARTS}, got '
                         f'{cfg["part"]!r}')
    seed = cfg['seed']
    check_int(seed, 'id_subset seed', 0)
    if 'fraction' in cfg:
        fraction = cfg['fraction']
        if not is_real(fraction) or not 0.0 < fraction <= 1.0:
            raise ValueError('id_subset fraction must be a number in (0, 1], '
                             f'got {fraction!r}')
        cfg['fraction'] = float(fraction)
    elif not isinstance(cfg['id_file'], str) or not cfg['id_file']:
        raise ValueError('id_subset id_file must be a file path, got '
                         f'{cfg["id_file"]!r}')
    return cfg


def read_id_file(path: str) -> Set[int]:
    """Read a list of raw person ids: one per line.

    Blank lines and text after ``#`` are ignored.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: a line is not an integer (the message names the file
            and the line).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'id_subset id_file {path!r} does not exist')
    ids = set()
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, start=1):
            text = line.split('#', 1)[0].strip()
            if not text:
                continue
            try:
                ids.add(int(text))
            except ValueError:
                raise ValueError(
                    f'id_subset id_file {path!r} line {number}: expected one '
                    f'integer person id, got {text!r}') from None
    return ids


def select_ids(person_ids: Iterable[int], id_subset: dict) -> Set[int]:
    """The ids of ``person_ids`` that ``id_subset`` keeps.

    Args:
        person_ids (Iterable[int]): raw person ids (repeats allowed).
        id_subset (dict): a setting completed by :func:`check_id_subset`.

    Returns:
        set[int]: the kept ids.
    """
    ids = set(int(pid) for pid in person_ids)
    if 'id_file' in id_subset:
        listed = read_id_file(id_subset['id_file'])
        labelled = ids & listed
        absent = len(listed - ids)
        if absent:
            print_log(
                f'id_subset: {absent} of the {len(listed)} ids of '
                f'{id_subset["id_file"]!r} have no image in this split',
                logger='current',
                level=logging.WARNING)
    else:
        labelled = {
            pid
            for pid in ids
            if id_hash_unit(pid, id_subset['seed']) < id_subset['fraction']
        }
    return labelled if id_subset['part'] == 'labelled' else ids - labelled


def apply_id_subset(data_list: List[dict], id_subset: dict,
                    dataset_name: str) -> List[dict]:
    """Keep the samples of the ids :func:`select_ids` keeps, in order.

    Args:
        data_list (list[dict]): samples with ``person_id`` (raw ids).
        id_subset (dict): a setting completed by :func:`check_id_subset`.
        dataset_name (str): for the messages.

    Returns:
        list[dict]: the kept samples.

    Raises:
        ValueError: no sample is left.
    """
    all_ids = {info['person_id'] for info in data_list}
    kept_ids = select_ids(all_ids, id_subset)
    kept = [info for info in data_list if info['person_id'] in kept_ids]
    if not kept:
        raise ValueError(f'{dataset_name}: id_subset={id_subset!r} keeps no '
                         f'identity of the {len(all_ids)} in the split')
    print_log(
        f'{dataset_name}: id_subset {id_subset} keeps {len(kept_ids)} of '
        f'{len(all_ids)} ids ({len(kept)} of {len(data_list)} images)',
        logger='current')
    return kept

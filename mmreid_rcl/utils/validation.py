"""Checks of settings and array arguments, shared by the whole package.

Every check raises with a message naming the setting and the value it
got, so that a wrong config entry is found from the message alone.
"""
import numbers
from typing import Optional, Sequence, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


def is_int(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer (a bool is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    """Whether ``value`` is a real number (a bool is not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value, name: str, minimum: int = 1) -> int:
    """Check that a setting is an int no smaller than ``minimum``.

    Args:
        value: the setting.
        name (str): its name, for the message (e.g. ``'k1'``).
        minimum (int): the smallest value allowed. Defaults to 1.

    Returns:
        int: ``value`` as a Python int.

    Raises:
        ValueError: ``value`` is not an int (a bool is refused) or is below
            ``minimum``; the message reads ``'{name} must be a positive int,
            got {value!r}'`` for ``minimum=1``, ``'{name} must be an int >=
            {minimum}, got {value!r}'`` otherwise.
    """
    if not is_int(value) or value < minimum:
        what = 'a positive int' if minimum == 1 else f'an int >= {minimum}'
        raise ValueError(f'{name} must be {what}, got {value!r}')
    return int(value)


def as_array(values: ArrayLike, name: str) -> np.ndarray:
    """A NumPy view of an array, a CPU copy of a tensor.

    Raises:
        TypeError: ``values`` cannot be made an array (e.g. a ragged list).
    """
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    try:
        return np.asarray(values)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f'{name} must be array-like, got '
                        f'{type(values).__name__}') from err


def as_ids(values: ArrayLike,
           name: str,
           length: Optional[int] = None,
           what: Optional[str] = None) -> np.ndarray:
    """Identities or cameras as an int64 vector.

    Args:
        values (np.ndarray | Tensor | Sequence): integers, shape (N, ).
        name (str): the argument's name, for the message.
        length (int, optional): the length required.
        what (str, optional): what ``length`` is, for the message (e.g.
            ``'rows of distmat'``).

    Returns:
        np.ndarray: int64 array of shape (N, ).

    Raises:
        ValueError: not one-dimensional or not of length ``length``.
        TypeError: not integers.
    """
    values = as_array(values, name)
    if values.ndim != 1 or (length is not None and len(values) != length):
        expected = 'N' if length is None else length
        to_match = f' to match the {what}' if what else ''
        raise ValueError(f'{name} must have shape ({expected}, ){to_match}, '
                         f'got {values.shape}')
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f'{name} must hold integers, got {values.dtype}')
    return values.astype(np.int64, copy=False)

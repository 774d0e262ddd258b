"""Several non-negative integer fields packed into one uint64 sort key.

Sorting packed keys with numpy's plain (SIMD-accelerated) sort of
integers orders the records by the fields from the first to the last,
several times faster than a lexsort or an argsort of records. Floats take
part as order-preserving bit patterns (:func:`float32_order_bits`).
"""
from typing import Optional, Sequence

import numpy as np

KEY_BITS = 64


def float32_order_bits(values: np.ndarray) -> np.ndarray:
    """float32 values as uint32 with the same order and the same ties.

    Flipping the sign bit of non-negative floats and all bits of negative
    ones makes unsigned comparison agree with float comparison; -0.0 is
    first made +0.0 so that both zeros tie, as they do as floats.

    Args:
        values (np.ndarray): float32 array, no NaN.

    Returns:
        np.ndarray: uint32 array of the same shape.
    """
    bits = (values + np.float32(0)).view(np.uint32)
    # All ones for negative values, the sign bit alone otherwise.
    flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF)
    flip |= np.uint32(0x80000000)
    bits ^= flip
    return bits


def _check_widths(widths: Sequence[int]) -> None:
    if not widths or min(widths) < 1 or sum(widths) > KEY_BITS:
        raise ValueError(f'field widths must be positive and sum to at '
                         f'most {KEY_BITS} bits, got {list(widths)}')


def pack_keys(fields: Sequence[np.ndarray],
              widths: Sequence[int],
              out: Optional[np.ndarray] = None) -> np.ndarray:
    """Pack fields into uint64 keys, the first field in the highest bits.

    Field ``t`` takes ``widths[t]`` bits; its values must be non-negative
    and below ``2 ** widths[t]`` (not checked: the caller sizes the
    widths). Fields of any integer or bool type are cast a buffer at a
    time, without a full-size temporary.

    Args:
        fields (Sequence[np.ndarray]): integer arrays of one shape.
        widths (Sequence[int]): bits of each field, at most 64 in all.
        out (np.ndarray, optional): uint64 array the keys are written to;
            it may be the first field itself (packed in place).

    Returns:
        np.ndarray: uint64 keys, the shape of the fields.
    """
    _check_widths(widths)
    if len(fields) != len(widths):
        raise ValueError(f'{len(fields)} fields but {len(widths)} widths')
    if out is None:
        out = fields[0].astype(np.uint64)
    elif out is not fields[0]:
        np.copyto(out, fields[0], casting='unsafe')
    for values, bits in zip(fields[1:], widths[1:]):
        out <<= np.uint64(bits)
        np.bitwise_or(
            out, values, out=out, dtype=np.uint64, casting='unsafe')
    return out


def unpack_key(keys: np.ndarray, widths: Sequence[int],
               index: int) -> np.ndarray:
    """Field ``index`` of keys made by :func:`pack_keys` with ``widths``.

    Returns:
        np.ndarray: uint64 values of the field, the shape of ``keys``.
    """
    _check_widths(widths)
    shift = sum(widths[index + 1:])
    mask = np.uint64((1 << widths[index]) - 1)
    if index == 0:  # the first field has nothing above it
        return keys >> np.uint64(shift) if shift else keys.copy()
    if shift == 0:
        return keys & mask
    field = keys >> np.uint64(shift)
    field &= mask
    return field

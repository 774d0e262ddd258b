import numpy as np
import pytest

from mmreid_rcl.utils.sort_keys import (float32_order_bits, pack_keys,
                                        unpack_key)


def test_float32_order_bits_keep_order_and_ties():
    values = np.array([np.inf, 1.5, -0.0, 0.0, -np.inf, -2.0, 1e-45, -1e-45,
                       3.4e38, 1.5], dtype=np.float32)
    bits = float32_order_bits(values)
    assert bits.dtype == np.uint32
    # Same order as the floats, and equal floats (both zeros) tie.
    for i in range(len(values)):
        for j in range(len(values)):
            assert (bits[i] < bits[j]) == (values[i] < values[j])
            assert (bits[i] == bits[j]) == (values[i] == values[j])


def test_packed_sort_is_a_lexicographic_sort():
    rng = np.random.default_rng(0)
    n = 2000
    rows = rng.integers(0, 50, n)
    values = rng.choice(np.array([-1, 0, 0.25, 0.5, 3], np.float32), n)
    cols = rng.integers(0, 300, n).astype(np.int32)
    flags = rng.random(n) < 0.5
    widths = (6, 32, 9, 1)
    keys = pack_keys((rows, float32_order_bits(values), cols, flags), widths)
    keys.sort()
    # The slow, obvious order: records sorted as tuples.
    expected = sorted(zip(rows.tolist(), values.tolist(), cols.tolist(),
                          flags.tolist()))
    exp_rows, exp_values, exp_cols, exp_flags = (list(t)
                                                 for t in zip(*expected))
    assert unpack_key(keys, widths, 0).tolist() == exp_rows
    np.testing.assert_array_equal(
        unpack_key(keys, widths, 1).astype(np.uint32),
        float32_order_bits(np.array(exp_values, np.float32)))
    assert unpack_key(keys, widths, 2).tolist() == exp_cols
    assert unpack_key(keys, widths, 3).astype(bool).tolist() == exp_flags


def test_hand_packed_key():
    keys = pack_keys((np.array([1, 2]), np.array([3, 0]),
                      np.array([True, False])), (3, 2, 1))
    # 1 | 11 | 1 and 10 | 00 | 0
    assert keys.tolist() == [0b1111, 0b10000]
    assert keys.dtype == np.uint64
    assert unpack_key(keys, (3, 2, 1), 1).tolist() == [3, 0]


def test_pack_in_place():
    first = np.array([1, 2], dtype=np.int64).view(np.uint64)
    out = pack_keys((first, np.array([5, 6], np.uint32)), (33, 31),
                    out=first)
    assert out is first
    assert first.tolist() == [(1 << 31) + 5, (2 << 31) + 6]


def test_bad_widths():
    with pytest.raises(ValueError, match='at most 64 bits'):
        pack_keys((np.zeros(1, int), np.zeros(1, int)), (40, 30))
    with pytest.raises(ValueError, match='2 fields but 1 widths'):
        pack_keys((np.zeros(1, int), np.zeros(1, int)), (4, ))

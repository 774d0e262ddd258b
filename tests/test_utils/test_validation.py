import numpy as np
import pytest
import torch

from mmreid_rcl.utils.validation import (as_array, as_ids, check_int, is_int,
                                         is_real)


@pytest.mark.parametrize('value,expected', [
    (3, True), (np.int64(3), True), (np.uint8(0), True), (True, False),
    (np.bool_(True), False), (3.0, False), ('3', False), (None, False)
])
def test_is_int(value, expected):
    assert is_int(value) is expected


@pytest.mark.parametrize('value,expected', [
    (3, True), (2.5, True), (np.float32(1), True), (False, False),
    (1j, False), ('1', False)
])
def test_is_real(value, expected):
    assert is_real(value) is expected


def test_check_int_returns_a_python_int():
    value = check_int(np.int32(4), 'k1')
    assert value == 4 and type(value) is int
    assert check_int(0, 'seed', minimum=0) == 0


@pytest.mark.parametrize('value', [0, -2, True, 2.0, '3', None])
def test_check_int_names_the_setting_and_the_value(value):
    with pytest.raises(ValueError) as info:
        check_int(value, 'k1')
    assert str(info.value) == f'k1 must be a positive int, got {value!r}'


def test_check_int_with_another_minimum():
    with pytest.raises(ValueError, match=r'^seed must be an int >= 0, got'):
        check_int(-1, 'seed', minimum=0)


def test_as_array_and_ids():
    assert as_array(torch.arange(3), 'x').tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match='x must be array-like'):
        as_array([[1], [1, 2]], 'x')
    ids = as_ids(torch.tensor([3, 1], dtype=torch.int32), 'q_pids', 2)
    assert ids.dtype == np.int64 and ids.tolist() == [3, 1]
    with pytest.raises(ValueError,
                       match=r'q_pids must have shape \(3, \) to match the '
                       r'rows of distmat, got \(2,\)'):
        as_ids([3, 1], 'q_pids', 3, 'rows of distmat')
    with pytest.raises(ValueError, match=r'must have shape \(N, \)'):
        as_ids(np.zeros((2, 2), int), 'g_pids')
    with pytest.raises(TypeError, match='g_pids must hold integers'):
        as_ids([0.5], 'g_pids')

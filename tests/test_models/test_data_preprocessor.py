import pytest
import torch

from mmreid_rcl.models.utils import ReIDDataPreprocessor
from mmreid_rcl.registry import MODELS
from mmreid_rcl.structures import ReIDDataSample


def _bgr_image():
    """A 2x2 BGR uint8 image in CHW layout, channels told apart by value."""
    blue = [[0, 10], [20, 30]]
    green = [[40, 50], [60, 70]]
    red = [[80, 90], [100, 110]]
    return torch.tensor([blue, green, red], dtype=torch.uint8)


def test_exact_values_and_rgb_order():
    # mean / std are given in RGB order.
    preprocessor = ReIDDataPreprocessor(mean=(100, 50, 10), std=(10, 5, 2))
    out = preprocessor(dict(inputs=[_bgr_image(), _bgr_image()]))
    inputs = out['inputs']
    assert inputs.shape == (2, 3, 2, 2) and inputs.dtype == torch.float32
    expected = torch.tensor([
        [[-2.0, -1.0], [0.0, 1.0]],  # R: (red - 100) / 10
        [[-2.0, 0.0], [2.0, 4.0]],  # G: (green - 50) / 5
        [[-5.0, 0.0], [5.0, 10.0]],  # B: (blue - 10) / 2
    ])
    torch.testing.assert_close(inputs[0], expected)
    torch.testing.assert_close(inputs[1], expected)


def test_without_channel_swap_keeps_bgr():
    preprocessor = ReIDDataPreprocessor(
        mean=(0, 0, 0), std=(1, 1, 1), bgr_to_rgb=False)
    out = preprocessor(dict(inputs=[_bgr_image()]))['inputs'][0]
    torch.testing.assert_close(out, _bgr_image().float())
    swapped = ReIDDataPreprocessor(mean=(0, 0, 0), std=(1, 1, 1))(
        dict(inputs=[_bgr_image()]))['inputs'][0]
    torch.testing.assert_close(swapped, _bgr_image().flip(0).float())


def test_default_is_imagenet_rgb():
    preprocessor = MODELS.build(dict(type='ReIDDataPreprocessor'))
    img = torch.full((3, 2, 2), 255, dtype=torch.uint8)
    img[0] = 0  # blue channel of a BGR image
    out = preprocessor(dict(inputs=[img]))['inputs'][0]
    expected_rgb = [(255 - 123.675) / 58.395, (255 - 116.28) / 57.12,
                    (0 - 103.53) / 57.375]
    for c, value in enumerate(expected_rgb):
        torch.testing.assert_close(out[c], torch.full((2, 2), value))


def test_data_samples_pass_through_and_stacked_input():
    samples = [ReIDDataSample(), ReIDDataSample()]
    samples[0].pseudo_label = 4
    preprocessor = ReIDDataPreprocessor(mean=(100, 50, 10), std=(10, 5, 2))
    out = preprocessor(
        dict(inputs=[_bgr_image(), _bgr_image()], data_samples=samples))
    # Moved to the model's device (copies), otherwise as given.
    assert len(out['data_samples']) == 2
    assert out['data_samples'][0].pseudo_label == 4
    assert out['data_samples'][1].get_pseudo_label() is None
    # An already stacked uint8 batch gives the same result.
    stacked = preprocessor(
        dict(inputs=torch.stack([_bgr_image(), _bgr_image()])))
    torch.testing.assert_close(stacked['inputs'], out['inputs'])
    assert stacked['data_samples'] is None


def test_errors():
    preprocessor = ReIDDataPreprocessor()
    with pytest.raises(ValueError, match='one size'):
        preprocessor(
            dict(inputs=[
                torch.zeros(3, 4, 2, dtype=torch.uint8),
                torch.zeros(3, 2, 2, dtype=torch.uint8)
            ]))
    with pytest.raises(ValueError, match='empty batch'):
        preprocessor(dict(inputs=[]))
    with pytest.raises(ValueError, match='both'):
        ReIDDataPreprocessor(mean=(1, 2, 3), std=None)
    with pytest.raises(ValueError, match='1 or 3 values'):
        ReIDDataPreprocessor(mean=(1, 2), std=(1, 2))
    with pytest.raises(ValueError, match='positive'):
        ReIDDataPreprocessor(mean=(1, 2, 3), std=(1, 0, 1))
    with pytest.raises(ValueError, match='cannot both'):
        ReIDDataPreprocessor(rgb_to_bgr=True)

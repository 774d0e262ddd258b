from .load_reid_image import LoadReIDImage
from .pack_reid_inputs import PackReIDInputs
from .random_color_cast import RandomColorCast
from .random_erasing import RandomErasing
from .random_pad_crop import RandomPadCrop

__all__ = [
    'LoadReIDImage', 'RandomPadCrop', 'RandomErasing', 'RandomColorCast',
    'PackReIDInputs'
]

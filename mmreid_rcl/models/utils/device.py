"""Where a module's tensors live."""
import itertools
from typing import Optional, Union

import torch
import torch.nn as nn


def module_device(
        module: nn.Module,
        default: Optional[Union[str, torch.device]] = None) -> torch.device:
    """The device of a module: of its first parameter, else of its first
    buffer (a module without trained weights, e.g. a fixed-temperature
    ``SimilarityAttentionAggregator``, holds only buffers), else
    ``default``.

    Args:
        module (nn.Module): the module.
        default (str | torch.device, optional): the answer for a module
            without tensors. Defaults to None: the CPU.

    Returns:
        torch.device: the device.
    """
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device('cpu' if default is None else default)

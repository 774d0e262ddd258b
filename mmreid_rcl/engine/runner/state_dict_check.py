"""Loading weights into a model with a check that they belong to it.

mmengine loads checkpoints with ``strict=False``: a checkpoint of another
network (another backbone, another key prefix) only logs long lists of
missing and unexpected keys, and what is evaluated is the untrained
model. :func:`load_state_dict_checked` loads what fits, reports what does
not, and :func:`load_checkpoint_checked` refuses the checkpoint when too
much does not fit.

The tolerance: a checkpoint of the same network matches entry for entry,
so only a few entries may legitimately differ (a buffer added to the model
after the checkpoint was written). A checkpoint of another network misses
most entries. A load is refused when more than ``max(2, 1 %)`` of the
model's entries are missing from the checkpoint or have another shape, or
more than ``max(2, 1 %)`` of the checkpoint's entries are not in the
model (a larger network whose first layers happen to fit). BatchNorm's
``num_batches_tracked`` counters are not counted: BatchNorm recreates them
and they do not change the outputs.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader

#: Entries never counted: BatchNorm recreates its step counter.
_IGNORED = re.compile(r'(^|\.)num_batches_tracked$')
#: torch's message for a parameter of another shape.
_SIZE_MISMATCH = re.compile(r'size mismatch for (\S+?): copying a param '
                            r'with shape (.+?) from checkpoint, the shape in '
                            r'current model is (.+?)\.$')
_TORCH_SIZE = re.compile(r'torch\.Size\(\[(.*)\]\)')
#: Key names shown in a message, per kind.
_EXAMPLES = 5


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not belong to the model they are loaded
    into (see :func:`load_checkpoint_checked`)."""


def partial_load_tolerance(num_entries: int) -> int:
    """Entries allowed to differ among ``num_entries``: max(2, 1 %)."""
    return max(2, num_entries // 100)


@dataclass
class StateDictMatch:
    """How a state dict fitted a model.

    Attributes:
        num_model_entries (int): Entries of the model's state dict.
        num_checkpoint_entries (int): Entries of the loaded state dict.
        missing (list[str]): Model entries absent from the state dict.
        unexpected (list[str]): State dict entries the model does not have.
        mis_shaped (list[str]): Entries that could not be copied, as
            ``'key: checkpoint (a, b), model (c, d)'`` (another shape) or
            the loader's message.
    """
    num_model_entries: int
    num_checkpoint_entries: int
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mis_shaped: List[str] = field(default_factory=list)

    @property
    def tolerance(self) -> int:
        """Missing plus mis-shaped model entries allowed."""
        return partial_load_tolerance(self.num_model_entries)

    @property
    def unexpected_tolerance(self) -> int:
        """Checkpoint entries not in the model allowed."""
        return partial_load_tolerance(self.num_checkpoint_entries)

    @property
    def fits(self) -> bool:
        """Whether the differences are within the tolerances."""
        return (len(self.missing) + len(self.mis_shaped) <= self.tolerance
                and len(self.unexpected) <= self.unexpected_tolerance)

    @property
    def exact(self) -> bool:
        """Whether every entry was loaded and none was left over."""
        return not (self.missing or self.unexpected or self.mis_shaped)

    def describe(self) -> str:
        """Counts, tolerances and a few example keys of each kind."""
        model = self.num_model_entries
        lines = [
            f'{len(self.missing)} of the {model} entries of the model are '
            f'missing from it and {len(self.mis_shaped)} have another shape '
            f'(at most {self.tolerance} tolerated, max(2, 1 % of {model})); '
            f'{len(self.unexpected)} of its {self.num_checkpoint_entries} '
            'entries are not in the model (at most '
            f'{self.unexpected_tolerance} tolerated)'
        ]
        for name, keys, sep in (('missing', self.missing, ', '),
                                ('another shape', self.mis_shaped, '; '),
                                ('not in the model', self.unexpected, ', ')):
            if keys:
                more = (f' (+{len(keys) - _EXAMPLES} more)'
                        if len(keys) > _EXAMPLES else '')
                lines.append(f'  {name}: {sep.join(keys[:_EXAMPLES])}{more}')
        return '\n'.join(lines)


def _shape_message(message: str) -> str:
    """``'key: checkpoint (a, b), model (c, d)'`` from torch's message."""
    found = _SIZE_MISMATCH.match(message.strip())
    if found is None:
        return message.strip()
    key, ckpt, model = found.groups()
    return f'{key}: checkpoint {_shape(ckpt)}, model {_shape(model)}'


def _shape(text: str) -> str:
    """``'torch.Size([6])'`` -> ``'(6,)'``, as ``tuple(shape)`` prints."""
    found = _TORCH_SIZE.fullmatch(text)
    if found is None:
        return text
    dims = tuple(int(d) for d in found.group(1).split(',') if d.strip())
    return str(dims)


def load_state_dict_checked(model: nn.Module,
                            state_dict: Mapping) -> StateDictMatch:
    """Load the entries of ``state_dict`` that fit ``model``; report the
    rest.

    The entries go through each module's ``_load_from_state_dict``, as in
    ``torch.nn.Module.load_state_dict`` and mmengine's loader, so modules
    that resize a buffer on load (the cluster memory, the pseudo labels)
    or ignore some keys (a backbone's ImageNet classifier) behave as in a
    normal load. Unlike those, nothing is raised or logged: the result
    says what did not fit.

    Args:
        model (nn.Module): The model (a wrapper such as DDP is unwrapped).
            It is modified: the entries that fit are copied into it.
        state_dict (Mapping): Entry name -> tensor.

    Returns:
        StateDictMatch: What was missing, left over or of another shape.
    """
    if is_model_wrapper(model):
        model = model.module
    metadata = getattr(state_dict, '_metadata', None)
    state_dict = OrderedDict(state_dict)
    if metadata is not None:
        state_dict._metadata = metadata
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []

    def load(module: nn.Module, prefix: str = '') -> None:
        local_metadata = {} if metadata is None else metadata.get(
            prefix[:-1], {})
        module._load_from_state_dict(state_dict, prefix, local_metadata, True,
                                     missing, unexpected, errors)
        for name, child in module._modules.items():
            if child is not None:
                load(child, prefix + name + '.')

    load(model)
    num_model = sum(1 for key in model.state_dict()
                    if not _IGNORED.search(key))
    num_checkpoint = sum(1 for key in state_dict if not _IGNORED.search(key))
    return StateDictMatch(
        num_model_entries=num_model,
        num_checkpoint_entries=num_checkpoint,
        missing=[key for key in missing if not _IGNORED.search(key)],
        unexpected=[key for key in unexpected if not _IGNORED.search(key)],
        mis_shaped=[_shape_message(msg) for msg in errors])


def extract_state_dict(checkpoint, source: str = 'the checkpoint',
                       revise_keys: Sequence[Tuple[str, str]] = (
                           (r'^module\.', ''), )) -> OrderedDict:
    """The state dict of a loaded checkpoint, keys revised as mmengine does.

    Args:
        checkpoint: What ``torch.load`` returned: a dict holding a
            ``state_dict``, or a state dict.
        source (str): Its file name, for error messages.
        revise_keys (Sequence[tuple[str, str]]): (pattern, replacement)
            pairs applied to every key. Defaults to stripping the
            ``module.`` prefix of DDP.

    Returns:
        OrderedDict: Entry name -> tensor.

    Raises:
        CheckpointMismatchError: It holds no dict of entries.
    """
    state_dict = checkpoint
    if isinstance(checkpoint, Mapping) and 'state_dict' in checkpoint:
        state_dict = checkpoint['state_dict']
    if not isinstance(state_dict, Mapping):
        raise CheckpointMismatchError(
            f'{source} holds no state dict (a dict of weights, or a dict '
            f'with a "state_dict" entry); found {type(state_dict).__name__}')
    metadata = getattr(state_dict, '_metadata', None)
    for pattern, replacement in revise_keys:
        state_dict = OrderedDict((re.sub(pattern, replacement, key), value)
                                 for key, value in state_dict.items())
    state_dict = OrderedDict(state_dict)
    if metadata is not None:
        state_dict._metadata = metadata
    return state_dict


def load_checkpoint_checked(model: nn.Module,
                            filename: str,
                            allow_partial: bool = False,
                            map_location: Optional[str] = 'cpu'
                            ) -> StateDictMatch:
    """Load a checkpoint file into ``model``, refusing other models'.

    Args:
        model (nn.Module): The model; the entries that fit are loaded.
        filename (str): The checkpoint (local path or any scheme mmengine
            reads).
        allow_partial (bool): Keep a load beyond the tolerances (see the
            module docstring) instead of raising. Defaults to False.
        map_location (str, optional): Where the tensors are read to.
            Defaults to ``'cpu'``.

    Returns:
        StateDictMatch: How the checkpoint fitted.

    Raises:
        CheckpointMismatchError: More entries differ than tolerated and
            ``allow_partial`` is off; the message gives the counts and a
            few keys of each kind. The model then holds the entries that
            fit.
    """
    checkpoint = CheckpointLoader.load_checkpoint(
        filename, map_location=map_location, logger='silent')
    state_dict = extract_state_dict(checkpoint, f'checkpoint {filename}')
    match = load_state_dict_checked(model, state_dict)
    if not match.fits and not allow_partial:
        inner = model.module if is_model_wrapper(model) else model
        raise CheckpointMismatchError(
            f'checkpoint {filename} does not fit the model '
            f'({type(inner).__name__}): {match.describe()}\nWas it made for '
            'another model or config?')
    return match

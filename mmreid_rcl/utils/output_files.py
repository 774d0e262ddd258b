"""The rule every tool that writes files follows: never replace an existing
file unless told to (``--overwrite``), and say so before any work."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]


def check_outputs(paths: Union[PathLike, Sequence[PathLike]],
                  overwrite: bool = False,
                  hint: Optional[str] = None) -> List[str]:
    """Raise when a file to be written exists and ``overwrite`` is off.

    Call it before any work, with every file the run will write.

    Args:
        paths (str | Sequence[str]): The output file(s).
        overwrite (bool): Existing files may be replaced. Defaults to
            False.
        hint (str, optional): How to allow the replacement, ending the
            message. None: ``'pass --overwrite to replace it'`` (or
            ``them``), the flag of every tool. Defaults to None.

    Returns:
        list[str]: ``paths`` as strings.

    Raises:
        IsADirectoryError: An output is an existing folder (a file name is
            expected), whatever ``overwrite``.
        FileExistsError: Outputs exist and ``overwrite`` is off; the
            message names them all.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    folders = [p for p in paths if osp.isdir(p)]
    if folders:
        raise IsADirectoryError(
            f'output {" and ".join(folders)} is a folder; a file name is '
            'expected')
    existing = [p for p in paths if osp.lexists(p)]
    if existing and not overwrite:
        if len(existing) == 1:
            what = f'{existing[0]} already exists'
        else:
            what = (f'{len(existing)} outputs already exist: '
                    f'{", ".join(existing)}')
        if hint is None:
            hint = ('pass --overwrite to replace '
                    f'{"it" if len(existing) == 1 else "them"}')
        raise FileExistsError(f'{what}; {hint}')
    return paths

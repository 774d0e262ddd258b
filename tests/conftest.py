"""Shared fixtures: where the real data of ../shared lives."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(
    os.environ.get('MMREID_RCL_SHARED', REPO_ROOT.parent / 'shared'))


def _need(path: Path) -> Path:
    """Return ``path``; without it skip locally, fail under CI.

    CI always has ../shared beside the clone, so a missing folder there is
    a broken set-up and must not pass as a skip.
    """
    if not path.exists():
        message = f'{path} is missing (set MMREID_RCL_SHARED to ../shared)'
        if os.environ.get('CI'):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope='session')
def cuhk03_root() -> Path:
    return _need(SHARED_DIR / 'data' / 'cuhk03_labeled')


@pytest.fixture(scope='session')
def mobilenetv2_weights() -> Path:
    return _need(SHARED_DIR / 'weights' / 'mobilenetv2_imagenet.pt')

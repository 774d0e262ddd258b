import subprocess
import sys

import pytest

# Allocate and free a 64 MB buffer 20 times; print the minor page faults.
CODE = '''
import resource, sys
from mmreid_rcl.utils.malloc import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == 'keep' else False
import torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = torch.ones(16 * 2**20)
    del a
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(int(applied), after - before)
'''


def _run(mode, env_value=None):
    import os
    env = dict(os.environ)
    env.pop('MMREID_RCL_MALLOC', None)
    if env_value is not None:
        env['MMREID_RCL_MALLOC'] = env_value
    out = subprocess.run([sys.executable, '-c', CODE, mode], env=env,
                         capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == '1', int(faults)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_freed_memory_is_reused():
    applied, kept = _run('keep')
    assert applied
    _, default = _run('default')
    # 64 MB is 16k pages: the default maps and faults them in every time,
    # the kept heap only the first time.
    assert default > 10 * 16384
    assert kept < default / 5


def test_environment_opts_out():
    applied, _ = _run('keep', env_value='glibc')
    assert not applied

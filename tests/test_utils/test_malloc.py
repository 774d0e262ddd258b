import subprocess
import sys

import pytest

# Allocate and free a 64 MB buffer N times; print the minor page faults.
CODE = '''
import resource, sys
from mmreid_rcl.utils.malloc import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == 'keep' else False
import torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(int(sys.argv[2])):
    a = torch.ones(16 * 2**20)
    del a
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(int(applied), after - before)
'''
PAGES = 16384  # 64 MB in 4 kB pages


def _run(mode, env_value=None, loops=40):
    import os
    env = dict(os.environ)
    env.pop('MMREID_RCL_MALLOC', None)
    if env_value is not None:
        env['MMREID_RCL_MALLOC'] = env_value
    out = subprocess.run([sys.executable, '-c', CODE, mode, str(loops)],
                         env=env,
                         capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == '1', int(faults)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_freed_memory_is_reused():
    applied, kept = _run('keep')
    assert applied
    _, default = _run('default')
    # The default maps the buffer afresh and faults its pages in at every
    # one of the 40 loops; the kept heap faults them in a few times at most
    # (1 to 4 buffers' worth were seen, depending on where other
    # allocations land), however many loops run.
    assert default > 30 * PAGES
    assert kept < 6 * PAGES


def test_environment_opts_out():
    applied, _ = _run('keep', env_value='glibc')
    assert not applied

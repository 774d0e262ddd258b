"""What a result was measured on: the CPU model and its widest vector
instructions (float results can differ between AVX2 and AVX-512 kernels)."""
import platform
from typing import Dict


def _first_cpu(path: str) -> Dict[str, str]:
    """The fields of the first processor of a /proc/cpuinfo file."""
    fields = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                if fields:
                    break
                continue
            key, _, value = line.partition(':')
            fields[key.strip()] = value.strip()
    return fields


def cpu_description(cpuinfo: str = '/proc/cpuinfo') -> dict:
    """``cpu`` (the model name in ``cpuinfo``, else the platform's) and
    ``vector`` (``'avx512'``, ``'avx2'``, ``'other'``, or ``'unknown'``
    when ``cpuinfo`` cannot be read)."""
    try:
        fields = _first_cpu(cpuinfo)
    except OSError:
        fields = {}
    cpu = fields.get('model name') or platform.processor() or \
        platform.machine()
    if 'flags' not in fields:
        return dict(cpu=cpu, vector='unknown')
    flags = set(fields['flags'].split())
    vector = ('avx512' if 'avx512f' in flags else
              'avx2' if 'avx2' in flags else 'other')
    return dict(cpu=cpu, vector=vector)

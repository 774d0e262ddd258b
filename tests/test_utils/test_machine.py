"""The CPU a result was measured on."""
from mmreid_rcl.utils.machine import cpu_description

CPUINFO = """processor\t: 0
model name\t: {model}
flags\t\t: fpu sse2 {flags}

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu avx512f
"""


def _cpuinfo(tmp_path, model, flags):
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO.format(model=model, flags=flags))
    return str(path)


def test_cpu_description(tmp_path):
    for flags, vector in (('avx avx2 avx512f avx512bw', 'avx512'),
                          ('avx avx2', 'avx2'), ('sse4_2', 'other')):
        assert cpu_description(_cpuinfo(tmp_path, 'Toy CPU 9000',
                                        flags)) == dict(
                                            cpu='Toy CPU 9000',
                                            vector=vector)
    missing = cpu_description(str(tmp_path / 'missing'))
    assert missing['vector'] == 'unknown' and isinstance(missing['cpu'], str)
    # This machine's: a name and a known kind on Linux.
    here = cpu_description()
    assert here['cpu'] and here['vector'] in ('avx512', 'avx2', 'other',
                                              'unknown')

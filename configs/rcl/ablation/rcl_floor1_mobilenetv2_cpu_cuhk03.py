# Investigation: full RCL with a higher HPS floor. Only members whose
# attention weight is at least the set's average (1/n) may update the
# prototype (the default floor, 0.5/n, lets about 90 % of the members of a
# 4-member set through).
_base_ = ['../rcl_mobilenetv2_cpu_cuhk03.py']

model = dict(hps=dict(floor=1.0))

# Investigation: full RCL whose HPS update starts after 4 epochs of the
# mean update, so that the aggregator (trained by the SAA loss from the
# first step) has learnt for a third of the run before its attention picks
# the samples that move the prototypes. CSA initialisation throughout.
_base_ = ['../rcl_mobilenetv2_cpu_cuhk03.py']

model = dict(hps=dict(warmup_epochs=4))

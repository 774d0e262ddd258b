# Investigation: full RCL with 8-member sets (P x K = 8 x 8, still batch
# 64). The aggregator and HPS see twice as many members of each pseudo id;
# compare with baseline_k8_mobilenetv2_cpu_cuhk03.py (same sampler).
_base_ = ['../rcl_mobilenetv2_cpu_cuhk03.py']

train_dataloader = dict(sampler=dict(num_instances=8))

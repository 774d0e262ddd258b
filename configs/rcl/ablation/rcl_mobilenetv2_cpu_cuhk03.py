# Ablation: full RCL (CSA initialisation + SAA training + HPS update).
_base_ = ['../rcl_mobilenetv2_cpu_cuhk03.py']

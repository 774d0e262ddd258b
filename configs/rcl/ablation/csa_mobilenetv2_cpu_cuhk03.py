# Ablation: + CSA only (attention-aggregate initialisation, trained by the
# SAA loss; mean update).
_base_ = ['../rcl_mobilenetv2_cpu_cuhk03.py']

model = dict(hps=None)

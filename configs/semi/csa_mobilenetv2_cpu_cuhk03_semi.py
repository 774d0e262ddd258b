# Semi-supervised CUHK03, + CSA only: the attention-aggregate
# initialisation (trained by the SAA loss) with the mean update.
_base_ = ['./rcl_mobilenetv2_cpu_cuhk03_semi.py']

model = dict(hps=None)

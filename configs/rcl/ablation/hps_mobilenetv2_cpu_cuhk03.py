# Ablation: + HPS only (mean initialisation; the aggregator, trained by the
# SAA loss, picks the hard positive that updates each prototype).
_base_ = ['../rcl_mobilenetv2_cpu_cuhk03.py']

model = dict(csa=None)

# Semi-supervised CUHK03, + HPS only: mean initialisation; the aggregator,
# trained by the SAA loss, picks the sample that updates each prototype.
_base_ = ['./rcl_mobilenetv2_cpu_cuhk03_semi.py']

model = dict(csa=None)

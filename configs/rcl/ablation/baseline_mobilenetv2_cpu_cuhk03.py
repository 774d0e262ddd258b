# Ablation: plain cluster contrast (mean initialisation + mean update).
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03.py']

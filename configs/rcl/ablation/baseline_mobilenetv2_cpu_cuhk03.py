# Ablation: plain cluster contrast (mean initialisation + mean update).
# On the CPU recipe as it was until 2026-12-07 (the images and batches
# its recorded figures were measured with).
_base_ = ['../../cluster_contrast/cluster_contrast_mobilenetv2_cpu_cuhk03_previous.py']

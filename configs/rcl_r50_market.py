# RCL on Market-1501 with ResNet-50: the recipe of cluster contrast (256x128,
# 16 pseudo ids x 16 instances, Adam 3.5e-4, 50 epochs, step 20) plus CSA
# prototype initialisation, SAA training and HPS memory updates.
#   python tools/train.py configs/rcl_r50_market.py
#   tools/dist_train.sh configs/rcl_r50_market.py 4
_base_ = ['./rcl/rcl_r50_16x16_market.py']

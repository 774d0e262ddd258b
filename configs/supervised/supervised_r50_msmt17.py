# The supervised ResNet-50 baseline (see supervised_r50_market1501.py) on
# MSMT17_V1: list_train plus list_val, 1,041 train ids (layout='v2' for
# MSMT17_V2, 'market' for a copy in the Market-1501 layout).
_base_ = ['./supervised_r50_market1501.py']

dataset_type = 'MSMT17Dataset'
data_root = 'data/msmt17/'
msmt17 = dict(
    type=dataset_type, data_root=data_root, layout='v1', train_with_val=True)

model = dict(head=dict(num_classes=1041))
train_dataloader = dict(dataset=msmt17)
val_dataloader = dict(dataset=msmt17)
test_dataloader = val_dataloader

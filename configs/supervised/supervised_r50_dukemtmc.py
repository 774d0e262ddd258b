# The supervised ResNet-50 baseline (see supervised_r50_market1501.py) on
# DukeMTMC-reID: 702 train ids.
_base_ = ['./supervised_r50_market1501.py']

dataset_type = 'DukeMTMCDataset'
data_root = 'data/dukemtmc/'

model = dict(head=dict(num_classes=702))
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

# DukeMTMC-reID in the Market-1501 layout: bounding_box_train/, query/,
# bounding_box_test/ under data_root (symlink it to data/dukemtmc).
_base_ = ['./reid_loaders.py']

dataset_type = 'DukeMTMCDataset'
data_root = 'data/dukemtmc/'

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
cluster_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

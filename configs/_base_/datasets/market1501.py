# Market-1501 in its released layout: bounding_box_train/, query/,
# bounding_box_test/ under data_root (symlink it to data/market1501).
_base_ = ['./reid_loaders.py']

dataset_type = 'Market1501Dataset'
data_root = 'data/market1501/'

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
cluster_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

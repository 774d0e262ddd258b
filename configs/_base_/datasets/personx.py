# PersonX in the Market-1501 layout: bounding_box_train/, query/,
# bounding_box_test/ under data_root (symlink it to data/personx). Its
# non-contiguous camera numbers are mapped to 0..5 by the dataset.
_base_ = ['./reid_loaders.py']

dataset_type = 'PersonXDataset'
data_root = 'data/personx/'

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
cluster_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

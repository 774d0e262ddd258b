# VeRi-776 (vehicles): image_train/, image_query/, image_test/ under
# data_root (symlink it to data/veri776).
_base_ = ['./reid_loaders.py']

dataset_type = 'VeRi776Dataset'
data_root = 'data/veri776/'

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
cluster_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

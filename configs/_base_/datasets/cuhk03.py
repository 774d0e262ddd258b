# CUHK03 ("labeled" boxes) re-packed in the Market-1501 layout:
# bounding_box_train/, query/, bounding_box_test/ under data_root. For the
# copy shipped beside the project:
#   ln -s ../../shared/data/cuhk03_labeled data/cuhk03_labeled
_base_ = ['./reid_loaders.py']

dataset_type = 'CUHK03Dataset'
data_root = 'data/cuhk03_labeled/'

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
cluster_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

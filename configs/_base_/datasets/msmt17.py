# MSMT17_V1 as released: train/, test/ and list_{train,val,query,gallery}.txt
# under data_root (symlink it to data/msmt17). Set layout='v2' for
# MSMT17_V2 (mask_train_v2/, mask_test_v2/) or layout='market' for a copy
# re-packed in the Market-1501 layout. The train split is list_train plus
# list_val; train_with_val=False keeps list_train only.
_base_ = ['./reid_loaders.py']

dataset_type = 'MSMT17Dataset'
data_root = 'data/msmt17/'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        layout='v1',
        train_with_val=True))
cluster_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        layout='v1',
        train_with_val=True))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        layout='v1',
        train_with_val=True))
test_dataloader = val_dataloader

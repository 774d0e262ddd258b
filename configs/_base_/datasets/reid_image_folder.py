# Any re-ID data set with one folder of images per split and the person id
# and camera in the file names. Edit split_dirs, the name pattern (named
# groups pid and camid, or two groups in that order; the one below matches
# whole Market-style names such as 0002_c1s1_000451_03.jpg, so a copy
# "0002_c1s1_000451_03 (1).jpg" is an error) and camera_offset (1 when names
# count cameras from 1).
_base_ = ['./reid_loaders.py']

dataset_type = 'ReIDImageFolder'
data_root = 'data/reid_folder/'
split_dirs = dict(
    train='bounding_box_train', query='query', gallery='bounding_box_test')
name_pattern = (r'^(?P<pid>-1|\d+)_c(?P<camid>\d+)(?:s\d+)?'
                r'(?:_[A-Za-z]*\d+)*\.\w+$')
camera_offset = 1

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split_dirs=split_dirs,
        pattern=name_pattern,
        camera_offset=camera_offset))
cluster_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split_dirs=split_dirs,
        pattern=name_pattern,
        camera_offset=camera_offset))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split_dirs=split_dirs,
        pattern=name_pattern,
        camera_offset=camera_offset))
test_dataloader = val_dataloader

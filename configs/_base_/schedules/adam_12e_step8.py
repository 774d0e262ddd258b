# Short CPU schedule: 12 epochs, lr x0.1 after epoch 8.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=5e-4))
param_scheduler = [
    dict(type='StepLR', by_epoch=True, step_size=8, gamma=0.1)
]
train_cfg = dict(type='ReIDTrainLoop', max_epochs=12, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

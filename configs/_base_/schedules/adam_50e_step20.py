# The published cluster-contrast recipe: Adam 3.5e-4, weight decay 5e-4,
# 50 epochs, lr x0.1 every 20 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=5e-4))
param_scheduler = [
    dict(type='StepLR', by_epoch=True, step_size=20, gamma=0.1)
]
train_cfg = dict(type='ReIDTrainLoop', max_epochs=50, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

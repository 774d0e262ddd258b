"""tools/analysis/probe_set_objective.py: features -> clusters -> probe."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from tool_utils import load_tool

_spec = importlib.util.spec_from_file_location(
    'probe_data',
    Path(__file__).resolve().parents[1] / 'test_apis' /
    'test_aggregator_probe.py')
_probe_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_probe_data)


def test_tool(tmp_path, capsys):
    tool = load_tool('analysis/probe_set_objective.py')
    feats, labels, true_ids, cams = _probe_data._features()
    npz = tmp_path / 'f.npz'
    np.savez(npz, features=feats.numpy(), pids=true_ids, camids=cams,
             filenames=np.array([f'{i}.jpg' for i in range(len(cams))]))
    gen = tmp_path / 'gen.py'
    Config(dict(custom_hooks=[dict(
        type='ReClusterHook',
        label_generator=dict(type='DBSCANLabelGenerator', eps=0.5,
                             min_samples=3, k1=10, k2=3,
                             knn='exact'))])).dump(str(gen))
    rcl = tmp_path / 'rcl.py'
    Config(dict(model=dict(
        type='RCL',
        aggregator=dict(type='SimilarityAttentionAggregator', embed_dims=32),
        set_losses=[dict(type='ConsensusAggregateLoss')],
        hps=dict(floor=0.5)))).dump(str(rcl))
    out = tmp_path / 'out.json'
    args = [str(npz), '--generator-config', str(gen), '--rcl-configs',
            str(rcl), '--steps', '5', '--num-ids', '4', '--json', str(out)]
    tool.main(args)
    text = capsys.readouterr().out
    assert '| before |' in text and '| after |' in text
    saved = json.loads(out.read_text())
    assert saved['steps'] == 5 and str(rcl) in saved['results']
    # Options change every RCL config, list items by index.
    tool.main(args[:-2] +
              ['--cfg-options', 'model.set_losses.0.target=medoid'])
    assert 'medoid' not in capsys.readouterr().err
    with pytest.raises(SystemExit, match='target must be'):
        tool.main(args[:-2] + ['--cfg-options',
                               'model.set_losses.0.target=nope'])
    with pytest.raises(SystemExit, match='already exists'):
        tool.main(args)
    not_rcl = tmp_path / 'plain.py'
    Config(dict(model=dict(type='UnsupervisedReID'))).dump(str(not_rcl))
    with pytest.raises(SystemExit, match='not an RCL config'):
        tool.main(args[:4] + [str(not_rcl)])
    with pytest.raises(SystemExit, match='has no ReClusterHook'):
        tool.main([str(npz), '--generator-config', str(rcl),
                   '--rcl-configs', str(rcl)])
    # A feature file that is not one, or lacks the ids, is named.
    corrupt = tmp_path / 'corrupt.npz'
    corrupt.write_text('junk')
    with pytest.raises(SystemExit, match="corrupt.npz' cannot be read"):
        tool.main([str(corrupt)] + args[1:5])
    no_ids = tmp_path / 'no_ids.npz'
    np.savez(no_ids, features=feats.numpy(),
             filenames=np.array([f'{i}.jpg' for i in range(len(cams))]))
    with pytest.raises(SystemExit, match=r"holds no \['pids', 'camids'\]"):
        tool.main([str(no_ids)] + args[1:5])

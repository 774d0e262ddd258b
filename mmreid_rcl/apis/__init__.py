from mmreid_rcl.evaluation.functional import (average_precision_per_query,
                                              protocol_exclusion,
                                              rank_distances)
from .aggregator_probe import probe_set_objective, split_clusters
from .dataset_features import (build_checked_model, build_cluster_dataloader,
                               extract_dataset_features)
from .feature_io import (check_feature_output, feature_output_paths,
                         load_features, save_features)
from .inferencer import (ReIDInferencer, load_split_samples,
                         resolve_image_inputs)
from .onnx_export import export_onnx, read_onnx_metadata
from .onnx_inferencer import (ONNXReIDInferencer, build_inferencer,
                              resolve_backend)
from .retrieval import rank_gallery

__all__ = [
    'ReIDInferencer', 'resolve_image_inputs', 'load_split_samples',
    'rank_gallery', 'rank_distances', 'protocol_exclusion',
    'average_precision_per_query', 'save_features', 'load_features',
    'feature_output_paths', 'check_feature_output', 'ONNXReIDInferencer',
    'build_inferencer', 'resolve_backend', 'export_onnx',
    'read_onnx_metadata', 'extract_dataset_features', 'build_checked_model',
    'build_cluster_dataloader', 'probe_set_objective', 'split_clusters'
]

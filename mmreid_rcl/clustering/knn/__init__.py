"""k-nearest-neighbour search by inner product.

The k-reciprocal Jaccard distance needs, for every sample, its ``k1``
nearest neighbours (itself included) among L2-normalised features. Each
search is a searcher registered in
:data:`~mmreid_rcl.registry.KNN_SEARCHERS` and configured by name or dict
(:func:`build_knn`). The exact searches are brute force (``'exact'``,
:class:`ExactKnn`) and ``'pca'`` (:class:`PCAKnn`), a search on principal
axes verified row by row, several times faster than brute force on
features whose bound proves most rows and slower on others; the default,
``'auto'`` (:class:`AutoKnn`), proves a sample of rows to choose the
faster of the two. ``'pynndescent'`` (:class:`PyNNDescentKnn`) and
``'nndescent'`` (:class:`NNDescentKnn`) build the kNN graph of all
samples by NN-descent (pynndescent's from random projection trees,
faiss' from random samples), ``'hnsw'`` (:class:`HNSWKnn`) and
``'ivf'`` (:class:`IVFKnn`) are approximate, for sizes where even that
is too slow. :func:`camera_aware_knn` ranks images of the same camera
behind the others. In a distributed run, :func:`sharded_knn_search` and
:func:`sharded_camera_aware_knn` split the query rows among the ranks.
"""
from .auto_knn import AutoKnn, pca_cost_share
from .base_knn import DEFAULT_BLOCK_SIZE, BaseKnn, KnnConfig
from .camera_aware import camera_aware_knn
from .exact_knn import ExactKnn
from .graph_knn import GraphKnn
from .hnsw_knn import HNSWKnn
from .index_knn import IndexKnn
from .inner_products import pair_inner_products
from .ivf_knn import IVFKnn
from .nndescent_knn import NNDescentKnn
from .pca_knn import PCAKnn, pca_pays_off
from .pynndescent_knn import PyNNDescentKnn
from .search import DEFAULT_KNN, build_knn, knn_search
from .sharded import (gather_shards, shard_rows, sharded_camera_aware_knn,
                      sharded_knn_search)

__all__ = [
    'DEFAULT_BLOCK_SIZE', 'DEFAULT_KNN', 'AutoKnn', 'BaseKnn', 'ExactKnn',
    'GraphKnn', 'HNSWKnn', 'IVFKnn', 'IndexKnn', 'KnnConfig', 'NNDescentKnn',
    'PCAKnn', 'PyNNDescentKnn',
    'build_knn', 'camera_aware_knn', 'gather_shards', 'knn_search',
    'pair_inner_products', 'pca_cost_share', 'pca_pays_off', 'shard_rows',
    'sharded_camera_aware_knn', 'sharded_knn_search'
]

"""How well per-member weights of cluster sets mark mislabelled members.

A clustered sample is an *impostor* when its true identity is not the most
common true identity of its cluster (true ids are read for this diagnostic
only, never for training). Given sets of K members drawn from clusters and
a weight per member (an aggregator's, or a reference computed from the
members' similarities), these functions measure how well the weights tell
impostors from genuine members and how often each memory-update rule would
move a prototype with an impostor. ``tools/analysis/hps_diagnostics.py``
applies them to a trained model.
"""
from typing import Dict, Optional

import numpy as np
import torch

__all__ = [
    'impostor_flags', 'draw_sets', 'roc_auc', 'impostor_auc',
    'within_set_auc', 'single_impostor_lowest', 'normalised_entropy',
    'mean_mutual_similarity', 'similarity_weights',
    'mutual_similarity_weights', 'pick_rates', 'rule_picks', 'set_loss',
    'impostor_report', 'other_camera_flags', 'distrust_report'
]


def impostor_flags(labels: np.ndarray, true_ids: np.ndarray) -> np.ndarray:
    """Whether each clustered sample's true id differs from its cluster's
    most common true id (the smallest id on ties); False for outliers.

    Args:
        labels (ndarray): (N, ) pseudo labels, -1 for outliers.
        true_ids (ndarray): (N, ) true identities.

    Returns:
        ndarray: (N, ) bool.
    """
    labels = np.asarray(labels)
    true_ids = np.asarray(true_ids)
    if labels.shape != true_ids.shape or labels.ndim != 1:
        raise ValueError('impostor_flags: expected labels and true_ids of '
                         f'the same (N, ) shape, got {labels.shape} and '
                         f'{true_ids.shape}')
    flags = np.zeros(len(labels), dtype=bool)
    keep = labels >= 0
    if not keep.any():
        return flags
    _, tid = np.unique(true_ids[keep], return_inverse=True)
    _, lab = np.unique(labels[keep], return_inverse=True)
    counts = np.zeros((lab.max() + 1, tid.max() + 1), dtype=np.int64)
    np.add.at(counts, (lab, tid), 1)
    majority = counts.argmax(1)  # argmax picks the smallest id on ties
    flags[keep] = tid != majority[lab]
    return flags


def draw_sets(labels: np.ndarray, k: int, sets_per_cluster: int,
              seed: int) -> np.ndarray:
    """Random k-member sets of each cluster with at least k members, as
    the identity sampler draws them in training.

    Args:
        labels (ndarray): (N, ) pseudo labels, -1 for outliers.
        k (int): members per set.
        sets_per_cluster (int): sets drawn from each cluster.
        seed (int): seed of the generator.

    Returns:
        ndarray: (S, k) sample indices, the sets of one cluster together,
        clusters in increasing label order.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    sets = []
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            continue
        for _ in range(sets_per_cluster):
            sets.append(rng.choice(members, size=k, replace=False))
    if not sets:
        raise ValueError(f'draw_sets: no cluster has at least {k} members')
    return np.stack(sets)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative
    (ties count half): the ROC AUC, by ranks. NaN without positives or
    without negatives."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(positive, dtype=bool).ravel()
    num_pos, num_neg = positive.sum(), (~positive).sum()
    if num_pos == 0 or num_neg == 0:
        return float('nan')
    order = np.argsort(scores, kind='mergesort')
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(
        sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - num_pos * (num_pos + 1) / 2) /
                 (num_pos * num_neg))


def impostor_auc(weights: np.ndarray, impostor: np.ndarray) -> float:
    """ROC AUC of the weights of all members of all sets, genuine members
    as positives: 1 when every genuine member outweighs every impostor,
    0.5 when the weights do not see impostors.

    Args:
        weights (ndarray): (S, K) per-member weights (or scores).
        impostor (ndarray): (S, K) bool.
    """
    return roc_auc(weights, ~np.asarray(impostor, dtype=bool))


def within_set_auc(weights: np.ndarray, impostor: np.ndarray) -> float:
    """Like :func:`impostor_auc`, but only genuine and impostor members
    of the SAME set are compared (ties count half): what a rule that
    ranks the members of one set can use. NaN when no set holds both.

    Args:
        weights (ndarray): (S, K) per-member weights.
        impostor (ndarray): (S, K) bool.
    """
    w = np.asarray(weights, dtype=np.float64)
    imp = np.asarray(impostor, dtype=bool)
    # (S, K genuine, K impostor) comparisons.
    diff = w[:, :, None] - w[:, None, :]
    pairs = ~imp[:, :, None] & imp[:, None, :]
    num = pairs.sum()
    if num == 0:
        return float('nan')
    wins = (diff > 0) + 0.5 * (diff == 0)
    return float((wins * pairs).sum() / num)


def single_impostor_lowest(weights: np.ndarray,
                           impostor: np.ndarray) -> float:
    """In the sets with exactly one impostor, the share where the impostor
    has the lowest weight (a tie at the lowest weight counts 1/ties).
    NaN when no set has exactly one impostor.

    Args:
        weights (ndarray): (S, K) per-member weights.
        impostor (ndarray): (S, K) bool.
    """
    w = np.asarray(weights, dtype=np.float64)
    imp = np.asarray(impostor, dtype=bool)
    one = imp.sum(1) == 1
    if not one.any():
        return float('nan')
    w, imp = w[one], imp[one]
    lowest = w == w.min(1, keepdims=True)
    credit = (lowest & imp).sum(1) / lowest.sum(1)
    return float(credit.mean())


def normalised_entropy(weights: np.ndarray) -> float:
    """Mean over sets of ``H(w) / log K``: 1 for uniform weights."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-12, 1.0)
    return float((-(w * np.log(w)).sum(1) / np.log(w.shape[1])).mean())


def mean_mutual_similarity(x: np.ndarray) -> np.ndarray:
    """(S, K, D) sets of K >= 2 features -> (S, K) mean cosine of each
    member to the other members of its set (features L2-normalised)."""
    k = x.shape[1]
    if k < 2:
        raise ValueError('mean_mutual_similarity: sets need at least 2 '
                         f'members, got K={k}')
    sims = np.einsum('skd,sjd->skj', x, x)
    return (sims.sum(2) - np.einsum('skk->sk', sims)) / (k - 1)


def similarity_weights(x: np.ndarray, temperature: float) -> np.ndarray:
    """Reference weights from the members' similarities alone: received
    attention.

    Each member spreads one unit of attention over the OTHER members of
    its set by a softmax of cosine similarity / temperature; a member's
    weight is what it receives, normalised to sum 1 per set.

    Args:
        x (ndarray): (S, K, D) sets of K >= 2 L2-normalised features.
        temperature (float): softmax temperature.

    Returns:
        ndarray: (S, K) weights.
    """
    k = x.shape[1]
    scores = np.einsum('skd,sjd->skj', x, x) / temperature
    scores[:, np.arange(k), np.arange(k)] = -np.inf
    scores -= scores.max(2, keepdims=True)
    attn = np.exp(scores)
    attn /= attn.sum(2, keepdims=True)
    received = attn.sum(1)
    return received / received.sum(1, keepdims=True)


def mutual_similarity_weights(x: np.ndarray,
                              temperature: float) -> np.ndarray:
    """Reference weights ``softmax(mean_sim / T)`` over each set, with
    ``mean_sim`` the mean cosine of a member to the other members: what
    an untrained ``SimilarityAttentionAggregator`` gives.

    Args:
        x (ndarray): (S, K, D) sets of K >= 2 L2-normalised features.
        temperature (float): softmax temperature.

    Returns:
        ndarray: (S, K) weights.
    """
    logits = mean_mutual_similarity(x) / temperature
    logits -= logits.max(1, keepdims=True)
    w = np.exp(logits)
    return w / w.sum(1, keepdims=True)


def _set_picks(score: np.ndarray, largest: bool) -> np.ndarray:
    """(S, K) scores -> (S, ) the member each set's rule picks, by the
    memory update's own pick logic (ties to the first member)."""
    from mmreid_rcl.models.memories import pick_per_prototype
    num_sets, k = score.shape
    labels = torch.arange(num_sets).repeat_interleave(k)
    _, picks, _ = pick_per_prototype(
        torch.as_tensor(np.ascontiguousarray(score),
                        dtype=torch.float64).reshape(-1),
        labels,
        largest=largest)
    return picks.numpy() - np.arange(num_sets) * k


def pick_rates(weights: np.ndarray,
               dispersion: np.ndarray,
               proto_sims: np.ndarray,
               impostor: np.ndarray,
               floor: float,
               mutual: Optional[np.ndarray] = None,
               trusted: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Share of sets whose picked member is an impostor, per update rule
    (or whose pick carries any other per-member flag passed as
    ``impostor``, e.g. a genuine member from another camera).

    The picks go through the memory update's own selection
    (``pick_per_prototype`` of ``memory_update.py``) with each rule's
    score: ``hard`` the smallest similarity to the prototype
    (``HardMemoryUpdate``), ``hps`` the largest dispersion among members
    with ``weight >= floor`` (RCL's ``hard_positive_picks``), ``central`` the
    largest mean similarity to the other members
    (``CentralMemoryUpdate``). :func:`rule_picks` runs the rules
    themselves, to check these scores against them.

    Args:
        weights (ndarray): (S, K) attention weights of S sets of K members.
        dispersion (ndarray): (S, K) ``1 - cos(Z_i, p)``.
        proto_sims (ndarray): (S, K) cosine of each member to its prototype.
        impostor (ndarray): (S, K) bool.
        floor (float): HPS keeps members with ``weight >= floor``.
        mutual (ndarray, optional): (S, K) mean cosine of each member to
            the other members of its set; adds the ``central`` rate.
        trusted (ndarray, optional): (S, K) bool, the members HPS may
            pick at all (RCL's ``hps.distrust``,
            :func:`~mmreid_rcl.models.memories.cluster_trust`); None: all.

    Returns:
        dict: rates for ``any`` (every member moves the prototype: the
        share of impostors), ``hard``, ``hps`` (sets without a member at
        or above the floor move nothing and are left out; NaN when none
        has one), ``most_attended``, ``central`` (with ``mutual``) and
        ``hps_eligible`` (the share of members at or above the floor, and
        trusted).
    """
    weights = np.asarray(weights)
    impostor = np.asarray(impostor, dtype=bool)
    rows = np.arange(len(weights))
    eligible = weights >= floor
    if trusted is not None:
        eligible &= np.asarray(trusted, dtype=bool)
    has = eligible.any(1)
    hps = _set_picks(np.where(eligible, dispersion, -np.inf), largest=True)
    hard = _set_picks(np.asarray(proto_sims), largest=False)
    rates = dict(
        any=float(impostor.mean()),
        hard=float(impostor[rows, hard].mean()),
        hps=float(impostor[rows[has], hps[has]].mean())
        if has.any() else float('nan'),
        most_attended=float(
            impostor[rows, _set_picks(weights, largest=True)].mean()),
        hps_eligible=float(eligible.mean()))
    if mutual is not None:
        central = _set_picks(np.asarray(mutual), largest=True)
        rates['central'] = float(impostor[rows, central].mean())
    return rates


@torch.no_grad()
def rule_picks(rule, x: torch.Tensor, prototypes: torch.Tensor,
               chunk: int = 256) -> np.ndarray:
    """The member of each set that a memory-update rule moves its
    prototype with, found by running the rule itself.

    Each set is one prototype. The rule runs with momentum 0, so the
    updated prototype IS its pick, normalised; the pick is the member
    most similar to it. Rules that move a prototype with several members
    (the mean update) have no single pick and give meaningless answers.

    Args:
        rule (callable): a memory update rule, e.g.
            ``HardMemoryUpdate()``.
        x (Tensor): (S, K, D) L2-normalised member features.
        prototypes (Tensor): (S, D) each set's prototype.
        chunk (int): sets per call of the rule (some rules compare all
            samples of a call with each other).

    Returns:
        ndarray: (S, ) the index in its set of each set's pick.
    """
    num_sets, k, _ = x.shape
    picks = []
    for start in range(0, num_sets, chunk):
        stop = min(num_sets, start + chunk)
        feats = x[start:stop]
        labels = torch.arange(
            stop - start, device=x.device).repeat_interleave(k)
        moved = rule(prototypes[start:stop].clone(),
                     feats.reshape(-1, x.size(2)), labels, 0.0)
        picks.append((feats * moved[:, None]).sum(-1).argmax(1))
    return torch.cat(picks).cpu().numpy()


def set_loss(memory, aggregates: np.ndarray, targets: np.ndarray) -> float:
    """The SAA loss of sets, for any way of aggregating them: the mean
    cross-entropy of the memory's logits of each aggregate at its set's
    cluster.

    Args:
        memory (ClusterMemory): the trained model's memory.
        aggregates (ndarray): (S, D) normalised set aggregates.
        targets (ndarray): (S, ) each set's cluster.
    """
    device = memory.prototypes.device
    logits = memory.logits(
        torch.as_tensor(
            aggregates, dtype=memory.prototypes.dtype, device=device))
    return float(
        torch.nn.functional.cross_entropy(
            logits, torch.as_tensor(targets, device=device)))


def _run_sets(aggregator, x: torch.Tensor,
              chunk: int) -> Dict[str, torch.Tensor]:
    """The aggregator's float32 CPU outputs for sets (S, k, D), ``chunk``
    sets a call, in evaluation mode (restored after)."""
    from mmreid_rcl.models.utils import module_device
    device = module_device(aggregator, x.device)
    was_training = aggregator.training
    aggregator.eval()
    try:
        parts = [
            aggregator(x[i:i + chunk].to(device))
            for i in range(0, len(x), chunk)
        ]
    finally:
        aggregator.train(was_training)
    return {
        key: torch.cat([p[key].float().cpu() for p in parts])
        for key in ('weights', 'refined', 'aggregate')
    }


def _set_prototypes(features: torch.Tensor, labels: np.ndarray,
                    prototypes: Optional[torch.Tensor]) -> torch.Tensor:
    """The given prototypes (float32, CPU) or the normalised means of the
    clusters of ``labels``."""
    if prototypes is not None:
        return prototypes.float().cpu()
    keep = labels >= 0
    sums = torch.zeros(int(labels.max()) + 1, features.size(1))
    sums.index_add_(0, torch.as_tensor(labels[keep]),
                    features[torch.as_tensor(keep)])
    return torch.nn.functional.normalize(sums, dim=1)


@torch.no_grad()
def impostor_report(aggregator,
                    features: torch.Tensor,
                    labels: np.ndarray,
                    true_ids: np.ndarray,
                    floor_ratio: float,
                    prototypes: Optional[torch.Tensor] = None,
                    k: int = 4,
                    sets_per_cluster: int = 20,
                    seed: int = 0,
                    temperature: float = 0.1,
                    chunk: int = 1024,
                    distrust: float = 0.0,
                    cameras: Optional[torch.Tensor] = None
                    ) -> Dict[str, float]:
    """How well an aggregator's weights mark the impostors of a clustering,
    and how often each update rule would pick one.

    Sets of ``k`` members are drawn from every cluster of at least ``k``
    (:func:`draw_sets`, as the identity sampler draws them) and run
    through the aggregator in evaluation mode (dropout off).

    Args:
        aggregator (nn.Module): returns ``weights`` (S, k), ``refined``
            (S, k, D) and ``aggregate`` (S, D) for sets (S, k, D).
        features (Tensor): (N, D) L2-normalised features of the clustered
            split.
        labels (ndarray): (N, ) pseudo labels, -1 for outliers.
        true_ids (ndarray): (N, ) true identities (diagnostic only).
        floor_ratio (float): HPS trusts members whose weight is at least
            ``floor_ratio / k``.
        prototypes (Tensor, optional): (C, D) the memory's prototypes of
            ``labels`` (for the ``hard`` rule); None: the normalised
            cluster means.
        k (int): members per set. Defaults to 4.
        sets_per_cluster (int): sets per cluster. Defaults to 20.
        seed (int): seed of the draw. Defaults to 0.
        temperature (float): temperature of the similarity reference.
        chunk (int): sets per aggregator call.
        distrust (float): HPS never picks this share of the clustered
            images, those least similar to their prototype
            (:func:`~mmreid_rcl.models.memories.cluster_trust` against
            ``prototypes``, or per camera with ``cameras``). Defaults
            to 0.
        cameras (Tensor, optional): (N, ) camera of every image, for
            ``distrust`` per camera (RCL's ``hps.trust_by='camera'``).

    Returns:
        dict: ``attention_auc`` (:func:`impostor_auc` of the weights),
        ``similarity_auc`` (the same for the similarity reference,
        :func:`mutual_similarity_weights`), ``similarity_score_auc`` (the
        same for the members' mean cosine to the others itself, not
        normalised per set: what weights that keep the absolute level of
        the similarities can reach), ``single_impostor_lowest`` and
        ``similarity_single_impostor_lowest``
        (:func:`single_impostor_lowest`), the impostor pick rates
        ``pick_any``, ``pick_hard``, ``pick_hps``, ``pick_central`` and
        ``hps_eligible`` (:func:`pick_rates`), and ``impostor_share``
        among the drawn members. Empty when no cluster has ``k`` members.
    """
    labels = np.asarray(labels)
    true_ids = np.asarray(true_ids)
    features = torch.as_tensor(features).float()
    if features.dim() != 2 or features.size(0) != len(labels):
        raise ValueError(
            f'impostor_report: expected (N, D) features for the {len(labels)}'
            f' labels, got shape {tuple(features.shape)}')
    impostor = impostor_flags(labels, true_ids)
    try:
        sets = draw_sets(labels, k, sets_per_cluster, seed)
    except ValueError:
        return {}
    x = features[torch.as_tensor(sets)]
    out = _run_sets(aggregator, x, chunk)
    refined = torch.nn.functional.normalize(out['refined'], dim=-1)
    dispersion = 1 - (refined * out['aggregate'][:, None]).sum(-1)
    all_protos = _set_prototypes(features, labels, prototypes)
    protos = all_protos[torch.as_tensor(labels[sets[:, 0]])]
    proto_sims = (x * protos[:, None]).sum(-1).numpy()
    trusted = None
    if distrust > 0:
        from mmreid_rcl.models.memories import cluster_trust
        trusted = cluster_trust(
            features, torch.as_tensor(labels), all_protos, distrust,
            cameras=None if cameras is None else torch.as_tensor(cameras)
        ).numpy()[sets]
    return _report_figures(out['weights'].numpy(), dispersion.numpy(),
                           proto_sims, impostor[sets], x.numpy(),
                           floor_ratio / k, temperature, trusted)


def _report_figures(weights: np.ndarray, dispersion: np.ndarray,
                    proto_sims: np.ndarray, imp: np.ndarray, xs: np.ndarray,
                    floor: float, temperature: float,
                    trusted: Optional[np.ndarray] = None) -> Dict[str, float]:
    """The figures of :func:`impostor_report` from the (S, K) weights,
    dispersions, similarities to the prototype and impostor flags of the
    drawn sets, their (S, K, D) features and, optionally, which members
    HPS may pick."""
    mutual = mean_mutual_similarity(xs)
    rates = pick_rates(weights, dispersion, proto_sims, imp, floor, mutual,
                       trusted)
    reference = mutual_similarity_weights(xs, temperature)
    return dict(
        attention_auc=impostor_auc(weights, imp),
        similarity_auc=impostor_auc(reference, imp),
        similarity_score_auc=impostor_auc(mutual, imp),
        single_impostor_lowest=single_impostor_lowest(weights, imp),
        similarity_single_impostor_lowest=single_impostor_lowest(
            reference, imp),
        pick_any=rates['any'],
        pick_hard=rates['hard'],
        pick_hps=rates['hps'],
        pick_central=rates['central'],
        hps_eligible=rates['hps_eligible'],
        impostor_share=float(imp.mean()))


def other_camera_flags(labels: np.ndarray,
                       cameras: np.ndarray) -> np.ndarray:
    """Whether each clustered sample's camera differs from its cluster's
    most common camera (the smallest on ties); False for outliers.

    Args:
        labels (ndarray): (N, ) pseudo labels, -1 for outliers.
        cameras (ndarray): (N, ) camera ids.
    """
    # The same majority vote as impostor_flags, over cameras.
    return impostor_flags(labels, cameras)


def distrust_report(features: torch.Tensor, labels: np.ndarray,
                    true_ids: np.ndarray, cameras: np.ndarray,
                    prototypes: torch.Tensor,
                    distrust: float) -> Dict[str, Dict[str, float]]:
    """What RCL's ``hps.distrust`` takes from HPS, judged by the prototype
    and per camera (:func:`~mmreid_rcl.models.memories.cluster_trust`).

    Args:
        features (Tensor): (N, D) L2-normalised features.
        labels (ndarray): (N, ) pseudo labels, -1 for outliers.
        true_ids (ndarray): (N, ) true identities (diagnostic only).
        cameras (ndarray): (N, ) camera ids.
        prototypes (Tensor): (C, D) the clusters' prototypes.
        distrust (float): the share of the clustered images distrusted.

    Returns:
        dict: for ``cluster`` and ``camera``: ``impostors_caught`` (the
        share of the clustered impostors distrusted), ``impostor_share``
        among the distrusted, ``other_camera_share`` among the distrusted
        and ``genuine_other_camera_lost`` (the share of the genuine members
        seen from another camera than most of their cluster's, the
        cross-camera views, that are distrusted).
    """
    from mmreid_rcl.models.memories import cluster_trust
    labels = np.asarray(labels)
    impostor = impostor_flags(labels, np.asarray(true_ids))
    other = other_camera_flags(labels, np.asarray(cameras))
    clustered = labels >= 0
    genuine_other = clustered & other & ~impostor

    def share(part, whole):
        return float(part.sum() / whole.sum()) if whole.any() else \
            float('nan')

    report = {}
    for name, cams in (('cluster', None),
                       ('camera', torch.as_tensor(np.asarray(cameras)))):
        trusted = cluster_trust(
            torch.as_tensor(features).float(), torch.as_tensor(labels),
            prototypes.float(), distrust, cameras=cams).cpu().numpy()
        dropped = clustered & ~trusted
        report[name] = dict(
            impostors_caught=share(dropped & impostor, clustered & impostor),
            impostor_share=share(dropped & impostor, dropped),
            other_camera_share=share(dropped & other, dropped),
            genuine_other_camera_lost=share(dropped & genuine_other,
                                            genuine_other))
    return report

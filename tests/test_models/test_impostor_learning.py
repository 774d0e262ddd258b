"""Can an aggregator learn to mark impostors? A seeded synthetic check.

The sets are built like real re-ID features: a large component shared by
every image (0.8 of the norm), a small identity component, a camera
component shared across identities (a nuisance a learned similarity can
discount) and noise. Identities come in families of four similar ones;
the impostor of a held-out 4-member set is an image of the NEAREST
identity, as clustering lets them in.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mmreid_rcl.evaluation.functional import (impostor_auc,
                                              mutual_similarity_weights,
                                              similarity_weights)
from mmreid_rcl.models.losses import PlantedImpostorLoss
from mmreid_rcl.models.memories import ClusterMemory
from mmreid_rcl.models.necks import (ClusterAttentionAggregator,
                                     SimilarityAttentionAggregator)

DIM = 64
FAMILIES, PER_FAMILY, CAMERAS = 40, 4, 4
TRAIN_IDS = torch.arange(120)
TEST_IDS = torch.arange(120, 160)
STEPS = 300


class World:
    """Identities, cameras and a sampler of their images."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        g = self.g
        self.shared = F.normalize(torch.randn(DIM, generator=g), dim=0)
        centres = F.normalize(
            torch.randn(FAMILIES, 1, DIM, generator=g), dim=-1)
        offsets = F.normalize(
            torch.randn(FAMILIES, PER_FAMILY, DIM, generator=g), dim=-1)
        self.ids = F.normalize(centres + 0.7 * offsets, dim=-1).reshape(
            -1, DIM) * 0.3
        self.cams = F.normalize(
            torch.randn(CAMERAS, DIM, generator=g), dim=-1) * 0.35
        sims = self.ids @ self.ids.T
        sims.fill_diagonal_(-math.inf)
        self.nearest = sims.argmax(1)

    def images(self, ids):
        cams = torch.randint(CAMERAS, ids.shape, generator=self.g)
        noise = torch.randn(*ids.shape, DIM, generator=self.g)
        return F.normalize(
            0.8 * self.shared + self.ids[ids] + self.cams[cams] +
            noise * 0.45 / math.sqrt(DIM),
            dim=-1)

    def noisy_sets(self, pool, num_sets):
        """3 members of an identity and 1 of its nearest one, last."""
        ids = pool[torch.randint(len(pool), (num_sets, ), generator=self.g)]
        x = torch.cat([
            self.images(ids[:, None].expand(-1, 3)),
            self.images(self.nearest[ids][:, None])
        ], dim=1)
        impostor = torch.zeros(num_sets, 4, dtype=torch.bool)
        impostor[:, 3] = True
        return x, impostor, ids

    def clean_batch(self, families=4, k=4):
        """P x K batch (P = 4 families of 4 identities) of the train ids."""
        fam = torch.randperm(
            len(TRAIN_IDS) // PER_FAMILY, generator=self.g)[:families]
        ids = (fam[:, None] * PER_FAMILY + torch.arange(PER_FAMILY)).flatten()
        labels = ids.repeat_interleave(k)
        return self.images(labels), labels


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: threads only add overhead, badly so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _auc(agg, x, impostor):
    with torch.no_grad():
        weights = agg(x)['weights']
    return impostor_auc(weights.numpy(), impostor.numpy())


def test_attention_trained_on_the_set_loss_stays_at_chance():
    world = World(0)
    torch.manual_seed(0)
    agg = ClusterAttentionAggregator(DIM, num_heads=4)
    # Prototypes are running means of noisy clusters: 3 of 4 members of
    # the identity, 1 of its nearest one, impostors included.
    own = world.images(TRAIN_IDS[:, None].expand(-1, 30))
    imp = world.images(world.nearest[TRAIN_IDS][:, None].expand(-1, 10))
    protos = F.normalize(torch.cat([own, imp], 1).mean(1), dim=-1)
    optim = torch.optim.Adam(agg.parameters(), lr=1e-3)
    for _ in range(STEPS):
        x, _, ids = world.noisy_sets(TRAIN_IDS, 16)
        loss = F.cross_entropy(agg(x)['aggregate'] @ protos.T / 0.05, ids)
        optim.zero_grad()
        loss.backward()
        optim.step()
    x, impostor, _ = world.noisy_sets(TEST_IDS, 1000)
    assert _auc(agg, x, impostor) < 0.6


def test_similarity_aggregator_learns_planted_impostors_beyond_similarity():
    world = World(0)
    x, impostor, _ = world.noisy_sets(TEST_IDS, 1000)
    xs = x.double().numpy()
    reference = max(
        impostor_auc(similarity_weights(xs, 0.1), impostor.numpy()),
        impostor_auc(mutual_similarity_weights(xs, 0.1), impostor.numpy()))
    # The nearest identity is a real confusion for plain similarity.
    assert 0.55 < reference < 0.8
    torch.manual_seed(0)
    agg = SimilarityAttentionAggregator(DIM, rank=16, mlp_hidden=64)
    # Untrained, the weights are the mean-similarity reference.
    start = _auc(agg, x, impostor)
    assert abs(start - impostor_auc(
        mutual_similarity_weights(xs, 0.1), impostor.numpy())) < 1e-3
    memory = ClusterMemory(feat_dim=DIM)
    train_labels = TRAIN_IDS.repeat_interleave(8)
    memory.initialise(world.images(train_labels), train_labels)
    loss_fn = PlantedImpostorLoss()
    optim = torch.optim.Adam(agg.parameters(), lr=3e-3)
    plant = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        feats, labels = world.clean_batch()
        loss = loss_fn(agg, feats, labels, memory, generator=plant)
        optim.zero_grad()
        loss['loss_planted'].backward()
        optim.step()
    trained = _auc(agg, x, impostor)
    assert trained >= reference + 0.05, (start, reference, trained)

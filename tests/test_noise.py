"""Per-map training noise (app.noise) and the rank-sharded data order (EpochSampler): what makes a
DDP run draw the data and noise of a single-process run with the same global batch."""

from __future__ import annotations

import pytest
import torch

from app.data.sampler import EpochSampler
from app.families import Diffusion, InDI
from app.noise import BatchNoise, as_noise

NET = {"base_channels": 8, "channel_mults": [1, 2], "block": "residual"}


def _batch(index: list[int], epoch: int = 3) -> dict:
    torch.manual_seed(1)
    x = torch.randn(len(index), 1, 8, 8)
    return {"source": x, "target": x.flip(-1), "index": torch.tensor(index), "epoch": torch.full((len(index),), epoch)}


def test_a_maps_draws_do_not_depend_on_its_batch():
    whole = BatchNoise.for_batch(_batch([4, 9, 2, 7]), seed=11)
    halves = [BatchNoise.for_batch(_batch(i), seed=11) for i in ([4, 9], [2, 7])]
    torch.testing.assert_close(whole.uniform(), torch.cat([h.uniform() for h in halves]), rtol=0, atol=0)
    torch.testing.assert_close(whole.normal((3, 5)), torch.cat([h.normal((3, 5)) for h in halves]), rtol=0, atol=0)
    # another epoch, index or seed is another stream
    again = BatchNoise.for_batch(_batch([4, 9, 2, 7]), seed=11).uniform()
    for other in (BatchNoise.for_batch(_batch([4, 9, 2, 7], epoch=4), seed=11),
                  BatchNoise.for_batch(_batch([5, 10, 3, 8]), seed=11),
                  BatchNoise.for_batch(_batch([4, 9, 2, 7]), seed=12)):  # fmt: skip
        assert not torch.equal(other.uniform(), again)


def test_per_map_streams_are_uniform_and_normal():
    noise = BatchNoise([(0, 0, i) for i in range(4000)])
    u, z = noise.uniform(torch.float64), noise.normal((), torch.float64)
    assert 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.02 and abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
    assert abs(float(torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1])) < 0.05  # neighbouring keys independent


def test_as_noise_checks_its_input():
    with pytest.raises(ValueError, match="noise: 2 per-map streams for a batch of 3 maps"):
        as_noise(BatchNoise([(0,), (1,)]), 3)
    with pytest.raises(TypeError, match="noise: expected a BatchNoise"):
        as_noise(3, 3)
    g = torch.Generator().manual_seed(0)
    assert as_noise(g, 5).uniform().shape == (5,)


@pytest.mark.parametrize("make", [lambda: InDI(net=NET, eps0=0.3), lambda: Diffusion(net=NET, steps=2)],
                         ids=["indi", "diffusion"])  # fmt: skip
def test_a_batchs_loss_is_the_mean_of_its_halves_losses(make):
    """What DDP's gradient averaging relies on: per-map noise makes the loss of a batch of 4 the
    mean of the losses of its two halves (the same draws, whichever batch a map is in)."""
    torch.manual_seed(0)
    model = make()
    batch = _batch([4, 9, 2, 7])
    halves = [{k: v[s] for k, v in batch.items()} for s in (slice(0, 2), slice(2, 4))]
    whole = model.training_loss(batch, BatchNoise.for_batch(batch, seed=5))
    parts = [model.training_loss(h, BatchNoise.for_batch(h, seed=5)) for h in halves]
    torch.testing.assert_close(whole, (parts[0] + parts[1]) / 2, rtol=1e-6, atol=0)


@pytest.mark.parametrize("n", [16, 17, 5])
@pytest.mark.parametrize("shuffle", [True, False])
def test_rank_shares_rebuild_the_single_process_batches(n, shuffle):
    one = [i for i, _ in EpochSampler(n, seed=3, shuffle=shuffle)]
    ranks = [EpochSampler(n, seed=3, shuffle=shuffle, num_replicas=2, rank=r) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(0)
    shares = [[i for i, _ in s] for s in ranks]
    assert len(shares[0]) == len(shares[1]) == len(ranks[0]) == -(-n // 2)
    assert sorted(set(shares[0]) | set(shares[1])) == list(range(n))
    b = 2  # per-rank batch 2 == single-process batch 4, batch by batch
    for j in range(n // 4):
        assert set(shares[0][j * b:(j + 1) * b]) | set(shares[1][j * b:(j + 1) * b]) == set(one[4 * j:4 * (j + 1)])
    with pytest.raises(ValueError, match="rank=2, num_replicas=2"):
        EpochSampler(n, 0, num_replicas=2, rank=2)


def test_the_epoch_reseeds_the_order_and_travels_with_the_index():
    s = EpochSampler(20, seed=3)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    assert {e for _, e in first} == {0} and {e for _, e in second} == {1}
    assert [i for i, _ in first] != [i for i, _ in second] and sorted(i for i, _ in second) == list(range(20))

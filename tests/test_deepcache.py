"""DeepCache: reusing the U-Net's deep features between sampler steps."""

from __future__ import annotations

import pytest
import torch

from app.families import Diffusion
from app.nets import UNet
from app.nets.deepcache import DeepCache

NETS = {
    "residual-3": {"block": "residual", "base_channels": 8, "channel_mults": [1, 2, 4], "time_embedding": "fourier"},
    "attention-gated-2": {"block": "attention", "base_channels": 8, "channel_mults": [1, 2], "attention_gates": True,
                          "time_embedding": "fourier"},
    "vanilla-1": {"block": "vanilla", "base_channels": 8, "channel_mults": [1], "time_embedding": "fourier"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NETS))
def test_the_shallow_path_on_fresh_deep_features_is_the_full_forward(name):
    torch.manual_seed(0)
    net = UNet(in_channels=2, out_channels=1, **NETS[name]).double().eval()
    x, t = torch.randn(3, 2, 16, 16, dtype=torch.float64), torch.rand(3, dtype=torch.float64)
    full, deep = net.forward_parts(x, t)
    assert torch.equal(full, net(x, t))
    shallow, kept = net.forward_parts(x, t, deep)
    torch.testing.assert_close(shallow, full, rtol=0, atol=0)
    assert kept is deep
    moved, _ = net.forward_parts(x + 0.1, t, deep)  # stale deep features: close, not equal
    assert not torch.equal(moved, net(x + 0.1, t))


def test_interval_one_is_the_plain_network_and_longer_intervals_skip_full_calls():
    torch.manual_seed(0)
    net = UNet(in_channels=2, out_channels=1, **NETS["residual-3"]).eval()
    x, t = torch.randn(2, 2, 16, 16), torch.rand(2)
    plain = DeepCache(net, 1)
    for _ in range(3):
        assert torch.equal(plain(x, t), net(x, t))
    assert plain.full_calls == 3
    cached = DeepCache(net, 3)
    outs = [cached(x + 0.01 * i, t) for i in range(7)]
    assert cached.full_calls == 3 and torch.equal(outs[3], net(x + 0.03, t))  # calls 0, 3, 6 in full
    cached(x[:1], t[:1])  # another batch size: a full call, not a shape error
    assert cached.full_calls == 4
    with pytest.raises(ValueError, match="deepcache_interval must be an integer >= 1, got 0"):
        DeepCache(net, 0)


def test_diffusion_samples_with_deepcache_without_retraining():
    torch.manual_seed(0)
    model = Diffusion(net={"base_channels": 8, "channel_mults": [1, 2]}, steps=6, sampler="euler").eval()
    src = torch.randn(2, 1, 16, 16)
    noise = torch.randn(2, 1, 16, 16)
    plain = model.generate(src, noise=noise)
    assert torch.equal(model.generate(src, noise=noise, deepcache_interval=1), plain)
    cached = model.generate(src, noise=noise, deepcache_interval=2)
    assert cached.shape == plain.shape and not torch.equal(cached, plain)
    assert float((cached - plain).abs().max()) < float(plain.abs().max())  # close to the uncached sample
    with pytest.raises(ValueError, match=r"deepcache_interval must be an integer >= 1, got 1\.5"):
        Diffusion(net={"base_channels": 8, "channel_mults": [1, 2]}, deepcache_interval=1.5)

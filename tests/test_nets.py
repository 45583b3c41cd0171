"""U-Net blocks, attention, Mamba mixers and the PatchGAN: known answers, gradients, overfitting."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from app.nets import BLOCKS, Mamba, PatchDiscriminator, UNet, VisionMamba2D
from app.nets.attention import AttentionGate, SpatialSelfAttention, attention
from app.nets.blocks import Block, BlockOptions
from app.nets.embeddings import TimeEmbedding
from app.nets.mamba import cross_scan_orders

ALL_BLOCKS = ["vanilla", "residual", "attention", "vit", "mamba"]


def test_registry_has_every_block_and_names_the_key():
    assert BLOCKS.names() == sorted(ALL_BLOCKS)
    assert BLOCKS.label == "block type"
    with pytest.raises(ValueError, match=r"model.net.block: unknown block type 'transformer'; choose one of"):
        UNet(block="transformer")
    with pytest.raises(ValueError, match=r"block type 'mamba' is registered twice"):
        BLOCKS.register("mamba")(Block)


def test_blocks_declare_their_patches():
    opts = BlockOptions(vit_patch=2, mamba_patch=4)
    patches = {name: BLOCKS.get(name).patch_size(opts) for name in ALL_BLOCKS}
    assert patches == {"vanilla": 1, "residual": 1, "attention": 1, "vit": 2, "mamba": 4}
    for name in ALL_BLOCKS:
        assert issubclass(BLOCKS.get(name), Block)
        net = UNet(block=name, base_channels=8, channel_mults=(1, 2), vit_patch=2, mamba_patch=4, heads=2)
        assert net.patches == patches[name]


def test_mamba_scan_backend_is_a_constructor_option():
    net = UNet(block="mamba", base_channels=8, channel_mults=(1, 2), mamba_scan_backend="torch")
    mixers = [m for m in net.modules() if isinstance(m, Mamba)]
    assert mixers and all(m.scan_backend == "torch" for m in mixers)
    assert not any(hasattr(p, "_no_weight_decay") for p in net.parameters())


def test_time_embedding_style():
    emb = TimeEmbedding("fourier", 16, 8)
    assert emb.style == "fourier" and emb(torch.zeros(3)).shape == (3, 16)
    with pytest.raises(ValueError, match="unknown time embedding 'gauss'"):
        TimeEmbedding("gauss", 16)


def _naive(q, k, v):
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return w @ v


def test_attention_equals_naive_softmax():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 8, generator=g) for _ in range(3))
    torch.testing.assert_close(attention(q, k, v), _naive(q, k, v), rtol=1e-5, atol=1e-5)


def test_spatial_attention_module_matches_manual_computation():
    torch.manual_seed(0)
    m = SpatialSelfAttention(8, heads=2, groups=4).eval()
    x = torch.randn(2, 8, 5, 6)
    b, c, h, w = x.shape
    qkv = m.qkv(m.norm(x)).reshape(b, 3, 2, 4, h * w)
    q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))
    manual = x + m.proj(_naive(q, k, v).transpose(-1, -2).reshape(b, c, h, w))
    torch.testing.assert_close(m(x), manual, rtol=1e-5, atol=1e-5)


def _reaches(module: nn.Module, shape=(1, 8, 16, 16)) -> bool:
    x = torch.randn(*shape, requires_grad=True)
    out = module(x)
    (g,) = torch.autograd.grad(out[0, :, 0, 0].sum(), x)
    return bool(g[0, :, -1, -1].abs().sum() > 0)


def test_global_mixers_see_distant_pixels_and_convs_do_not():
    torch.manual_seed(0)
    assert _reaches(SpatialSelfAttention(8, heads=2))
    assert _reaches(VisionMamba2D(8, patch=1, d_state=4))
    assert _reaches(BLOCKS.get("vit")(8, 8, None, True, BlockOptions(heads=2)))
    # a conv stack only sees its receptive field (GroupNorm would couple all pixels through its statistics)
    assert not _reaches(
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 8, 3, padding=1))
    )


def test_mamba_is_causal_and_keeps_mamba_ssm_names():
    torch.manual_seed(0)
    m = Mamba(8, d_state=4)
    assert {
        "in_proj.weight",
        "conv1d.weight",
        "conv1d.bias",
        "x_proj.weight",
        "dt_proj.weight",
        "dt_proj.bias",
        "A_log",
        "D",
        "out_proj.weight",
    } == set(m.state_dict())
    x = torch.randn(2, 20, 8, requires_grad=True)
    y = m(x)
    (g,) = torch.autograd.grad(y[:, 9].sum(), x)
    assert g[:, 10:].abs().sum() == 0 and g[:, :10].abs().sum() > 0


def test_cross_scan_merge_is_identity_without_mixing():
    orders = cross_scan_orders(3, 5)
    for o in orders:
        assert sorted(o.tolist()) == list(range(15))
    m = VisionMamba2D(4, patch=1)
    m.norm, m.mixer = nn.Identity(), nn.Identity()
    x = torch.randn(2, 4, 6, 8)
    torch.testing.assert_close(m(x), x)
    m2 = VisionMamba2D(4, patch=2)
    m2.norm, m2.mixer = nn.Identity(), nn.Identity()
    torch.testing.assert_close(m2(x), x)


def test_attention_gate_scales_skip():
    gate = AttentionGate(6, 4)
    skip, g = torch.randn(2, 6, 8, 8), torch.randn(2, 4, 8, 8)
    out = gate(skip, g)
    ratio = out / skip
    assert torch.all((ratio > 0) & (ratio < 1))
    torch.testing.assert_close(ratio[:, 0], ratio[:, 3])  # one weight per pixel, shared by channels


@pytest.mark.parametrize("block", ALL_BLOCKS)
@pytest.mark.parametrize("time_embedding", [None, "sinusoidal"])
def test_every_block_type_forward_backward(block, time_embedding):
    torch.manual_seed(0)
    net = UNet(
        2,
        3,
        base_channels=8,
        channel_mults=(1, 2, 2),
        block=block,
        time_embedding=time_embedding,
        heads=2,
        attention_gates=block == "attention",
    )
    x = torch.randn(2, 2, 64, 64)
    t = torch.tensor([3.0, 500.0]) if time_embedding else None
    y = net(x, t)
    assert y.shape == (2, 3, 64, 64)
    y.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient reaches {missing}"
    if time_embedding:
        assert not torch.allclose(net(x, torch.tensor([3.0, 3.0]))[1], y[1])


@pytest.mark.parametrize("block", ALL_BLOCKS)
def test_tiny_net_overfits_one_pair(block):
    torch.manual_seed(0)
    net = UNet(1, 1, base_channels=8, channel_mults=(1, 2), block=block, heads=2, mamba_d_state=4)
    x = torch.randn(1, 1, 16, 16)
    target = torch.roll(x, shifts=(3, -2), dims=(-2, -1)) * 0.5 + x.flip(-1) * 0.3
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = (net(x) - target).square().mean()
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first / 10


def test_bad_sizes_fail_clearly():
    net = UNet(1, 1, base_channels=8, channel_mults=(1, 2, 2))
    with pytest.raises(ValueError, match=r"image size 62x62.*divisible by 4"):
        net(torch.randn(1, 1, 62, 62))
    vit = UNet(1, 1, base_channels=8, channel_mults=(1, 2), block="vit", vit_patch=2, heads=2)
    with pytest.raises(ValueError, match="divisible by 4"):
        vit.check_size(18, 18)
    vit.check_size(16, 16)
    assert vit.size_multiple == 4 and net.size_multiple == 4
    with pytest.raises(ValueError, match="pass t of shape"):
        UNet(1, 1, base_channels=8, channel_mults=(1,), time_embedding="fourier")(torch.randn(1, 1, 8, 8))


def test_patchgan_receptive_field_and_shape():
    d = PatchDiscriminator(2)
    assert d.receptive_field() == 70
    assert d(torch.randn(1, 1, 256, 256), torch.randn(1, 1, 256, 256)).shape == (1, 1, 30, 30)
    assert PatchDiscriminator(2, n_layers=1).receptive_field() == 16
    # the receptive field is real: an input pixel beyond it does not move a corner logit
    d = PatchDiscriminator(2, norm="none")
    x = torch.zeros(1, 1, 128, 128, requires_grad=True)
    (g,) = torch.autograd.grad(d(x, torch.zeros_like(x))[0, 0, 0, 0], x)
    rows = torch.nonzero(g[0, 0].abs().sum(1)).flatten()
    assert int(rows.max() - rows.min() + 1) <= 70


@pytest.mark.parametrize("n", [32, 48])
@pytest.mark.parametrize(("kind", "drift"), [("conv2x2", 0.0), ("conv3x3", 0.5)])
def test_down_and_up_sampling_drift(n, kind, drift):
    """With averaging weights, downsampling then nearest-neighbour upsampling moves a blob's
    centroid by exactly ``drift`` fine pixels: 0 for ``conv2x2``, +½ for ``conv3x3``."""
    net = UNet(in_channels=1, out_channels=1, base_channels=4, channel_mults=[1, 2], block="vanilla", downsample=kind)
    down = net.downsample[0]
    with torch.no_grad():
        down.weight.zero_()
        for c in range(down.out_channels):
            down.weight[c, c] = 1.0 / down.weight[c, c].numel()
        down.bias.zero_()
    x = torch.arange(n, dtype=torch.float32)
    blob = torch.exp(-((x[:, None] - 13.3) ** 2 + (x[None, :] - 20.7) ** 2) / 8.0)
    h = blob.expand(1, down.in_channels, n, n)
    back = torch.nn.functional.interpolate(down(h), scale_factor=2.0, mode="nearest")[0, 0]

    def centroid(m: torch.Tensor) -> torch.Tensor:
        return torch.stack([(m.sum(1) * x).sum(), (m.sum(0) * x).sum()]) / m.sum()

    torch.testing.assert_close(centroid(back), centroid(blob) + drift, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"model\.net\.downsample: unknown 'pool'"):
        UNet(downsample="pool")

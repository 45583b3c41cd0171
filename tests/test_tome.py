"""Token merging: exact on duplicated tokens, off at ratio 0, selectable at sampling time."""

from __future__ import annotations

import pytest
import torch

from app.families import Diffusion
from app.families.inference import generate_physical
from app.nets import tome
from app.nets.attention import attention
from app.nets.tome import merged_attention, token_merging


def naive_attention(q, k, v):
    w = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    return w @ v


@pytest.mark.parametrize(("n", "dv"), [(16, 8), (17, 8), (17, 5)])
def test_duplicated_tokens_merge_exactly_with_proportional_attention(n, dv):
    g = torch.Generator().manual_seed(0)
    half = [torch.randn(2, 3, (n + 1) // 2, d, dtype=torch.float64, generator=g) for d in (8, 8, dv)]
    q, k, v = (t.repeat_interleave(2, dim=2)[:, :, :n] for t in half)  # tokens 2i and 2i + 1 equal
    torch.testing.assert_close(merged_attention(q, k, v, 0.5), naive_attention(q, k, v), rtol=0, atol=1e-12)


def test_ratio_zero_is_plain_attention_and_merging_leaves_n_minus_r_distinct_outputs():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 20, 4, generator=g, dtype=torch.float64) for _ in range(3))
    assert torch.equal(attention(q, k, v), torch.nn.functional.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(attention(q, k, v), naive_attention(q, k, v))
    with token_merging(0.25):
        merged = attention(q, k, v)
    assert tome.current_ratio() == 0.0  # restored on leaving the block
    distinct = torch.unique(merged[0, 0].round(decimals=12), dim=0)
    assert len(distinct) == 20 - 5
    assert not torch.allclose(merged, naive_attention(q, k, v))


@pytest.mark.parametrize("bad", [-0.1, 0.6, True])
def test_bad_ratios_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="token_merging must be a fraction"), token_merging(bad):
        pass
    with pytest.raises(ValueError, match="token_merging must be a fraction"):
        Diffusion(net={"base_channels": 8, "channel_mults": [1, 2]}, token_merging=bad)


def test_a_trained_attention_model_samples_with_merging_without_retraining(monkeypatch):
    torch.manual_seed(0)
    net = {"block": "attention", "base_channels": 8, "channel_mults": [1, 2], "heads": 2}
    model = Diffusion(net=net, steps=2, sampler="euler").eval()
    batch = {"source": torch.randn(2, 1, 16, 16), "index": torch.tensor([0, 1])}
    calls = []
    original = tome.merged_attention
    monkeypatch.setattr("app.nets.attention.merged_attention", lambda *a: calls.append(a[3]) or original(*a))
    plain = generate_physical(model, batch, lambda t: t, 0, 1).normalised
    assert not calls
    merged = generate_physical(model, batch, lambda t: t, 0, 1, token_merging=0.3).normalised
    assert calls and set(calls) == {0.3}
    assert torch.isfinite(merged).all() and not torch.equal(plain, merged)
    model.hparams.token_merging = 0.3  # the model's own option, as a config sets it
    calls.clear()
    torch.testing.assert_close(generate_physical(model, batch, lambda t: t, 0, 1).normalised, merged)
    assert calls

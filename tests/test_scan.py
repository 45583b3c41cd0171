"""Selective scan against a sequential float64 loop: values, gradients, stability, invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.nets.mamba import Mamba
from app.nets.scan import (
    SCAN_BACKEND_ENV,
    _scan_core,
    resolve_scan_backend,
    scan_linear,
    selective_scan,
    selective_scan_loop,
)


def _inputs(b, d, n, length, bc_form="varying", groups=1, dtype=torch.float64, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).requires_grad_(grad)

    u = r(b, d, length)
    delta = r(b, d, length, scale=0.5)
    A = (-torch.rand(d, n, generator=g, dtype=torch.float64) * 2 - 0.05).to(dtype).requires_grad_(grad)
    shapes = {"fixed": (d, n), "varying": (b, n, length), "grouped": (b, groups, n, length)}
    B, C = r(*shapes[bc_form]), r(*shapes[bc_form])
    D, z, bias = r(d), r(b, d, length), r(d, scale=0.3)
    return u, delta, A, B, C, D, z, bias


@pytest.mark.parametrize("length", [1, 2, 3, 5, 16, 17, 63, 64, 65, 257, 1000])
@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 16, 4096])
def test_linear_recurrence_core(length, chunk):
    g = torch.Generator().manual_seed(length)
    a = torch.rand(length, 5, generator=g, dtype=torch.float64)
    b = torch.randn(length, 5, generator=g, dtype=torch.float64)
    h, ref = torch.zeros(5, dtype=torch.float64), []
    for t in range(length):
        h = a[t] * h + b[t]
        ref.append(h)
    torch.testing.assert_close(_scan_core(a, b, chunk), torch.stack(ref), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("b", "d", "n", "length", "form", "groups"),
    [(2, 4, 3, 1, "varying", 1), (2, 6, 4, 17, "varying", 1), (1, 8, 2, 64, "fixed", 1),
     (2, 8, 4, 65, "grouped", 2), (3, 8, 5, 100, "grouped", 4), (1, 3, 16, 257, "varying", 1)],
)  # fmt: skip
@pytest.mark.parametrize("options", [(True, True, True, True), (False, False, False, False)])
def test_float64_matches_loop_with_gradients(b, d, n, length, form, groups, options):
    u, delta, A, B, C, D, z, bias = _inputs(b, d, n, length, form, groups)
    use_d, use_z, use_bias, softplus = options
    args = (
        u,
        delta,
        A,
        B,
        C,
        D if use_d else None,
        z if use_z else None,
        bias if use_bias else None,
        softplus,
    )
    out, last = selective_scan(*args, return_last_state=True, chunk_size=4)
    ref, ref_last = selective_scan_loop(*args, return_last_state=True)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(last, ref_last, rtol=1e-10, atol=1e-10)
    leaves = [t for t in args if isinstance(t, torch.Tensor)]
    weights = torch.randn_like(ref)
    g1 = torch.autograd.grad((out * weights).sum(), leaves)
    g2 = torch.autograd.grad((ref * weights).sum(), leaves)
    for x, y in zip(g1, g2, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


def test_gradcheck_small():
    args = _inputs(1, 2, 2, 7, "grouped", 2)
    assert torch.autograd.gradcheck(
        lambda *a: selective_scan(*a, True, chunk_size=3), args, eps=1e-6, atol=1e-7
    )


@pytest.mark.parametrize(
    ("b", "d", "n", "length"), [(2, 4, 4, 1), (2, 8, 16, 33), (1, 16, 8, 500), (2, 4, 4, 1023)]
)
def test_float32_matches_float64_loop(b, d, n, length):
    args64 = _inputs(b, d, n, length)
    args32 = [t.detach().float().requires_grad_() for t in args64]
    out = selective_scan(*args32, True)
    ref = selective_scan_loop(*args64, True)
    out_d, ref_d = out.detach(), ref.detach()
    assert out.dtype == torch.float32
    assert float((out_d.double() - ref_d).abs().max() / ref_d.abs().max()) < 1e-5
    w = torch.randn_like(ref)
    g32 = torch.autograd.grad((out * w.float()).sum(), args32)
    g64 = torch.autograd.grad((ref * w).sum(), args64)
    for x, y in zip(g32, g64, strict=True):
        # (with L = 1 the gradient of A is exactly 0: h starts at 0)
        assert float((x.double() - y).abs().max()) <= 1e-5 * max(float(y.abs().max()), 1e-30)


def _numpy_oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    h, out = np.zeros(a.shape[1]), np.empty_like(b)
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out[t] = h
    return out


def _long_inputs(regime: str, dtype: torch.dtype):
    length = 65_536
    g = torch.Generator().manual_seed(1)
    u = torch.randn(1, 2, length, generator=g, dtype=torch.float64)
    if regime == "decay_near_0":  # softplus(5) ≈ 5 with A down to −100: exp underflows to 0
        delta = torch.full((1, 2, length), 5.0, dtype=torch.float64)
        A = torch.tensor([[-100.0, -40.0], [-60.0, -1.0]], dtype=torch.float64)
    else:  # softplus(−9.2) ≈ 1e-4: decays within 1e-7 of 1, memory over the whole sequence
        delta = torch.full((1, 2, length), -9.2, dtype=torch.float64)
        A = torch.tensor([[-1.0, -0.01], [-0.5, -1e-3]], dtype=torch.float64)
    B = torch.randn(1, 2, length, generator=g, dtype=torch.float64)
    C = torch.randn(1, 2, length, generator=g, dtype=torch.float64)
    return [x.to(dtype) for x in (u, delta, A, B, C)]


def _oracle_output(u, delta, A, B, C) -> np.ndarray:
    """Sequential float64 recurrence from the given inputs' own discretisation."""
    dt = torch.nn.functional.softplus(delta)[0]
    out = []
    for ch in range(2):
        a = torch.exp(dt[ch][:, None] * A[ch][None]).double().numpy()
        b = ((dt[ch] * u[0, ch])[:, None] * B[0].t()).double().numpy()
        out.append((_numpy_oracle(a, b) * C[0].double().t().numpy()).sum(-1))
    return np.stack(out)


@pytest.mark.parametrize("regime", ["decay_near_0", "decay_near_1"])
def test_long_sequences_are_stable(regime):
    # float64 end to end: the chunked scan equals the sequential recurrence
    args64 = _long_inputs(regime, torch.float64)
    out64 = selective_scan(*args64, delta_softplus=True)[0].numpy()
    ref = _oracle_output(*args64)
    assert np.abs(out64 - ref).max() <= 1e-10 * np.abs(ref).max()
    # float32: finite, and the scan adds no error beyond float32 rounding of its coefficients
    args32 = _long_inputs(regime, torch.float32)
    out32 = selective_scan(*args32, delta_softplus=True)[0].double().numpy()
    assert np.isfinite(out32).all()
    ref32 = _oracle_output(*args32)
    assert np.abs(out32 - ref32).max() <= 1e-4 * np.abs(ref32).max()


def test_invariances():
    args = _inputs(4, 4, 3, 50, grad=False)
    ref = selective_scan(*args, True, chunk_size=50)
    for chunk in (2, 7, 16):
        torch.testing.assert_close(selective_scan(*args, True, chunk_size=chunk), ref, rtol=1e-12, atol=1e-12)
    halves = [selective_scan(*(t[i : i + 2] if t.ndim == 3 else t for t in args), True) for i in (0, 2)]
    torch.testing.assert_close(torch.cat(halves), ref, rtol=1e-12, atol=1e-12)


def test_half_precision_keeps_dtype():
    args = [t.detach().float() for t in _inputs(2, 4, 4, 40, grad=False)]
    ref = selective_scan(*args, True)
    out = selective_scan(*(t.bfloat16() for t in args), True)
    assert out.dtype == torch.bfloat16
    assert float((out.float() - ref).abs().max() / ref.abs().max()) < 3e-2


def test_scan_linear_autograd_matches_loop():
    a = torch.rand(40, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(40, 3, 2, dtype=torch.float64, requires_grad=True)
    h = scan_linear(a, b, chunk=4)
    hs, state = [], torch.zeros(3, 2, dtype=torch.float64)
    for t in range(40):
        state = a[t] * state + b[t]
        hs.append(state)
    ref = torch.stack(hs)
    w = torch.randn_like(ref)
    for x, y in zip(
        torch.autograd.grad((h * w).sum(), [a, b]), torch.autograd.grad((ref * w).sum(), [a, b]), strict=True
    ):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_backend_errors():
    args = _inputs(1, 2, 2, 4, grad=False)
    with pytest.raises(ValueError, match="unknown scan backend 'gpu'"):
        selective_scan(*args, backend="gpu")
    with pytest.raises(RuntimeError, match="backend='cuda' needs mamba-ssm"):
        selective_scan(*args, backend="cuda")
    with pytest.raises(ValueError, match="u and delta must both be"):
        selective_scan(args[0], args[1][:, :, :2], *args[2:5])


def test_backend_is_resolved_once_when_the_model_is_built(monkeypatch):
    monkeypatch.delenv(SCAN_BACKEND_ENV, raising=False)
    assert resolve_scan_backend() == "auto"
    assert Mamba(4, d_state=2).scan_backend == "auto"
    monkeypatch.setenv(SCAN_BACKEND_ENV, "torch")
    assert resolve_scan_backend("auto") == "torch"
    assert resolve_scan_backend("cuda") == "cuda"  # an explicit choice beats the environment
    m = Mamba(4, d_state=2)
    assert m.scan_backend == "torch"
    monkeypatch.setenv(SCAN_BACKEND_ENV, "cuda")  # read at construction only: m keeps "torch"
    assert m.scan_backend == "torch"
    m(torch.randn(1, 5, 4))  # CPU: "cuda" would raise
    selective_scan(*_inputs(1, 2, 2, 4, grad=False))  # the scan itself ignores the environment
    assert Mamba(4, d_state=2, scan_backend="torch").scan_backend == "torch"
    monkeypatch.setenv(SCAN_BACKEND_ENV, "gpu")
    with pytest.raises(ValueError, match="GALCHEMY_SCAN_BACKEND='gpu': unknown scan backend"):
        Mamba(4, d_state=2)
    with pytest.raises(ValueError, match="unknown scan backend 'fast'"):
        Mamba(4, d_state=2, scan_backend="fast")

"""Selective scan (Mamba's S6 recurrence) with mamba-ssm's semantics.

``selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus)`` computes, per
batch ``b``, channel ``d`` and state ``n``::

    Δ = softplus(delta + delta_bias)            (if delta_softplus)
    h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t     (h_{−1} = 0)
    y_t = Σ_n C_t h_t + D u_t,   out = y · silu(z)

Shapes: ``u, delta, z`` ``(batch, D, L)``; ``A`` ``(D, N)``; ``B, C`` ``(D, N)`` (time
invariant), ``(batch, N, L)`` or grouped ``(batch, G, N, L)`` (group g serves channels
``[g D/G, (g+1) D/G)``); ``D, delta_bias`` ``(D,)``.

Backends: mamba-ssm's CUDA kernel when it is importable and the call qualifies (CUDA
tensors, real A, fp32/fp16/bf16, N ≤ 256); everywhere else a pure-PyTorch chunked scan
(``_ChunkedScan``): O(L) work in O(√L)-ish Python steps, only products of decays ≤ 1 and
additions — no division, no logarithm, no overflow at any L. It computes in float32 (float64
for float64 inputs) and returns u's dtype. ``selective_scan_loop`` is the plain sequential
recurrence, kept as a readable oracle and benchmark baseline (never the default).

Choosing the backend: ``selective_scan(..., backend=...)`` does exactly what it is told
(``"auto"``: the kernel when the call qualifies). Models resolve their backend once, when
they are built (``Mamba(scan_backend=...)``, ``resolve_scan_backend``): there ``"auto"``
defers to the environment variable ``GALCHEMY_SCAN_BACKEND`` (``auto``, ``torch`` or
``cuda``) if it is set, so ``GALCHEMY_SCAN_BACKEND=torch`` forces the pure-PyTorch path in
every model built afterwards; the scan itself never reads the environment.
"""

from __future__ import annotations

import importlib.util
import math
import os
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = [
    "BACKENDS",
    "SCAN_BACKEND_ENV",
    "cuda_scan_available",
    "resolve_scan_backend",
    "scan_linear",
    "selective_scan",
    "selective_scan_loop",
]

#: the scan backends: ``auto`` (the CUDA kernel when the call qualifies), ``torch``, ``cuda``
BACKENDS = ("auto", "torch", "cuda")
#: environment variable read by ``resolve_scan_backend`` when a model is built with ``"auto"``
SCAN_BACKEND_ENV = "GALCHEMY_SCAN_BACKEND"


# ------------------------------------------------------------------ the linear recurrence


def _default_chunk(length: int) -> int:
    return int(min(256, max(4, 2 ** round(math.log2(max(1.0, math.sqrt(length)))))))


def _scan_core(
    a: torch.Tensor, b: torch.Tensor, chunk: int | None = None, reverse: bool = False
) -> torch.Tensor:
    """``h_t = a_t h_{t∓1} + b_t`` along dim 0 of ``(L, M)`` tensors from a zero state (no autograd).

    Forward (``h_t = a_t h_{t−1} + b_t``) or, with ``reverse``, backward in time
    (``h_t = a_t h_{t+1} + b_t``). Reduce-then-scan: per chunk of ``T`` steps, the decay
    product and the end state from zero; the chunk carries are the same recurrence over
    chunks (solved recursively); a rescan from the carries writes every state in place.
    Padding uses the identity (a = 1, b = 0).
    """
    length, m = a.shape
    t = chunk or _default_chunk(length)
    if length <= t or t < 2:  # one chunk (or chunk 1): the plain loop
        out = torch.empty_like(b)
        h = torch.zeros(m, dtype=b.dtype, device=b.device)
        for i in reversed(range(length)) if reverse else range(length):
            h = torch.addcmul(b[i], a[i], h, out=out[i])
        return out
    n_chunks = -(-length // t)
    pad = n_chunks * t - length
    if pad:
        a = torch.cat([a, a.new_ones(pad, m)])
        b = torch.cat([b, b.new_zeros(pad, m)])
    a3 = a.view(n_chunks, t, m)
    b3 = b.view(n_chunks, t, m)
    steps = list(reversed(range(t))) if reverse else list(range(t))
    prod = torch.ones(n_chunks, m, dtype=a.dtype, device=a.device)
    state = torch.zeros(n_chunks, m, dtype=b.dtype, device=b.device)
    for i in steps:
        state = torch.addcmul(b3[:, i], a3[:, i], state)
        prod = prod * a3[:, i]
    ends = _scan_core(prod, state, chunk, reverse)  # state at the end of each chunk
    zero = ends.new_zeros(1, m)
    carry = torch.cat([ends[1:], zero]) if reverse else torch.cat([zero, ends[:-1]])
    out = torch.empty(n_chunks, t, m, dtype=b.dtype, device=b.device)
    h = carry
    for i in steps:
        h = torch.addcmul(b3[:, i], a3[:, i], h, out=out[:, i])
    return out.view(n_chunks * t, m)[:length]


def _scan_backward(
    a: torch.Tensor, h: torch.Tensor, grad_h: torch.Tensor, chunk: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``h = scan(a, b)`` on ``(L, M)``: ``(∂a, ∂b)``.

    ``g_t = grad_t + a_{t+1} g_{t+1}`` is the same scan run in reverse; then ``∂b_t = g_t``
    and ``∂a_t = g_t h_{t−1}`` (0 at t = 0).
    """
    a_next = torch.cat([a[1:], a.new_zeros(1, a.shape[1])])
    g = _scan_core(a_next, grad_h.contiguous(), chunk, reverse=True)
    grad_a = torch.empty_like(a)
    grad_a[0].zero_()
    torch.mul(g[1:], h[:-1], out=grad_a[1:])
    return grad_a, g


class _ChunkedScan(torch.autograd.Function):
    """Autograd for ``h = scan(a, b)`` on ``(L, M)``: the backward is the same scan, run in reverse."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, chunk: int | None) -> torch.Tensor:
        h = _scan_core(a, b, chunk)
        ctx.save_for_backward(a, h)
        ctx.chunk = chunk
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        a, h = ctx.saved_tensors
        grad_a, grad_b = _scan_backward(a, h, grad_h, ctx.chunk)
        return grad_a, grad_b, None


def _sum_to(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Reduce a broadcast gradient back to ``shape``."""
    dims = [i for i, (n, m) in enumerate(zip(x.shape, shape, strict=True)) if m == 1 and n != 1]
    return x.sum(dim=dims, keepdim=True) if dims else x


class _SelectiveCore(torch.autograd.Function):
    """Discretise, scan and read out in one step, with hand-written gradients.

    Inputs (time-major, broadcastable): ``dt``, ``dtu`` ``(L, b, G, D/G, 1)``; ``A``
    ``(1, 1, G, D/G, N)``; ``Bm``, ``Cm`` ``(L|1, b|1, G|1, D/G|1, N)``. Output
    ``y = Σ_n C h`` ``(L, b, G, D/G, 1)`` and the states ``h``. Outer products and
    contractions over N or D are matmuls, so no autograd graph of big temporaries is kept.
    """

    @staticmethod
    def forward(ctx, dt, A, dtu, Bm, Cm, chunk):
        a = torch.exp(dt * A)
        b = dtu * Bm if Bm.shape[-2] != 1 else dtu @ Bm  # (…, D/G, 1) @ (…, 1, N)
        shape = b.shape
        h = _scan_core(a.reshape(shape[0], -1), b.reshape(shape[0], -1), chunk).view(shape)
        y = (h * Cm).sum(-1, keepdim=True) if Cm.shape[-2] != 1 else h @ Cm.transpose(-1, -2)
        ctx.save_for_backward(dt, A, dtu, Bm, Cm, a, h)
        ctx.chunk = chunk
        return y, h

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, gh_extra):
        dt, A, dtu, Bm, Cm, a, h = ctx.saved_tensors
        per_channel_c = Cm.shape[-2] != 1
        grad_h = gy * Cm if per_channel_c else gy @ Cm  # (…, D/G, N)
        if gh_extra is not None:
            grad_h = grad_h + gh_extra
        shape = h.shape
        length = shape[0]
        ga, g = _scan_backward(
            a.reshape(length, -1), h.reshape(length, -1), grad_h.reshape(length, -1), ctx.chunk
        )
        ga, g = ga.view(shape), g.view(shape)
        grad_c = (gy * h) if per_channel_c else h.transpose(-1, -2) @ gy  # (…, N, 1) for shared C
        grad_c = _sum_to(grad_c if per_channel_c else grad_c.transpose(-1, -2), Cm.shape)
        if Bm.shape[-2] != 1:
            grad_dtu = (g * Bm).sum(-1, keepdim=True)
            grad_b = _sum_to(g * dtu, Bm.shape)
        else:
            grad_dtu = g @ Bm.transpose(-1, -2)
            grad_b = _sum_to(dtu.transpose(-1, -2) @ g, Bm.shape)
        ga.mul_(a)  # ∂a = g h_{t−1}, then through exp(dt A): × a
        grad_dt = (ga * A).sum(-1, keepdim=True)
        grad_a_param = _sum_to(ga * dt, A.shape)
        return grad_dt, grad_a_param, grad_dtu, grad_b, grad_c, None


def scan_linear(a: torch.Tensor, b: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Differentiable ``h_t = a_t h_{t−1} + b_t`` along dim 0 of ``(L, ...)`` tensors (h₋₁ = 0).

    ``a`` and ``b`` have the same shape ``(L, ...)``; returns ``h`` of that shape.
    """
    shape = b.shape
    h = _ChunkedScan.apply(a.reshape(shape[0], -1), b.reshape(shape[0], -1), chunk)
    return h.reshape(shape)


# ------------------------------------------------------------------------- helpers


def _groups(x: torch.Tensor, channels: int) -> int:
    if x.ndim == 4:
        groups = x.shape[1]
        if channels % groups:
            raise ValueError(f"grouped B/C: {channels} channels are not divisible by {groups} groups")
        return groups
    return 1


def _time_major_bc(x: torch.Tensor, groups: int, channels: int) -> torch.Tensor:
    """B or C broadcastable to ``(L, batch, G, D/G, N)``, time-major in memory.

    The (small) permuted copy matters: broadcasting against a transposed view would give
    the big discretised tensors a transposed layout and make every scan step strided.
    """
    if x.ndim == 2:  # (D, N): per channel, time invariant (groups == 1)
        return x[None, None, None]
    if x.ndim == 3:  # (batch, N, L)
        return x.permute(2, 0, 1).contiguous()[:, :, None, None, :]
    if x.ndim == 4:  # (batch, G, N, L)
        return x.permute(3, 0, 1, 2).contiguous()[:, :, :, None, :]
    raise ValueError(f"B/C must be (D, N), (batch, N, L) or (batch, G, N, L); got shape {tuple(x.shape)}")


def _expand_bc(x: torch.Tensor, batch: int, channels: int, length: int) -> torch.Tensor:
    """B or C as ``(batch, D, L, N)`` (for the sequential loop)."""
    groups = _groups(x, channels)
    v = _time_major_bc(x, groups, channels)  # (L|1, batch|1, G|1, D/G|1, N)
    v = v.expand(length, batch, groups, channels // groups, x.shape[-2] if x.ndim > 2 else x.shape[-1])
    return v.reshape(length, batch, channels, -1).permute(1, 2, 0, 3)


def _check(u, delta, A, B, C) -> None:
    if u.ndim != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be (batch, D, L); got {tuple(u.shape)} and {tuple(delta.shape)}"
        )
    if A.ndim != 2 or A.shape[0] != u.shape[1]:
        raise ValueError(f"A must be (D, N) with D = {u.shape[1]}; got {tuple(A.shape)}")


# ------------------------------------------------------------------------- backends


def resolve_scan_backend(backend: str = "auto") -> str:
    """The backend a model will use: ``backend``, or for ``"auto"`` the value of
    ``GALCHEMY_SCAN_BACKEND`` when that is set (read now, once). ValueError for unknown names."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown scan backend {backend!r}; choose one of {BACKENDS}")
    if backend != "auto":
        return backend
    chosen = os.environ.get(SCAN_BACKEND_ENV, "auto") or "auto"
    if chosen not in BACKENDS:
        raise ValueError(f"{SCAN_BACKEND_ENV}={chosen!r}: unknown scan backend; choose one of {BACKENDS}")
    return chosen


@lru_cache(maxsize=1)
def cuda_scan_available() -> bool:
    """Whether mamba-ssm's selective-scan kernel can be imported (checked once).

    The cache holds this one bool (the result of an import check), nothing device-bound.
    """
    if importlib.util.find_spec("selective_scan_cuda") is None:
        return False
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: F401
    except Exception:
        return False
    return True


def _use_cuda(u: torch.Tensor, A: torch.Tensor, backend: str) -> bool:
    qualifies = (
        u.is_cuda
        and not A.is_complex()
        and u.dtype in (torch.float32, torch.float16, torch.bfloat16)
        and A.shape[-1] <= 256
    )
    if backend == "cuda":
        if not (qualifies and cuda_scan_available()):
            raise RuntimeError(
                "backend='cuda' needs mamba-ssm's kernel, CUDA tensors, real A, fp32/fp16/bf16 and N <= 256"
            )
        return True
    return backend == "auto" and qualifies and cuda_scan_available()


def _cuda_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    dt = u.dtype
    B = B.to(dt).contiguous() if B.ndim > 2 else B.float().contiguous()
    C = C.to(dt).contiguous() if C.ndim > 2 else C.float().contiguous()
    return selective_scan_fn(
        u.contiguous(), delta.to(dt).contiguous(), A.float().contiguous(), B, C,
        None if D is None else D.float(), None if z is None else z.contiguous(),
        None if delta_bias is None else delta_bias.float(), delta_softplus, return_last_state,
    )  # fmt: skip


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    backend: str = "auto",
    chunk_size: int | None = None,
):
    """The selective scan (see the module docstring); returns ``out`` ``(batch, D, L)`` in u's dtype.

    Shapes are the module docstring's (``u, delta, z`` ``(batch, D, L)``, ``A`` ``(D, N)``, …).
    With ``return_last_state`` it returns ``(out, h_{L−1})``, the state ``(batch, D, N)``.
    ``backend``: ``"auto"`` (CUDA kernel when the call qualifies), ``"torch"`` or ``"cuda"``;
    taken as given (models resolve ``GALCHEMY_SCAN_BACKEND`` once, ``resolve_scan_backend``).
    ``chunk_size``: steps per chunk of the pure-PyTorch scan (default ≈ √L, a power of two).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown scan backend {backend!r}; choose one of {BACKENDS}")
    _check(u, delta, A, B, C)
    if _use_cuda(u, A, backend):
        return _cuda_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if A.is_complex():
        raise ValueError("the pure-PyTorch scan supports real A only")
    out_dtype = u.dtype
    work = torch.float64 if u.dtype == torch.float64 else torch.float32
    u_w, dt = u.to(work), delta.to(work)
    if delta_bias is not None:
        dt = dt + delta_bias.to(work)[None, :, None]
    if delta_softplus:
        dt = F.softplus(dt)
    batch, channels, length = u.shape
    groups = _groups(B, channels)
    if _groups(C, channels) != groups:
        raise ValueError("B and C must have the same number of groups")
    # time-major (L, batch, G, D/G, N): every step is one contiguous slice, no big permutes
    shape5 = (length, batch, groups, channels // groups)
    dt5 = dt.permute(2, 0, 1).contiguous().view(*shape5, 1)
    u5 = u_w.permute(2, 0, 1).contiguous().view(*shape5, 1)
    A5 = A.to(work).reshape(1, 1, groups, channels // groups, -1)
    Bm = _time_major_bc(B.to(work), groups, channels)
    Cm = _time_major_bc(C.to(work), groups, channels)
    y, h = _SelectiveCore.apply(dt5, A5, dt5 * u5, Bm, Cm, chunk_size)
    y = y.reshape(length, batch, channels).permute(1, 2, 0)
    if D is not None:
        y = y + u_w * D.to(work)[None, :, None]
    if z is not None:
        y = y * F.silu(z.to(work))
    out = y.to(out_dtype)
    if return_last_state:
        return out, h[-1].reshape(batch, channels, -1).to(out_dtype)
    return out


def selective_scan_loop(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """The recurrence as a plain sequential loop in the inputs' dtype (oracle and baseline; slow).

    Same arguments, shapes and results as ``selective_scan`` (module docstring).
    """
    _check(u, delta, A, B, C)
    dt = delta + (delta_bias[None, :, None] if delta_bias is not None else 0)
    if delta_softplus:
        dt = F.softplus(dt)
    batch, channels, length = u.shape
    Bx = _expand_bc(B, batch, channels, length)
    Cx = _expand_bc(C, batch, channels, length)
    h = u.new_zeros(batch, channels, A.shape[-1])
    ys = []
    for t in range(length):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * Bx[:, :, t]
        ys.append((h * Cx[:, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D[None, :, None]
    if z is not None:
        y = y * F.silu(z)
    return (y, h) if return_last_state else y

"""Samplers and parameterisations against closed forms (Gaussian data, analytic denoisers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.diffusion.parameterizations import (
    EDM,
    PARAMETERIZATIONS,
    EpsVP,
    Parameterization,
    VPredVP,
    edm_scalings,
    make_parameterization,
    vp_alphas_cumprod,
)
from app.diffusion.samplers import (
    SAMPLERS,
    ddpm_sigmas,
    karras_sigmas,
    lms_coefficients,
    lms_table,
    sample_ddim,
    sample_dpmpp_2m,
    sample_euler,
    sample_heun,
    sample_lms,
)
from app.families.indi import indi_sample

MU, S = 0.3, 0.5
X_EXACT_MIN = 0.7999942346  # exact ODE solution at σ_min from x_T = μ + 80


def analytic(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


def _start() -> torch.Tensor:
    return torch.tensor(MU + 80.0, dtype=torch.float64)


def test_karras_reference_values():
    torch.testing.assert_close(
        karras_sigmas(5)[:-1],
        torch.tensor([80, 17.5278, 2.51522, 0.169753, 0.002], dtype=torch.float64),
        rtol=1e-5,
        atol=0,
    )
    torch.testing.assert_close(
        karras_sigmas(4, 0.1, 10)[:-1],
        torch.tensor([10, 2.93412, 0.662886, 0.1], dtype=torch.float64),
        rtol=1e-5,
        atol=0,
    )
    ref = [1, 0.760616, 0.562852, 0.402734, 0.276286, 0.179535, 0.108506, 0.0592229, 0.0277126, 0.01]
    torch.testing.assert_close(
        karras_sigmas(10, 0.01, 1, rho=3)[:-1], torch.tensor(ref, dtype=torch.float64), rtol=1e-5, atol=0
    )
    assert karras_sigmas(5)[-1] == 0


def test_exact_solution_is_what_we_think():
    assert MU + 80 * math.sqrt(S**2 + 0.002**2) / math.sqrt(S**2 + 80**2) == pytest.approx(
        X_EXACT_MIN, rel=1e-9
    )


@pytest.mark.parametrize(
    ("sampler", "errors", "min_ratio", "max_ratio"),
    [
        (sample_euler, {40: 3.51e-2, 80: 1.77e-2}, 1.8, 2.2),
        (sample_heun, {40: 4.89e-3, 80: 1.16e-3}, 3.6, 4.6),
        (sample_lms, {40: 1.95e-3, 80: 1.62e-4}, 8.0, 1e9),
        (sample_dpmpp_2m, {40: 5.21e-3, 80: 1.19e-3}, 3.6, 4.6),
    ],
)
def test_convergence_order_on_gaussian(sampler, errors, min_ratio, max_ratio):
    err = {}
    for n in (40, 80):
        out = sampler(analytic, _start(), karras_sigmas(n)[:-1])  # stop at σ_min
        err[n] = abs(float(out) - X_EXACT_MIN)
        assert err[n] == pytest.approx(errors[n], rel=0.01)
    assert min_ratio <= err[40] / err[80] <= max_ratio


@pytest.mark.parametrize(
    ("sampler", "n10", "n18"),
    [(sample_euler, 0.66521307, 0.72303144), (sample_heun, 0.90979800, 0.82762464),
     (sample_dpmpp_2m, 0.87938666, 0.83114007)],
)  # fmt: skip
def test_full_runs_to_zero(sampler, n10, n18):
    assert float(sampler(analytic, _start(), karras_sigmas(10))) == pytest.approx(n10, abs=1e-7)
    assert float(sampler(analytic, _start(), karras_sigmas(18))) == pytest.approx(n18, abs=1e-7)


@pytest.mark.parametrize("n", [10, 18, 1000])
def test_lms_runs_to_sigma_min_then_takes_a_first_order_step_to_zero(n):
    """LMS-4 to σ_min is the reference multistep (checked above); its step into σ = 0 is
    Euler's, x − σ d = D(x; σ_min), so the result is the denoised estimate there."""
    sig = karras_sigmas(n)
    to_min = sample_lms(analytic, _start(), sig[:-1])
    full = sample_lms(analytic, _start(), sig)
    torch.testing.assert_close(full, analytic(to_min, sig[-2]), rtol=1e-12, atol=1e-14)


def test_lms_final_step_is_bounded_on_fine_grids():
    """Why the final step is first order: on a 1000-step Karras grid the order-4 polynomial through
    the last nodes, extrapolated over [σ_min, 0] (40× their spacing), has coefficients of order
    10 (−6.2, 17.7, −16.7, 5.3) where the step is 0.002 long: it multiplies the denoiser's noise.
    With the first-order step the coefficient is −σ_min, and a noisy denoiser's sample is as
    accurate as at 50 steps."""
    sig = karras_sigmas(1000)
    high = lms_coefficients(sig.numpy(), len(sig) - 2, 4)
    assert max(abs(c) for c in high) > 5 and abs(sum(high) + float(sig[-2])) < 1e-9
    assert lms_table(sig, 4)[-1] == pytest.approx([-float(sig[-2])], rel=1e-12)
    g = torch.Generator().manual_seed(0)

    def noisy(x, s):  # the analytic denoiser with a network-like error of 1e-3
        return analytic(x, s) + 1e-3 * torch.randn(x.shape, generator=g, dtype=x.dtype)

    errors = {n: abs(float(sample_lms(noisy, _start(), karras_sigmas(n))) - float(sample_lms(
        analytic, _start(), karras_sigmas(n)))) for n in (50, 1000)}  # fmt: skip
    assert errors[1000] < 5 * max(errors[50], 1e-3)


def test_lms_table_is_the_per_step_coefficients_computed_once():
    sig = karras_sigmas(12)
    table = lms_table(sig, 4)
    assert [len(row) for row in table[:5]] == [1, 2, 3, 4, 4]  # the ramp-up
    for i, row in enumerate(table[:-1]):
        np.testing.assert_array_equal(row, lms_coefficients(sig.numpy(), i, min(i + 1, 4)))
    np.testing.assert_array_equal(table[-1], lms_coefficients(sig.numpy(), len(sig) - 2, 1))  # into σ = 0
    # the sampler with the table equals the per-step loop it replaces, bit for bit
    x0, ds, x = _start(), [], _start()
    for i in range(len(sig) - 1):
        ds.insert(0, (x - analytic(x, sig[i])) / sig[i])
        del ds[4:]
        use = 1 if i == len(sig) - 2 else len(ds)  # the step into σ = 0 at first order
        x = x + sum(float(c) * d for c, d in zip(lms_coefficients(sig, i, use), ds[:use], strict=True))
    assert torch.equal(sample_lms(analytic, x0, sig), x)


def test_lms_coefficients_are_exact_integrals():
    sig = karras_sigmas(6)
    for order in (1, 2, 3):
        c = lms_coefficients(sig.numpy(), 3, order)
        # the rule integrates polynomials of degree < order exactly
        for deg in range(order):
            nodes = [float(sig[3 - j]) for j in range(order)]
            exact = (float(sig[4]) ** (deg + 1) - float(sig[3]) ** (deg + 1)) / (deg + 1)
            assert sum(ci * nd**deg for ci, nd in zip(c, nodes, strict=True)) == pytest.approx(
                exact, rel=1e-10
            )


def test_ddim_eta0_is_an_euler_step_and_deterministic():
    abar = vp_alphas_cumprod("linear", 1000)
    sig, _ = ddpm_sigmas(abar, 10, "trailing")
    x = torch.tensor(3.0, dtype=torch.float64) * torch.sqrt(1 + sig[0] ** 2)
    a = sample_ddim(analytic, x, sig)
    b = sample_euler(analytic, x, sig)
    assert abs(float(a - b)) < 1e-13
    z = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r1 = sample_ddim(analytic, z * 5, sig)
    r2 = sample_ddim(analytic, z * 5, sig)
    assert torch.equal(r1, r2)


@pytest.mark.parametrize(("spacing", "n", "a", "b"), [("leading", 10, 0.374128, 0.298155), ("leading", 50, 0.472439, 0.298911),
                                                       ("trailing", 10, 0.369955, 0.299295), ("trailing", 50, 0.471403, 0.299102)])  # fmt: skip
def test_ddim_affine_map_reference(spacing, n, a, b):
    abar = vp_alphas_cumprod("linear", 1000)
    sig, _ = ddpm_sigmas(abar, n, spacing)

    def run(z: float) -> float:
        return float(
            sample_ddim(analytic, torch.tensor(z, dtype=torch.float64) * torch.sqrt(1 + sig[0] ** 2), sig)
        )

    assert run(0.0) == pytest.approx(b, abs=1e-6)
    assert run(1.0) - run(0.0) == pytest.approx(a, abs=1e-6)


def test_ddpm_ancestral_variance():
    abar = vp_alphas_cumprod("linear", 1000)
    sig, _ = ddpm_sigmas(abar, 1000, "trailing")
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, dtype=torch.float64, generator=g)
    out = SAMPLERS.get("ddpm")(analytic, z * torch.sqrt(1 + sig[0] ** 2), sig, generator=g)
    assert float(out.std()) == pytest.approx(0.495, abs=0.01)
    assert float(out.mean()) == pytest.approx(MU, abs=0.01)


def test_edm_scalings_and_weight():
    c_skip, c_out, c_in, c_noise = edm_scalings(torch.tensor(0.5, dtype=torch.float64), 0.5)
    assert [float(v) for v in (c_skip, c_out, c_in, c_noise)] == pytest.approx(
        [0.5, 0.353553, 1.414214, -0.173287], abs=1e-6
    )
    for s in (0.01, 0.3, 2.0, 50.0):
        sig = torch.tensor(s, dtype=torch.float64)
        _, c_out, _, _ = edm_scalings(sig, 0.7)
        weight = (s**2 + 0.7**2) / (s * 0.7) ** 2
        assert float(weight * c_out**2) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(("name", "ref"), [("euler", [0.4673, 0.7304, 0.8461]), ("heun", [2.5158, 1.2196, 1.0552]),
                                           ("lms", [0.4916, 0.8265, 0.9543]), ("dpmpp_2m", [0.8653, 1.1588, 1.0623])])  # fmt: skip
def test_zero_network_through_edm_preconditioning(name, ref):
    edm = EDM(sigma_data=S)
    zero = lambda inp, t: torch.zeros_like(inp[:, 1:])  # noqa: E731 - the Bayes-optimal F for μ = 0
    denoise = edm.denoiser(zero, torch.zeros(1, 1, 1, 1, dtype=torch.float64))
    for n, expected in zip((5, 10, 18), ref, strict=True):
        sig = edm.sampling_sigmas(n, name)
        out = SAMPLERS.get(name)(denoise, torch.ones(1, 1, 1, 1, dtype=torch.float64) * sig[0], sig)
        assert float(out) / S == pytest.approx(expected, abs=1e-4)  # output std / σ_d for x_T ~ σ_max z


@pytest.mark.parametrize("cls", [EpsVP, VPredVP])
def test_vp_denoisers_recover_the_analytic_denoiser(cls):
    """Feed each parameterisation the exact network output; its D must equal the analytic denoiser."""
    param = cls("linear", 1000)
    x0_mean = MU

    def ideal(inp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x_vp = inp[:, 1:]
        abar = param.abar[t.round().long()].to(x_vp).view(-1, 1, 1, 1)
        sigma = torch.sqrt((1 - abar) / abar)
        x_ve = x_vp / torch.sqrt(abar)
        d = analytic(x_ve, sigma)
        eps = (x_ve - d) / sigma
        return eps if cls is EpsVP else abar.sqrt() * eps - (1 - abar).sqrt() * d

    denoise = param.denoiser(ideal, torch.zeros(2, 1, 2, 2, dtype=torch.float64))
    sig, _ = ddpm_sigmas(param.abar, 10)
    x = torch.randn(2, 1, 2, 2, dtype=torch.float64) * 3 + x0_mean
    for s in sig[:-1]:
        torch.testing.assert_close(denoise(x, s), analytic(x, s), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("n", "std", "mse"),
    [(1, 0.2236, 0.2010), (2, 0.335, 0.214), (5, 0.429, 0.243), (10, 0.463, 0.259), (100, 0.4955, 0.275)],
)
def test_indi_analytic_gaussian(n, std, mse):
    """y = x + w: F*(x_t, t) = μ + s²/(s² + t²τ²)(x_t − μ); the sampler is affine in y."""
    tau = 1.0

    def f_star(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = t.view(-1, *([1] * (x.ndim - 1))).to(x)
        return MU + S**2 / (S**2 + tt**2 * tau**2) * (x - MU)

    y = torch.tensor([[MU], [MU + 1.0]], dtype=torch.float64)
    out = indi_sample(f_star, y, n)
    b0, a = float(out[0]), float(out[1] - out[0])  # x̂ = μ + a (y − μ) + (b0 − μ)
    assert b0 == pytest.approx(MU, abs=1e-12)
    assert a * math.sqrt(S**2 + tau**2) == pytest.approx(std, abs=0.002)
    exact_mse = (a - 1) ** 2 * S**2 + a**2 * tau**2
    assert exact_mse == pytest.approx(mse, abs=0.003)
    if n == 1:
        assert exact_mse == pytest.approx(0.2, abs=1e-12)  # MMSE regression


def test_indi_is_euler_in_t():
    f = lambda x, t: 0.5 * x + 0.1  # noqa: E731
    y = torch.linspace(-1, 1, 5, dtype=torch.float64)
    grid = torch.linspace(1, 0, 8, dtype=torch.float64)
    euler = sample_euler(lambda x, s: f(x, s), y, grid)
    assert torch.allclose(indi_sample(lambda x, t: f(x, t), y, 7), euler, rtol=1e-12)


def test_unknown_sampler_names_the_key():
    with pytest.raises(ValueError, match=r"model.sampler: unknown sampler 'plms'"):
        SAMPLERS.get("plms", "model.sampler")


@pytest.mark.parametrize("name", PARAMETERIZATIONS.names())
@pytest.mark.parametrize("sampler", ["euler", "ddim"])
def test_initial_noise_scale_is_the_start_std(name, sampler):
    """x_T = scale · z: σ_max for EDM, sqrt(1 + σ_max²) (x_vp ~ N(0, 1), x = x_vp/√ᾱ) for VP."""
    param = make_parameterization(name, schedule="cosine", timesteps=200, sigma_data=0.7, sigma_max=40.0)
    assert isinstance(param, Parameterization)
    assert not hasattr(param, "prior_std")
    sigmas = param.sampling_sigmas(7, sampler)
    expected = float(sigmas[0]) if name == "edm" else float((1 + sigmas[0] ** 2) ** 0.5)
    assert param.initial_noise_scale(sigmas) == expected
    assert param.initial_noise_scale(float(sigmas[0])) == pytest.approx(expected, rel=1e-15)
    if name == "edm":
        assert expected == pytest.approx(40.0, rel=1e-14)
    else:
        assert expected == pytest.approx(1 / math.sqrt(float(param.abar[-1])), rel=1e-12)

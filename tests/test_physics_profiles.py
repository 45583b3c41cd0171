"""Profiles, R50 and centres against closed forms (exponential disk, NFW, Plummer, Gaussian)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from astropy import units as u
from conftest import disk_map
from scipy.optimize import brentq

import physics as ph

BOX, RD, S0 = 50.0, 3.0, 1e9


def _disk_mass_within(r: float) -> float:
    x = r / RD
    return 2 * math.pi * S0 * RD**2 * (1 - (1 + x) * math.exp(-x))


def test_disk_total_mass_and_r50_closed_form():
    assert _disk_mass_within(1e3) == pytest.approx(5.6549e10, rel=1e-4)
    assert 1.678347 * RD == pytest.approx(5.0350, abs=1e-4)
    r50_ap = brentq(lambda r: _disk_mass_within(r) - 0.5 * _disk_mass_within(25.0), 1, 20)
    assert r50_ap == pytest.approx(5.0243, abs=1e-4)
    for n, tol in [(128, 1e-3), (256, 1e-3), (512, 2e-4)]:
        d = disk_map(n, BOX, RD)
        assert ph.half_mass_radius(d, BOX / n) == pytest.approx(r50_ap, rel=tol)
    d = disk_map(256, BOX, RD)
    cog = ph.curve_of_growth(d, [3.0, 10.0, 25.0], BOX / 256)
    expected = [_disk_mass_within(r) for r in (3.0, 10.0, 25.0)]
    np.testing.assert_allclose(cog.mass, expected, rtol=2e-3)


@pytest.mark.parametrize("radius_px", [2.0, 3.0, 4.0, 8.0])
@pytest.mark.parametrize(
    ("shape", "center_px"), [((40, 40), (0.0, 0.0)), ((41, 40), (0.5, 0.5)), ((33, 35), (0.3, -1.7))]
)
def test_uniform_field_encloses_exactly_pi_r_squared(radius_px, shape, center_px):
    """Exact pixel–circle overlap: πR² for a uniform field, centred anywhere (no π/12 px² ramp bias)."""
    dx, level = 0.5, 3.0
    field = np.full((2, *shape), level)
    center = np.asarray(center_px) * dx
    mass = ph.curve_of_growth(field, [radius_px * dx], dx, center=center).mass
    np.testing.assert_allclose(mass, level * math.pi * (radius_px * dx) ** 2, rtol=1e-13)
    ramp_bias = level * math.pi / 12 * dx**2  # what the old one-pixel radial ramp added
    assert np.all(np.abs(mass - level * math.pi * (radius_px * dx) ** 2) < 1e-9 * ramp_bias)


@pytest.mark.parametrize("radius", [0.5, 1.0, 1.2, 1.4, 2.0])
def test_single_pixel_overlap_closed_form(radius):
    """One unit pixel with a corner on the circle's centre: quarter disk ∩ unit square."""
    field = np.zeros((8, 8))
    field[4, 4] = 1.0  # spans [0, 1] x [0, 1] from the centre of an even map
    if radius <= 1:
        expected = math.pi * radius**2 / 4
    elif radius < math.sqrt(2):
        expected = math.sqrt(radius**2 - 1) + radius**2 * (math.pi / 4 - math.acos(1 / radius))
    else:
        expected = 1.0
    assert ph.curve_of_growth(field, [radius], 1.0).mass[0] == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("radius_px", [2.0, 3.0, 4.0, 8.0])
def test_exponential_disk_at_small_radii(radius_px):
    """M(<R) of a pixel-averaged exponential disk against 2πΣ0R_d²(1 − (1+x)e^−x).

    The uniform-pixel overlap leaves only the field's gradient across the edge pixels: to
    first order M reads low by c/(R R_d) with c between 1/12 and 1/6 (px units), smoothly
    in R, where the old ramp added lattice noise of up to 2e-2 at these radii.
    """
    rd = 10.0
    disk = disk_map(64, 64.0, rd, sigma0=1.0, supersample=16)  # 1 px = 1 kpc
    x = radius_px / rd
    exact = 2 * math.pi * rd**2 * (1 - (1 + x) * math.exp(-x))
    err = ph.curve_of_growth(disk, [radius_px], 1.0).mass[0] / exact - 1
    assert -1 / (6 * radius_px * rd) < err < -1 / (12 * radius_px * rd)


def test_disk_profile_and_r90_concentration():
    d = disk_map(256, BOX, RD)
    prof = ph.radial_profile(d, BOX / 256)
    use = (prof.radius > 1.0) & (prof.radius < 24.0)
    np.testing.assert_allclose(prof.value[use], S0 * np.exp(-prof.radius[use] / RD), rtol=3e-3)

    def frac(f: float) -> float:
        return brentq(lambda r: _disk_mass_within(r) - f * _disk_mass_within(25.0), 1e-3, 25)

    r = ph.radius_enclosing(d, [0.2, 0.9], BOX / 256)
    np.testing.assert_allclose(r, [frac(0.2), frac(0.9)], rtol=3e-3)
    c = ph.concentration(d, BOX / 256)
    assert c == pytest.approx(5 * math.log10(frac(0.8) / frac(0.2)), abs=0.01)


def _nfw_f(x):
    x = np.asarray(x, dtype=float)
    out = np.full_like(x, 1 / 3)
    lo, hi = x < 1, x > 1
    out[lo] = (1 - 2 * np.arctanh(np.sqrt((1 - x[lo]) / (1 + x[lo]))) / np.sqrt(1 - x[lo] ** 2)) / (
        x[lo] ** 2 - 1
    )
    out[hi] = (1 - 2 * np.arctan(np.sqrt((x[hi] - 1) / (1 + x[hi]))) / np.sqrt(x[hi] ** 2 - 1)) / (
        x[hi] ** 2 - 1
    )
    return out


def _nfw_g(x: float) -> float:
    if x < 1:
        return math.log(x / 2) + 2 * math.atanh(math.sqrt((1 - x) / (1 + x))) / math.sqrt(1 - x**2)
    if x > 1:
        return math.log(x / 2) + 2 * math.atan(math.sqrt((x - 1) / (1 + x))) / math.sqrt(x**2 - 1)
    return 1 - math.log(2)


def test_projected_nfw_profile_and_r50():
    rs, rho_s = 20.0, 1e7
    assert 2 * rho_s * rs * _nfw_f(np.array([1.0]))[0] == pytest.approx(1.33333e8, rel=1e-5)
    assert 2 * rho_s * rs * _nfw_f(np.array([0.1]))[0] == pytest.approx(8.11435e8, rel=1e-5)
    assert 4 * math.pi * rho_s * rs**3 * _nfw_g(1.0) == pytest.approx(3.08482e11, rel=1e-5)
    n, box, ss = 256, 200.0, 4
    m = n * ss
    x = (np.arange(m) + 0.5) * box / m - box / 2
    r = np.hypot(*np.meshgrid(x, x, indexing="ij"))
    sigma = (2 * rho_s * rs * _nfw_f(r / rs)).reshape(n, ss, n, ss).mean(axis=(1, 3))
    prof = ph.radial_profile(sigma, box / n)
    use = (prof.radius > 5.0) & (prof.radius < 95.0)
    expected = 2 * rho_s * rs * _nfw_f(prof.radius[use] / rs)
    np.testing.assert_allclose(prof.value[use], expected, rtol=5e-3)
    r50 = brentq(lambda R: _nfw_g(R / rs) - 0.5 * _nfw_g(100.0 / rs), 1.0, 99.0)
    assert ph.half_mass_radius(sigma, box / n) == pytest.approx(r50, rel=2e-3)
    mass = ph.curve_of_growth(sigma, [rs], box / n).mass[0]
    assert mass == pytest.approx(4 * math.pi * rho_s * rs**3 * _nfw_g(1.0), rel=5e-3)


def test_gaussian_and_plummer_r50():
    n, box = 256, 40.0
    x = (np.arange(n) + 0.5) * box / n - box / 2
    r = np.hypot(*np.meshgrid(x, x, indexing="ij"))
    s = 2.0
    gauss = np.exp(-(r**2) / (2 * s**2))
    assert ph.half_mass_radius(gauss, box / n) == pytest.approx(1.17741 * s, rel=2e-3)
    a = 3.0
    plummer = a**2 / (math.pi * (a**2 + r**2) ** 2)
    r_ap = box / 2
    # M(<R) ∝ R²/(a²+R²): solve R²/(a²+R²) = ½ R_ap²/(a²+R_ap²)
    q = 0.5 * r_ap**2 / (a**2 + r_ap**2)
    assert ph.half_mass_radius(plummer, box / n) == pytest.approx(a * math.sqrt(q / (1 - q)), rel=2e-3)


def test_centres_and_offset():
    n = 64
    x = np.arange(n) + 0.5 - n / 2
    yy, xx = np.meshgrid(x, x, indexing="ij")
    blob = np.exp(-((yy - 5.0) ** 2 + (xx + 3.0) ** 2) / 8.0)
    c = ph.find_center(blob, 0.5, center="com")
    np.testing.assert_allclose(c, [2.5, -1.5], atol=1e-6)
    peak = ph.find_center(blob, 0.5, center="peak")
    np.testing.assert_allclose(peak, [2.5, -1.5], atol=0.26)
    centred = np.exp(-(yy**2 + xx**2) / 8.0)
    d = ph.center_offset(blob, centred, 0.5)
    assert d == pytest.approx(0.5 * math.hypot(5, 3), rel=1e-6)
    prof = ph.radial_profile(blob, 0.5, center="com", bins=8, r_max=4.0)
    assert prof.value[0] > prof.value[-1]
    given = ph.radial_profile(blob, 0.5, center=(2.5, -1.5), bins=8, r_max=4.0)
    np.testing.assert_allclose(given.value, prof.value, rtol=1e-6)


def test_profile_units_and_torch():
    d = disk_map(64, BOX, RD) * u.Msun / u.kpc**2
    prof = ph.radial_profile(d, extent=[-25, 25, -25, 25] * u.kpc)
    assert prof.radius.unit == u.kpc and prof.value.unit == u.Msun / u.kpc**2
    m = ph.curve_of_growth(d, 10 * u.kpc, BOX / 64 * u.kpc).mass
    assert m.unit.is_equivalent(u.Msun)
    t = ph.half_mass_radius(torch.from_numpy(d.value).float(), BOX / 64)
    assert t.dtype == torch.float64


class TestBadInput:
    def test_negative_mass(self):
        x = np.ones((16, 16))
        x[0, 0] = -1
        with pytest.raises(ValueError, match="field has 1 negative pixel"):
            ph.half_mass_radius(x, 1.0)

    def test_empty_map(self):
        with pytest.raises(ValueError, match="all zero"):
            ph.half_mass_radius(np.zeros((16, 16)), 1.0)

    def test_unknown_centre_and_fraction(self):
        with pytest.raises(ValueError, match="unknown center 'middle'"):
            ph.radial_profile(np.ones((8, 8)), 1.0, center="middle")
        with pytest.raises(ValueError, match="fraction must be in"):
            ph.radius_enclosing(np.ones((8, 8)), 1.5, 1.0)


def _grid_enclosed(t, centre, radius):
    """Reference: the exact-overlap enclosed mass summed over every pixel of the map (the
    disk-quadrant areas at all (H+1)×(W+1) corners, inclusion–exclusion), float64."""
    from physics._kernels import _corner_area

    height, width = t.shape[-2:]
    rows = torch.arange(height + 1, dtype=torch.float64) - height / 2
    cols = torch.arange(width + 1, dtype=torch.float64) - width / 2
    y = (rows - centre[..., 0, None])[..., None, :, None]
    x = (cols - centre[..., 1, None])[..., None, None, :]
    r = radius[..., :, None, None]
    area = _corner_area(y, x, r)
    frac = area[..., 1:, 1:] - area[..., :-1, 1:] - area[..., 1:, :-1] + area[..., :-1, :-1]
    yc, xc = 0.5 * (y[..., 1:, :] + y[..., :-1, :]), 0.5 * (x[..., 1:] + x[..., :-1])
    near = torch.hypot(torch.clamp(yc.abs() - 0.5, min=0.0), torch.clamp(xc.abs() - 0.5, min=0.0))
    far = torch.hypot(yc.abs() + 0.5, xc.abs() + 0.5)
    frac = torch.where(far <= r, 1.0, torch.where(near >= r, 0.0, frac.clamp(0.0, 1.0)))
    return (t[..., None, :, :] * frac).sum(dim=(-2, -1))


def _bisected_radius(t, centre, r_ap, fractions, steps):
    """Reference root: ``steps`` bisections of ``[0, r_ap]`` on the whole-grid enclosed mass for each
    of ``fractions`` ``(F,)`` of the mass inside ``r_ap`` → ``(..., F)`` [pixels], float64."""
    total = _grid_enclosed(t, centre, r_ap[..., None])
    lo = torch.zeros(*r_ap.shape, len(fractions), dtype=torch.float64)
    hi = r_ap[..., None].expand_as(lo).clone()
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        below = _grid_enclosed(t, centre, mid) < fractions * total
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("n", [33, 64])
def test_radius_at_fraction_matches_a_long_bisection(n):
    """The root search (first bracket, multisection, false position) agrees with a 50-step
    bisection of the enclosed mass (float64) to 1e-9 pixel on compact and extended disks, a
    noise field, a two-clump map and a sparse map (10 % of pixels), whose 10 %, 50 % and
    90 % radii lie where the enclosed mass rises."""
    from physics._kernels import radius_at_fraction

    g = torch.Generator().manual_seed(n)
    x = (torch.arange(n) + 0.5 - n / 2).double()
    r = torch.sqrt(x[:, None] ** 2 + x[None, :] ** 2)
    smooth = [torch.exp(-r / s) * (1 + torch.rand(n, n, generator=g, dtype=torch.float64)) for s in (1.0, 3.0, n / 4)]
    clumps = ((r < n / 6) & (r > n / 8)).double() + (r < 1).double()
    sparse = torch.rand(n, n, generator=g, dtype=torch.float64) * (torch.rand(n, n, generator=g, dtype=torch.float64) < 0.1)
    maps = torch.stack([*smooth, torch.rand(n, n, generator=g, dtype=torch.float64) ** 8, clumps, sparse])
    centre = torch.zeros(len(maps), 2, dtype=torch.float64)
    r_ap = torch.full((len(maps),), n / 2, dtype=torch.float64)
    fractions = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    got = radius_at_fraction(maps, centre, r_ap, fractions)
    assert torch.allclose(got, _bisected_radius(maps, centre, r_ap, fractions, 50), rtol=0, atol=1e-9)


def test_radius_at_fraction_on_sparse_maps_where_the_mass_has_kinks():
    """Twenty sparse 16² maps (10 % of pixels): the enclosed mass has a kink wherever the circle
    crosses a pixel corner, so the false-position steps need a narrow bracket; the root agrees
    with a 60-step bisection to 1e-9 px (a 2⁻⁶-px bracket missed one of them by 4e-8 px)."""
    from physics._kernels import radius_at_fraction

    f64 = {"dtype": torch.float64}
    maps = []
    for seed in range(170, 190):
        g = torch.Generator().manual_seed(seed)
        maps.append(torch.rand(16, 16, generator=g, **f64) * (torch.rand(16, 16, generator=g, **f64) < 0.1))
    t = torch.stack(maps)
    centre, r_ap = torch.zeros(20, 2, **f64), torch.full((20,), 8.0, **f64)
    fractions = torch.tensor([0.2, 0.5, 0.8], **f64)
    reference = _bisected_radius(t, centre, r_ap, fractions, 60)
    assert torch.allclose(radius_at_fraction(t, centre, r_ap, fractions), reference, rtol=0, atol=1e-9)


@pytest.mark.parametrize("maps", [(2, 3), (4, 1)])
def test_enclosed_maps_against_several_centres_and_an_empty_batch(maps):
    """Maps ``(..., H, W)`` broadcast against three distinct centres ``(3, 2)`` (a batch of 2×3
    maps; 4 maps each seen from the 3 centres) equal the whole-grid sum, and the root search
    runs on them; an empty batch gives an empty result."""
    from physics._kernels import _PixelsByDistance, radius_at_fraction

    f64 = {"dtype": torch.float64}
    g = torch.Generator().manual_seed(len(maps) + maps[-1])
    t = torch.rand(*maps, 16, 16, generator=g, **f64)
    centre = (torch.rand(3, 2, generator=g, **f64) - 0.5) * 4
    radii = torch.tensor([[0.0, 2.0, 5.5, 30.0]], **f64).expand(3, 4)
    got = _PixelsByDistance.of(t, centre).enclosed(radii)
    batch = torch.broadcast_shapes(maps, (3,))
    assert got.shape == (*batch, 4)
    assert torch.allclose(got, _grid_enclosed(t, centre, radii).expand(*batch, 4), rtol=1e-13, atol=0)
    half = radius_at_fraction(t, centre, torch.full((3,), 8.0, **f64), torch.tensor([0.5], **f64))
    assert half.shape == (*batch, 1) and bool((half > 0).all())
    empty = _PixelsByDistance.of(torch.zeros(0, 16, 16, **f64), torch.zeros(0, 2, **f64))
    assert empty.enclosed(torch.ones(0, 1, **f64)).shape == (0, 1)


def test_radius_at_fraction_on_a_flat_stretch_is_its_inner_edge():
    """Where the enclosed mass is flat at the target the radius is the stretch's inner edge
    (the infimum): a 2×2 core holding half the mass has R50 = √2 px (its far corners), and
    the whole mass of a map is enclosed at its farthest massive pixel's far corner."""
    from physics._kernels import radius_at_fraction

    t = torch.zeros(1, 32, 32, dtype=torch.float64)
    t[0, 15:17, 15:17] = 1.0  # the core about the map centre
    t[0, 16, 27] = 4.0  # a clump 11.5 px right of the centre, as massive as the core
    centre, r_ap = torch.zeros(1, 2, dtype=torch.float64), torch.full((1,), 16.0, dtype=torch.float64)
    got = radius_at_fraction(t, centre, r_ap, torch.tensor([0.5, 1.0], dtype=torch.float64))
    # a circle δ px short of a corner misses ~δ² of the pixel: below float64 rounding of the sums once
    # δ ≲ 1e-8 px (at √2 − 1.2e-8 px the enclosed mass already equals the target), so the sums meet
    # the target or the total that much before the corner
    assert float(got[0, 0]) == pytest.approx(math.sqrt(2), abs=1e-7)
    assert float(got[0, 1]) == pytest.approx(math.hypot(1.0, 12.0), abs=1e-7)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (33, 33), (64, 64), (17, 40)])
def test_enclosed_on_the_crossed_ring_equals_the_whole_grid(shape):
    """The root search's enclosed mass (running sums for the pixels wholly inside, exact
    fractions on the ring of pixels a circle can cross) equals the whole-grid kernel to 1e-13
    relative: random maps, off-centre circles, radii 0, 1e-3 px, inside and beyond the map."""
    from physics._kernels import _PixelsByDistance

    enclosed = _grid_enclosed

    g = torch.Generator().manual_seed(sum(shape))
    t = torch.rand(5, *shape, generator=g, dtype=torch.float64)
    centre = (torch.rand(5, 2, generator=g, dtype=torch.float64) - 0.5) * 4
    radii = torch.rand(5, 7, generator=g, dtype=torch.float64) * max(shape) * 0.8
    radii[:, 0], radii[:, 1], radii[:, 2] = 0.0, 1e-3, 2.0 * max(shape)
    grid = enclosed(t, centre, radii)
    ring = _PixelsByDistance.of(t, centre).enclosed(radii)
    assert torch.allclose(ring, grid, rtol=1e-13, atol=0)
    assert torch.equal(ring[:, 0], torch.zeros(5, dtype=torch.float64))


def test_radius_at_fraction_whole_mass_of_compact_blobs_and_several_centres():
    """R100 (a fraction of 1: the enclosed mass is flat beyond the blob) of compact blobs whose
    edge pixels may be faint equals a 50-step bisection on the whole-grid kernel to 1e-6 px;
    several centres on one map give each centre's own radius."""
    from physics._kernels import radius_at_fraction

    rng = np.random.default_rng(39)
    yy, xx = np.mgrid[:48, :48]
    blobs = []
    for _ in range(8):
        cy, cx = rng.integers(10, 38, 2)
        blobs.append(((yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(1, 6) ** 2) * rng.random((48, 48)))
    t = torch.from_numpy(np.stack(blobs))
    centre = torch.from_numpy(rng.uniform(-2, 2, (8, 2)))
    r_ap = torch.full((8,), 24.0, dtype=torch.float64)
    whole = torch.tensor([1.0], dtype=torch.float64)
    got = radius_at_fraction(t, centre, r_ap, whole)[:, 0]
    assert torch.allclose(got, _bisected_radius(t, centre, r_ap, whole, 50)[:, 0], rtol=0, atol=1e-6)
    one = t[0]
    both = radius_at_fraction(one, centre[:2], r_ap[:2], torch.tensor([0.5], dtype=torch.float64))
    each = [radius_at_fraction(one, centre[i], r_ap[i], torch.tensor([0.5], dtype=torch.float64)) for i in range(2)]
    assert torch.allclose(both, torch.stack(each), rtol=0, atol=1e-12)

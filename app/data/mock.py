"""Deterministic mock galaxies (version 3): six coupled domains with separable random parts.

Each galaxy is drawn from seeded distributions (``GalaxyParams``, the *smooth* part) and
rendered analytically. Three *random parts* are drawn from their own seeds
(``Realisation``), so that a **twin** — same galaxy, same view, other random parts — and an
**oracle** — the mean over twins, i.e. what a deterministic predictor that knows the
galaxy could reach — can be rendered for any mapping (the model: ``docs/data.md``):

* ``turbulence``: a log-normal, k⁻³ Gaussian random field in the gas disk plane;
* ``subhaloes``: 8 Plummer subhaloes in 3-D, each carrying a little (hot) gas;
* ``star_clumps``: a log-normal field of the stellar disk and star clusters (``n_clusters``), independent
  of the gas, so that gas → stars is weakly constrained (as the published study finds).

Domains: dark matter (oblate NFW aligned with the disk + subhaloes); stars (exponential disk
× clumps + clusters + Plummer bulge; the bulge fraction and the disk scale are not set by
the gas); gas (turbulent cold disk + hot cored halo + subhalo gas); HI (cold gas times a
neutral fraction set by the *face-on* (intrinsic) cold surface density, so the total HI is
the same from every view); temperature (mass-weighted cold + hot); |B| ∝ Σ_gas^0.6.

Units are the domain table's (``validation.domains.DOMAINS``, re-exported by
``app.data.domains``): Σ in ``solMass / kpc2`` (dm, star, gas, hi), T in ``K``, |B| in ``G``;
lengths and the extent in kpc. Field of view ``[-R, R]²`` with ``R = extent_factor ×`` the
projected gas half-mass radius.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.optimize import brentq

from app.data.domains import get_domain

__all__ = [
    "MOCK_DOMAINS",
    "MOCK_VERSION",
    "RANDOM_PARTS",
    "REVEALS",
    "GalaxyParams",
    "Realisation",
    "oracle",
    "realisation",
    "render",
    "sample_params",
    "twin",
]

#: the domains the mock renders (keys of the domain table), in the order ``render`` returns them
MOCK_DOMAINS = ("dm", "star", "gas", "hi", "temp", "bfield")
MOCK_VERSION = 3  # bump whenever the model changes, so cached sets are written anew
SNAPSHOT_REDSHIFT = {50: 1.0, 67: 0.5, 78: 0.3, 84: 0.2, 91: 0.1, 99: 0.0}
G_KPC = 4.30091e-6  # kpc (km/s)² / Msun
RHO_CRIT0 = 127.4  # Msun / kpc³ for h = 0.6774
OMEGA_M = 0.3089
X_H = 0.76
SIGMA_HI_CRIT = 10**6.8  # Msun/kpc², face-on cold Σ where the neutral fraction is X_H / 2
STAR_PARTICLE_FLOOR = 1e4  # Msun/kpc²: below one TNG50 star particle per (3 kpc)², pixels are empty
HI_FLOOR = 1.0  # Msun/kpc²
HALO_AXIS_RATIO = 0.7  # intrinsic minor/major axis ratio of the (oblate, disk-aligned) inner halo
SUBHALO_GAS_FRACTION = 0.02  # gas mass of a subhalo / its dark mass
CLUSTER_FRACTION = 0.03  # stellar-disk mass fraction of each cluster
SUPERSAMPLE = 4  # sub-pixels per pixel side

#: the random parts of a galaxy, each with its own seed
RANDOM_PARTS = ("turbulence", "subhaloes", "star_clumps")
#: random parts that a map of each domain shows (a predictor from that domain can know them)
REVEALS: dict[str, tuple[str, ...]] = {
    "dm": ("subhaloes",),
    "star": ("star_clumps",),
    "gas": ("turbulence", "subhaloes"),
    "hi": ("turbulence",),
    "temp": ("turbulence", "subhaloes"),
    "bfield": ("turbulence", "subhaloes"),
}


@dataclass(frozen=True)
class GalaxyParams:
    """The smooth part of one mock galaxy (masses in Msun, lengths in kpc, T in K, B in G)."""

    gid: int
    snapshot: int
    m200: float
    c200: float
    r200: float
    m_star: float
    r_d: float
    bulge_fraction: float
    a_bulge: float
    m_gas_disk: float
    r_gas: float
    m_hot: float
    r_core: float
    turb_sigma: float
    star_sigma: float
    t_vir: float
    b0: float
    half_extent: float
    seed: int
    n_sub: int = 8
    sub_fraction: float = 0.05
    n_clusters: int = 6


@dataclass(frozen=True)
class Realisation:
    """Seeds of the three random parts of a galaxy (``RANDOM_PARTS``)."""

    turbulence: int
    subhaloes: int
    star_clumps: int


def _rho_crit(z: float) -> float:
    return RHO_CRIT0 * (OMEGA_M * (1 + z) ** 3 + 1 - OMEGA_M)


def _exp_disk_mass(r: float, m: float, r_d: float) -> float:
    return m * (1 - (1 + r / r_d) * math.exp(-r / r_d))


def _hot_mass(r: float, m: float, r_c: float) -> float:
    return m * (1 - 1 / math.sqrt(1 + (r / r_c) ** 2))


def sample_params(gid: int, snapshot: int = 99, seed: int = 0, extent_factor: float = 2.0) -> GalaxyParams:
    """Draw a galaxy's smooth part, deterministically from ``(seed, snapshot, gid)``."""
    rng = np.random.default_rng([seed, snapshot, gid])
    z = SNAPSHOT_REDSHIFT.get(snapshot, 0.0)
    m200 = 10 ** rng.uniform(11.0, 12.5)
    c200 = 9.0 * (m200 / 1e12) ** -0.1 * 10 ** rng.normal(0, 0.1)
    r200 = (3 * m200 / (4 * math.pi * 200 * _rho_crit(z))) ** (1 / 3)
    m_star = 0.03 * m200 * (m200 / 1e12) ** 0.3 * 10 ** rng.normal(0, 0.15)
    r_d = 0.018 * r200 * 10 ** rng.normal(0, 0.1)
    m_gas_disk = m_star * 10 ** rng.uniform(-0.7, 0.2)
    r_gas = 1.7 * r_d * 10 ** rng.normal(0, 0.1)  # scatter: the gas does not fix the stellar scale
    m_hot = 0.03 * m200 * rng.uniform(0.5, 1.5)
    r_core = 0.08 * r200
    v200 = math.sqrt(G_KPC * m200 / r200)
    total = m_gas_disk + m_hot
    gas_half = brentq(
        lambda r: _exp_disk_mass(r, m_gas_disk, r_gas) + _hot_mass(r, m_hot, r_core) - 0.5 * total, 1e-3, 1e4
    )
    return GalaxyParams(
        gid=gid, snapshot=snapshot, m200=m200, c200=c200, r200=r200, m_star=m_star, r_d=r_d,
        bulge_fraction=rng.uniform(0.0, 0.4), a_bulge=0.3 * r_d, m_gas_disk=m_gas_disk, r_gas=r_gas,
        m_hot=m_hot, r_core=r_core, turb_sigma=rng.uniform(0.3, 0.7), star_sigma=rng.uniform(0.4, 0.8),
        t_vir=35.9 * v200**2, b0=10 ** rng.uniform(-5.5, -5.0), half_extent=extent_factor * gas_half,
        seed=int(rng.integers(2**31)),
    )  # fmt: skip


def realisation(p: GalaxyParams, twin: int = 0, keep: Iterable[str] = ()) -> Realisation:
    """Seeds of the random parts: ``twin=0`` is the galaxy itself; ``twin=k`` redraws every
    part not in ``keep`` from seed ``(p.seed, k, part)`` (independent of the original)."""
    keep = set(keep)
    unknown = keep - set(RANDOM_PARTS)
    if unknown:
        raise ValueError(f"keep: unknown random part(s) {sorted(unknown)}; choose from {RANDOM_PARTS}")
    if twin < 0:
        raise ValueError(f"twin must be >= 0, got {twin}")
    seeds = {}
    for i, part in enumerate(RANDOM_PARTS):
        if twin == 0 or part in keep:
            seeds[part] = int(np.random.default_rng([p.seed, i]).integers(2**31))
        else:
            seeds[part] = int(np.random.default_rng([p.seed, i, twin]).integers(2**31))
    return Realisation(**seeds)


def _rotation(theta_deg: float, phi_deg: float) -> np.ndarray:
    """Rotation about x by θ, then about y by φ (the mapper's convention)."""
    t, p = math.radians(theta_deg), math.radians(phi_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    return ry @ rx


def _nfw_f(x: np.ndarray) -> np.ndarray:
    out = np.full_like(x, 1 / 3)
    lo, hi = x < 1 - 1e-6, x > 1 + 1e-6
    xl, xh = x[lo], x[hi]
    out[lo] = (1 - 2 * np.arctanh(np.sqrt((1 - xl) / (1 + xl))) / np.sqrt(1 - xl**2)) / (xl**2 - 1)
    out[hi] = (1 - 2 * np.arctan(np.sqrt((xh - 1) / (1 + xh))) / np.sqrt(xh**2 - 1)) / (xh**2 - 1)
    return out


def _plummer(r2: np.ndarray, m: float, a: float) -> np.ndarray:
    return m * a**2 / (math.pi * (a**2 + r2) ** 2)


def _grf(seed: int, n: int = 256) -> np.ndarray:
    """Zero-mean unit-variance periodic Gaussian random field with P ∝ k⁻³ on an ``n²`` grid."""
    rng = np.random.default_rng(seed)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    k[0, 0] = np.inf
    g = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) * k**-1.5).real
    return (g - g.mean()) / g.std()


def _lognormal(seed: int, sigma: float, u: np.ndarray, v: np.ndarray, side: float) -> np.ndarray:
    """Mean-one log-normal field ``exp(σ g − σ²/2)`` sampled at disk-plane points (u, v) [kpc]."""
    n = 256
    coords = np.stack([(u / side + 0.5) * n, (v / side + 0.5) * n])
    g = map_coordinates(_grf(seed, n), coords, order=1, mode="grid-wrap")
    return np.exp(sigma * g - sigma**2 / 2)


class _View:
    """Pixel grid of a view: sky coordinates (x, y), disk-plane coordinates (u, v), cos i."""

    def __init__(self, p: GalaxyParams, rotxy: tuple[int, int], size: int) -> None:
        self.rot = _rotation(*rotxy)
        self.pix = 2 * p.half_extent / size
        c = (np.arange(size) + 0.5) * self.pix - p.half_extent
        self.x, self.y = np.meshgrid(c, c, indexing="ij")
        self.r2 = self.x**2 + self.y**2
        proj = self.rot[:2, :2]  # disk plane: (x, y) = P (u, v)
        self.cos_i = abs(np.linalg.det(proj))
        inv = np.linalg.inv(proj)
        self.u = inv[0, 0] * self.x + inv[0, 1] * self.y
        self.v = inv[1, 0] * self.x + inv[1, 1] * self.y
        self.r_disk = np.hypot(self.u, self.v)

    def project(self, disk_points: np.ndarray) -> np.ndarray:
        """Sky (x, y) of 3-D points ``(n, 3)`` given in the galaxy frame."""
        return (disk_points @ self.rot.T)[:, :2]


def _subhaloes(p: GalaxyParams, seed: int, g: _View) -> tuple[np.ndarray, np.ndarray]:
    """Projected dark and gas surface density [Msun/kpc²] of the subhaloes."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(p.n_sub, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    positions = g.project(directions * (0.5 * p.r200 * rng.random(p.n_sub) ** 0.5)[:, None])
    masses = p.sub_fraction * p.m200 * rng.dirichlet(np.ones(p.n_sub))
    dark, gas = np.zeros_like(g.x), np.zeros_like(g.x)
    for (px, py), m in zip(positions, masses, strict=True):
        d2 = (g.x - px) ** 2 + (g.y - py) ** 2
        dark += _plummer(d2, m, 0.02 * p.r200)
        gas += _plummer(d2, SUBHALO_GAS_FRACTION * m, 0.01 * p.r200)
    return dark, gas


def _stars(p: GalaxyParams, seed: int, g: _View) -> np.ndarray:
    """Stellar Σ [Msun/kpc²]: clumpy exponential disk + clusters + bulge, own random part."""
    m_disk = (1 - p.bulge_fraction) * p.m_star
    clumps = _lognormal(seed, p.star_sigma, g.u, g.v, 8 * p.half_extent)
    star = m_disk / (2 * math.pi * p.r_d**2) * np.exp(-g.r_disk / p.r_d) / g.cos_i * clumps
    rng = np.random.default_rng([seed, 1])
    radius = p.r_d * np.sqrt(rng.uniform(0.1, 4.0, p.n_clusters))
    angle = rng.uniform(0, 2 * math.pi, p.n_clusters)
    in_disk = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.zeros(p.n_clusters)], axis=1)
    for px, py in g.project(in_disk):
        star += _plummer((g.x - px) ** 2 + (g.y - py) ** 2, CLUSTER_FRACTION * m_disk, 0.1 * p.r_d)
    star += _plummer(g.r2, p.bulge_fraction * p.m_star, p.a_bulge)
    return np.where(star < STAR_PARTICLE_FLOOR, 0.0, star)


def _dark_halo(p: GalaxyParams, g: _View) -> np.ndarray:
    """Oblate NFW Σ [Msun/kpc²] aligned with the disk, centre softened by half a pixel.

    An oblate spheroid of axis ratio q seen at inclination i projects to an ellipse of axis
    ratio q_p = sqrt(cos²i + q² sin²i), minor axis along the projected disk normal; Σ is
    scaled by 1/q_p so the projected mass is kept.
    """
    r_s = p.r200 / p.c200
    rho_s = p.m200 / (4 * math.pi * r_s**3 * (math.log(1 + p.c200) - p.c200 / (1 + p.c200)))
    normal = g.rot[:2, 2]
    q_p = math.sqrt(g.cos_i**2 + HALO_AXIS_RATIO**2 * (1 - g.cos_i**2))
    r_ell2 = g.r2
    if np.linalg.norm(normal) > 1e-9:
        e = normal / np.linalg.norm(normal)
        m = g.x * e[0] + g.y * e[1]
        r_ell2 = g.r2 - m**2 + (m / q_p) ** 2
    xr = np.maximum(np.sqrt(r_ell2), 0.5 * g.pix) / r_s
    return 2 * rho_s * r_s * _nfw_f(xr) / q_p


def render(
    p: GalaxyParams, rotxy: tuple[int, int], size: int, real: Realisation | None = None, supersample: int = SUPERSAMPLE
) -> dict[str, np.ndarray]:
    """The six domain maps ``(size, size)`` float64 of galaxy ``p`` seen at ``rotxy`` = (θ, φ) degrees.

    ``real`` chooses the random parts (default: the galaxy's own, ``realisation(p)``).
    Each pixel is the mean over ``supersample²`` sub-pixels (``MASS_WEIGHTED`` domains, T and
    |B|, weighted by the gas), in the units of the domain table (module docstring),
    so that totals do not depend on how a thin inclined disk falls on the grid.
    Array axis 0 is x and axis 1 is y (``images[i][ix, iy]``), projected along z.
    """
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    fine = _render_points(p, rotxy, size * supersample, realisation(p) if real is None else real)
    if supersample == 1:
        return fine

    def pool(x: np.ndarray) -> np.ndarray:
        return x.reshape(size, supersample, size, supersample).mean(axis=(1, 3))

    gas = pool(fine["gas"])
    return {
        d: pool(fine[d] * fine["gas"]) / gas if get_domain(d).mass_weighted else pool(fine[d])
        for d in MOCK_DOMAINS
    }


def _render_points(p: GalaxyParams, rotxy: tuple[int, int], size: int, real: Realisation) -> dict[str, np.ndarray]:
    """The six maps sampled at pixel centres (no sub-pixel averaging)."""
    g = _View(p, rotxy, size)
    turb = _lognormal(real.turbulence, p.turb_sigma, g.u, g.v, 8 * p.half_extent)
    face_on = p.m_gas_disk / (2 * math.pi * p.r_gas**2) * np.exp(-g.r_disk / p.r_gas) * turb
    cold = face_on / g.cos_i
    sub_dark, sub_gas = _subhaloes(p, real.subhaloes, g)
    hot = p.m_hot / (2 * math.pi * p.r_core**2) * (1 + g.r2 / p.r_core**2) ** -1.5 + sub_gas
    gas = cold + hot
    # neutral fraction from the intrinsic (face-on) cold column: view-independent HI mass
    hi_face = X_H * face_on**3 / (face_on**2 + SIGMA_HI_CRIT**2)
    hi = np.where(hi_face < HI_FLOOR, 0.0, hi_face / g.cos_i)  # the floor cuts the intrinsic column
    t_cold = np.clip(1e4 * (np.maximum(face_on, 1.0) / 1e7) ** -0.3, 5e3, 3e4)
    t_hot = p.t_vir * (1 + np.sqrt(g.r2) / p.r_core) ** -0.3
    return {
        "dm": _dark_halo(p, g) + sub_dark,
        "star": _stars(p, real.star_clumps, g),
        "gas": gas,
        "hi": hi,
        "temp": (cold * t_cold + hot * t_hot) / gas,
        "bfield": p.b0 * (gas / 1e7) ** 0.6,
    }


def twin(p: GalaxyParams, rotxy: tuple[int, int], size: int, source: str, k: int = 1) -> dict[str, np.ndarray]:
    """Twin ``k ≥ 1`` of the view: the random parts that ``source`` shows are kept, the others redrawn.

    Returns ``render``'s maps: ``{domain: (size, size) float64}`` for every ``MOCK_DOMAINS``.

    Scored against the truth, a twin is what a perfect *generative* model — one that knows
    the galaxy and samples the rest — would show (the floor of a mapping from ``source``).
    """
    return render(p, rotxy, size, realisation(p, k, REVEALS[source]))


def oracle(
    p: GalaxyParams, rotxy: tuple[int, int], size: int, source: str, n_twins: int = 16
) -> dict[str, np.ndarray]:
    """Mean of ``n_twins`` twins: the conditional mean given the galaxy's smooth part and the
    random parts ``source`` shows — what a deterministic predictor can reach (Monte Carlo).
    Returns ``{domain: (size, size) float64}`` for every ``MOCK_DOMAINS``."""
    if n_twins < 1:
        raise ValueError(f"n_twins must be >= 1, got {n_twins}")
    maps = [twin(p, rotxy, size, source, k) for k in range(1, n_twins + 1)]
    return {d: np.mean([m[d] for m in maps], axis=0) for d in MOCK_DOMAINS}


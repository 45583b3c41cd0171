"""Deterministic mock galaxies written in the real TNG50 map layout.

Each galaxy is drawn from seeded distributions and rendered analytically in six domains
that are physically coupled, so that translation between them is learnable and the
physics statistics are meaningful (the model and its parameters: ``docs/data.md``):

* dark matter: an oblate NFW halo aligned with the disk (axis ratio 0.7, so its projection
  shows the viewing angle) plus Plummer subhaloes placed in 3-D and rotated;
* stars: exponential disk (seen at the viewing angle) plus a Plummer bulge, modulated by
  the same log-normal turbulence as the gas (to a weaker power), so they correlate;
* gas: exponential cold disk with log-normal turbulence plus a hot cored halo;
* HI: cold gas times a neutral fraction rising with the total gas surface density
  (``X_H Σ²/(Σ² + Σ_c²)`` with ``X_H = 0.76``, so HI ≤ gas everywhere);
* temperature: cold-disk temperature falling with density, hot halo near virial,
  combined mass-weighted along the line of sight;
* |B|: a power of the gas surface density, ``B0 (Σ_gas / 10⁷ Msun kpc⁻²)^0.6``.

Units: Σ in Msun/kpc², T in K, |B| in G, extent in kpc. The field of view is
``[-R, R]²`` with ``R = extent_factor ×`` the projected gas half-mass radius.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy.ndimage import map_coordinates
from scipy.optimize import brentq

__all__ = ["MOCK_DOMAINS", "GalaxyParams", "params_table", "render", "sample_params", "write_mock_set"]

MOCK_DOMAINS = ("dm", "star", "gas", "hi", "temp", "bfield")
MOCK_VERSION = 2  # bump whenever the model changes, so cached sets are rewritten
UNITS = {"dm": "solMass / kpc2", "star": "solMass / kpc2", "gas": "solMass / kpc2",
         "hi": "solMass / kpc2", "temp": "K", "bfield": "G"}  # fmt: skip
SNAPSHOT_REDSHIFT = {50: 1.0, 67: 0.5, 78: 0.3, 84: 0.2, 91: 0.1, 99: 0.0}
G_KPC = 4.30091e-6  # kpc (km/s)² / Msun
RHO_CRIT0 = 127.4  # Msun / kpc³ for h = 0.6774
OMEGA_M = 0.3089
X_H = 0.76
SIGMA_HI_CRIT = 10**6.8  # Msun/kpc², neutral fraction 1/2 of X_H
STAR_PARTICLE_FLOOR = 1e4  # Msun/kpc²: below one TNG50 star particle per (3 kpc)², pixels are empty
HI_FLOOR = 1.0  # Msun/kpc²
HALO_AXIS_RATIO = 0.7  # intrinsic minor/major axis ratio of the (oblate, disk-aligned) inner halo


@dataclass(frozen=True)
class GalaxyParams:
    """Physical parameters of one mock galaxy (masses in Msun, lengths in kpc)."""

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
    t_vir: float
    b0: float
    half_extent: float
    seed: int
    n_sub: int = 8
    sub_fraction: float = 0.05


def _rho_crit(z: float) -> float:
    return RHO_CRIT0 * (OMEGA_M * (1 + z) ** 3 + 1 - OMEGA_M)


def _exp_disk_mass(r: float, m: float, r_d: float) -> float:
    return m * (1 - (1 + r / r_d) * math.exp(-r / r_d))


def _hot_mass(r: float, m: float, r_c: float) -> float:
    return m * (1 - 1 / math.sqrt(1 + (r / r_c) ** 2))


def sample_params(gid: int, snapshot: int = 99, seed: int = 0, extent_factor: float = 2.0) -> GalaxyParams:
    """Draw a galaxy's parameters, deterministically from ``(seed, snapshot, gid)``."""
    rng = np.random.default_rng([seed, snapshot, gid])
    z = SNAPSHOT_REDSHIFT.get(snapshot, 0.0)
    m200 = 10 ** rng.uniform(11.0, 12.5)
    c200 = 9.0 * (m200 / 1e12) ** -0.1 * 10 ** rng.normal(0, 0.1)
    r200 = (3 * m200 / (4 * math.pi * 200 * _rho_crit(z))) ** (1 / 3)
    m_star = 0.03 * m200 * (m200 / 1e12) ** 0.3 * 10 ** rng.normal(0, 0.15)
    r_d = 0.018 * r200 * 10 ** rng.normal(0, 0.1)
    m_gas_disk = m_star * 10 ** rng.uniform(-0.7, 0.2)
    r_gas = 1.7 * r_d
    m_hot = 0.03 * m200 * rng.uniform(0.5, 1.5)
    r_core = 0.08 * r200
    v200 = math.sqrt(G_KPC * m200 / r200)
    gas_half = brentq(
        lambda r: (
            _exp_disk_mass(r, m_gas_disk, r_gas) + _hot_mass(r, m_hot, r_core) - 0.5 * (m_gas_disk + m_hot)
        ),
        1e-3,
        1e4,
    )
    return GalaxyParams(
        gid=gid,
        snapshot=snapshot,
        m200=m200,
        c200=c200,
        r200=r200,
        m_star=m_star,
        r_d=r_d,
        bulge_fraction=rng.uniform(0.0, 0.4),
        a_bulge=0.3 * r_d,
        m_gas_disk=m_gas_disk,
        r_gas=r_gas,
        m_hot=m_hot,
        r_core=r_core,
        turb_sigma=rng.uniform(0.3, 0.7),
        t_vir=35.9 * v200**2,
        b0=10 ** rng.uniform(-5.5, -5.0),
        half_extent=extent_factor * gas_half,
        seed=int(rng.integers(2**31)),
    )


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


def _turbulence(p: GalaxyParams, side: float, n: int = 256) -> np.ndarray:
    """Zero-mean unit-variance periodic GRF with P ∝ k⁻³ on an ``n²`` disk-plane grid of ``side`` kpc."""
    rng = np.random.default_rng(p.seed)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    k[0, 0] = np.inf
    g = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) * k**-1.5).real
    return (g - g.mean()) / g.std()


def render(p: GalaxyParams, rotxy: tuple[int, int], size: int) -> dict[str, np.ndarray]:
    """The six domain maps ``(size, size)`` float64 of galaxy ``p`` seen at ``rotxy`` = (θ, φ) degrees.

    Array axis 0 is x and axis 1 is y (``images[i][ix, iy]``), projected along z.
    """
    rot = _rotation(*rotxy)
    r_ext = p.half_extent
    pix = 2 * r_ext / size
    c = (np.arange(size) + 0.5) * pix - r_ext
    x, y = np.meshgrid(c, c, indexing="ij")
    r2 = x**2 + y**2
    # disk plane: (x, y) = P (u, v), P the projected in-plane basis
    proj = rot[:2, :2]
    cos_i = abs(np.linalg.det(proj))
    u, v = np.linalg.solve(proj, np.stack([x.ravel(), y.ravel()])).reshape(2, size, size)
    r_disk = np.hypot(u, v)
    side = 8 * r_ext
    grid_n = 256
    turb = _turbulence(p, side, grid_n)
    coords = np.stack([(u / side + 0.5) * grid_n, (v / side + 0.5) * grid_n])
    g = map_coordinates(turb, coords, order=1, mode="grid-wrap")
    s = p.turb_sigma
    clump_gas = np.exp(s * g - s**2 / 2)
    clump_star = np.exp(0.5 * s * g - (0.5 * s) ** 2 / 2)

    # stars: disk + bulge
    m_disk = (1 - p.bulge_fraction) * p.m_star
    star = m_disk / (2 * math.pi * p.r_d**2) * np.exp(-r_disk / p.r_d) / cos_i * clump_star
    star += _plummer(r2, p.bulge_fraction * p.m_star, p.a_bulge)
    star = np.where(star < STAR_PARTICLE_FLOOR, 0.0, star)

    # gas: cold turbulent disk + hot cored halo (Σ ∝ (1 + R²/r_c²)^-3/2, total m_hot)
    cold = p.m_gas_disk / (2 * math.pi * p.r_gas**2) * np.exp(-r_disk / p.r_gas) / cos_i * clump_gas
    hot = p.m_hot / (2 * math.pi * p.r_core**2) * (1 + r2 / p.r_core**2) ** -1.5
    gas = cold + hot

    hi = X_H * cold * gas**2 / (gas**2 + SIGMA_HI_CRIT**2)
    hi = np.where(hi < HI_FLOOR, 0.0, hi)

    t_cold = np.clip(1e4 * (np.maximum(cold, 1.0) / 1e7) ** -0.3, 5e3, 3e4)
    t_hot = p.t_vir * (1 + np.sqrt(r2) / p.r_core) ** -0.3
    temp = (cold * t_cold + hot * t_hot) / gas

    bfield = p.b0 * (gas / 1e7) ** 0.6

    # dark matter: oblate NFW aligned with the disk (centre softened by half a pixel) +
    # subhaloes rotated with the view. An oblate spheroid of axis ratio q seen at inclination
    # i projects to an ellipse of axis ratio q_p = sqrt(cos²i + q² sin²i), its minor axis
    # along the projected disk normal; Σ is scaled by 1/q_p so the projected mass is kept.
    r_s = p.r200 / p.c200
    rho_s = p.m200 / (4 * math.pi * r_s**3 * (math.log(1 + p.c200) - p.c200 / (1 + p.c200)))
    normal = rot[:2, 2]
    q_p = math.sqrt(cos_i**2 + HALO_AXIS_RATIO**2 * (1 - cos_i**2))
    if np.linalg.norm(normal) > 1e-9:
        e = normal / np.linalg.norm(normal)
        m = x * e[0] + y * e[1]
        r_ell2 = r2 - m**2 + (m / q_p) ** 2
    else:
        r_ell2 = r2
    xr = np.maximum(np.sqrt(r_ell2), 0.5 * pix) / r_s
    dm = 2 * rho_s * r_s * _nfw_f(xr) / q_p
    rng = np.random.default_rng(p.seed + 1)
    directions = rng.normal(size=(p.n_sub, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    positions = directions * (0.5 * p.r200 * rng.random(p.n_sub) ** (1 / 2))[:, None]
    masses = p.sub_fraction * p.m200 * rng.dirichlet(np.ones(p.n_sub))
    for pos, m in zip(positions @ rot.T, masses, strict=True):
        a = 0.02 * p.r200
        dm += _plummer((x - pos[0]) ** 2 + (y - pos[1]) ** 2, m, a)
    return {"dm": dm, "star": star, "gas": gas, "hi": hi, "temp": temp, "bfield": bfield}


def _views(p: GalaxyParams, n_views: int) -> list[tuple[int, int]]:
    """Unrotated view plus ``n_views − 1`` random integer (θ, φ) with inclination ≤ 75°."""
    rng = np.random.default_rng([p.seed, 7])
    views = [(0, 0)]
    while len(views) < n_views:
        theta, phi = int(rng.integers(0, 360)), int(rng.integers(0, 360))
        if abs(math.cos(math.radians(theta)) * math.cos(math.radians(phi))) >= math.cos(math.radians(75)):
            views.append((theta, phi))
    return views


def write_mock_set(
    out: str | Path,
    galaxies: int = 200,
    size: int = 128,
    seed: int = 0,
    snapshots: Iterable[int] = (99,),
    views: int = 4,
    per_file: int = 1000,
    extent_factor: float = 2.0,
    progress: bool = True,
) -> Path:
    """Write ``galaxies`` mock galaxies per snapshot in the TNG map layout under ``out``.

    Files: ``{out}/{domain}/hdf5/20260101-mock.{snap}.2D.{domain}.{start:04d}.{end:04d}.hdf5``.
    The set is written to a temporary folder and moved into place when complete, with a
    ``COMPLETE`` marker, so an interrupted run never leaves a half-written set behind.
    """
    out = Path(out)
    if galaxies < 1 or size < 8 or views < 1:
        raise ValueError(f"need galaxies >= 1, size >= 8 and views >= 1; got {galaxies}, {size}, {views}")
    tmp = out.with_name(out.name + f".partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    jobs = [(snap, start) for snap in snapshots for start in range(0, galaxies, per_file)]
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("writing mock galaxies", total=len(list(snapshots)) * galaxies)
        for snap, start in jobs:
            end = min(start + per_file, galaxies)
            files = {}
            for d in MOCK_DOMAINS:
                folder = tmp / d / "hdf5"
                folder.mkdir(parents=True, exist_ok=True)
                name = f"20260101-mock.{snap}.2D.{d}.{start:04d}.{end:04d}.hdf5"
                f = h5py.File(folder / name, "w", libver="latest")
                f.create_dataset(
                    f"{d}/images", shape=(0, size, size), maxshape=(None, size, size), dtype="<f8",
                    chunks=(1, size, size), compression="gzip", shuffle=True,
                )  # fmt: skip
                files[d] = f
            row = 0
            for gid in range(start, end):
                p = sample_params(gid, snap, seed, extent_factor)
                for rotxy in _views(p, views):
                    maps = render(p, rotxy, size)
                    for d, f in files.items():
                        ds = f[f"{d}/images"]
                        ds.resize(row + 1, axis=0)
                        ds[row] = maps[d]
                        meta = f.create_group(f"{d}/metadata/{row:04d}")
                        _write_attrs(meta, d, p, rotxy, seed)
                    row += 1
                bar.advance(task)
            for f in files.values():
                f.close()
    (tmp / "COMPLETE").write_text(
        f"version={MOCK_VERSION} galaxies={galaxies} size={size} seed={seed} views={views}\n"
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _write_attrs(meta: h5py.Group, domain: str, p: GalaxyParams, rotxy: tuple[int, int], seed: int) -> None:
    name = f"{domain}_mock.{p.snapshot:02d}.gid.{p.gid:07d}"
    if rotxy != (0, 0):
        name += f"_rotxy.{rotxy[0]}.{rotxy[1]}"
    meta.attrs["class"] = domain
    meta.attrs["gid"] = p.gid
    meta.attrs["snapshot"] = p.snapshot
    meta.attrs["units"] = UNITS[domain]
    meta.attrs["extent"] = np.array([-p.half_extent, p.half_extent, -p.half_extent, p.half_extent])
    meta.attrs["units_extent"] = "kpc"
    meta.attrs["name"] = name
    meta.attrs["num_particles"] = int((p.m_gas_disk + p.m_hot) / 8.5e4)
    meta.attrs["rotxy"] = np.array(rotxy, dtype=np.int64)
    meta.attrs["N_particle_flag"] = 0
    meta.attrs["has_bh"] = int(p.m200 > 3e11)
    meta.attrs["rng_seed"] = seed


def params_table(p: GalaxyParams) -> dict[str, float]:
    """The parameters as a plain dict (for docs and tests)."""
    return asdict(p)

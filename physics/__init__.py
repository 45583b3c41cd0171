"""Astrophysical statistics of 2-D maps, for numpy arrays, astropy Quantities and torch tensors.

Every function takes maps of shape ``(..., H, W)``, computes in float64 and returns the
library it was given (numpy/Quantity or torch on the same device). Lengths are in kpc and
wavenumbers in 1/kpc unless Quantities say otherwise. See ``docs/physics.md``.
"""

from physics.binned import POWER_RATIO_FLOOR, correlation_from_power, guarded_ratio, log_power_ratio
from physics.distributions import PixelDistribution, ks_distance, pixel_distribution, wasserstein_1
from physics.fits import PowerLawFit, dimensionless_power, power_law_slope
from physics.fourier import fundamental_frequency, mode_bins, nyquist_frequency, window_2d
from physics.grid import PixelScale, resolve_scale
from physics.masses import (
    magnetic_energy,
    mass_weighted_bfield,
    mass_weighted_mean,
    mass_weighted_temperature,
    thermal_energy,
    total_mass,
)
from physics.morphology import asymmetry, clumpiness
from physics.profiles import (
    CurveOfGrowth,
    RadialProfile,
    center_offset,
    concentration,
    curve_of_growth,
    find_center,
    half_mass_radius,
    radial_profile,
    radius_enclosing,
)
from physics.scores import (
    correlation_error,
    mass_log_error,
    profile_error_dex,
    r50_error,
    r50_errors,
    r50_log_error,
    relative_mass_error,
    spectrum_log_error,
    w1_dex,
)
from physics.spectra import (
    CrossSpectrum,
    PowerSpectrum,
    SpectralCurve,
    correlation_coefficient,
    cross_power,
    error_power,
    power_spectrum,
    transfer_function,
)

__all__ = [
    "POWER_RATIO_FLOOR",
    "CrossSpectrum",
    "CurveOfGrowth",
    "PixelDistribution",
    "PixelScale",
    "PowerLawFit",
    "PowerSpectrum",
    "RadialProfile",
    "SpectralCurve",
    "asymmetry",
    "center_offset",
    "clumpiness",
    "concentration",
    "correlation_coefficient",
    "correlation_error",
    "correlation_from_power",
    "cross_power",
    "curve_of_growth",
    "dimensionless_power",
    "error_power",
    "find_center",
    "fundamental_frequency",
    "guarded_ratio",
    "half_mass_radius",
    "ks_distance",
    "log_power_ratio",
    "magnetic_energy",
    "mass_log_error",
    "mass_weighted_bfield",
    "mass_weighted_mean",
    "mass_weighted_temperature",
    "mode_bins",
    "nyquist_frequency",
    "pixel_distribution",
    "power_law_slope",
    "power_spectrum",
    "profile_error_dex",
    "r50_error",
    "r50_errors",
    "r50_log_error",
    "radial_profile",
    "radius_enclosing",
    "relative_mass_error",
    "resolve_scale",
    "spectrum_log_error",
    "thermal_energy",
    "total_mass",
    "transfer_function",
    "w1_dex",
    "wasserstein_1",
    "window_2d",
]

"""The domain table (``validation.domains``): one home for units, kinds and ranges, read by app and validation."""

from __future__ import annotations

import astropy.units as u
import pytest
import torch

from app.data import domains as app_domains
from app.data.mock import MOCK_DOMAINS
from validation import domains as table
from validation.collection import VALUE_RANGES, PhysicsMetrics


def test_table_rows_are_consistent():
    assert set(table.DOMAIN_KINDS) == {"surface_density", "mass_weighted", "brightness"}
    assert table.PROFILED_KINDS == {table.SURFACE_DENSITY, table.BRIGHTNESS}
    for key, d in table.DOMAINS.items():
        assert d.key == key and d.kind in table.DOMAIN_KINDS
        u.Unit(d.unit)  # a valid astropy unit string
        lo, hi = d.value_range
        assert lo < hi
        assert d.profiled == (d.kind in table.PROFILED_KINDS)
        assert d.mass_weighted == (d.kind == table.MASS_WEIGHTED)
    assert {k for k, d in table.DOMAINS.items() if d.mass_weighted} == {"temp", "bfield"}
    assert set(MOCK_DOMAINS) <= set(table.DOMAINS)
    with pytest.raises(ValueError, match="unknown kind 'density'"):
        table.Domain("x", "K", "density", "", (0.0, 1.0))


def test_value_ranges_come_from_the_table():
    assert VALUE_RANGES is table.VALUE_RANGES
    assert VALUE_RANGES == {
        "solMass / kpc2": (-1.0, 12.0),
        "K": (1.0, 9.0),
        "G": (-12.0, -1.0),
        "mK": (-12.0, 4.0),
    }
    assert table.value_range("erg") == table.FALLBACK_VALUE_RANGE
    assert table.value_range("K", {"K": (0.0, 2.0)}) == (0.0, 2.0)


def test_app_reexports_the_table_with_its_transforms():
    assert set(app_domains.DOMAINS) == set(table.DOMAINS)
    for key, d in app_domains.DOMAINS.items():
        row = table.DOMAINS[key]
        assert isinstance(d, table.Domain)
        assert (d.unit, d.kind, d.description, d.value_range) == (
            row.unit,
            row.kind,
            row.description,
            row.value_range,
        )
        assert d.transform == app_domains.DEFAULT_TRANSFORMS[key]
    assert app_domains.get_domain("hi").transform == "power"
    assert app_domains.MASS_WEIGHTED is table.MASS_WEIGHTED
    with pytest.raises(ValueError, match="unknown domain 'gaz'"):
        app_domains.get_domain("gaz")


def test_physics_metrics_take_kind_unit_pairs_or_domains():
    shape = (16, 16)
    keys = ["gas", "temp", "hi/21cm"]
    by_pair = PhysicsMetrics(shape, {k: (table.DOMAINS[k].kind, table.DOMAINS[k].unit) for k in keys})
    by_row = PhysicsMetrics(shape, {k: app_domains.get_domain(k) for k in keys})
    for a, b in ((by_pair, by_row), (by_row, by_pair)):
        for name in ("gas", "temp", "hi_21cm"):
            assert list(a.physical[name]) == list(b.physical[name])
            torch.testing.assert_close(a.physical[name]["w1_dex"].edges, b.physical[name]["w1_dex"].edges)
    lo, hi = table.DOMAINS["temp"].value_range
    edges = by_row.physical["temp"]["w1_dex"].edges
    assert (float(edges[0]), float(edges[-1])) == (lo, hi)
    assert "profile_dex" in by_row.physical["gas"] and "profile_dex" in by_row.physical["hi_21cm"]
    assert "profile_dex" not in by_row.physical["temp"]
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([1e6, 1e5, 1e-2], dtype=torch.float64).view(1, 3, 1, 1)  # inside each value range
    maps = (torch.rand(2, 3, *shape, generator=g, dtype=torch.float64) + 0.5) * scale
    for m in (by_pair, by_row):
        m.update(maps, maps * 1.1)
    a, b = by_pair.compute(), by_row.compute()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    with pytest.raises(ValueError, match="unknown kind 'density'"):
        PhysicsMetrics(shape, {"gas": ("density", "solMass / kpc2")})

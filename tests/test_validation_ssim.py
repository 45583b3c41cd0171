"""The separable SSIM (``validation.ssim``) against torchmetrics' convolution, on even and odd sizes."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim
from torchmetrics.image import StructuralSimilarityIndexMeasure

from validation.ssim import StructuralSimilarity, blur_matrix, ssim_per_map


@pytest.mark.parametrize("shape", [(3, 1, 64, 64), (2, 1, 33, 40), (2, 2, 17, 17), (2, 1, 6, 7)])
def test_ssim_equals_torchmetrics(shape):
    """Per map, on smooth and noisy maps of known quality (perfect, scaled, noisy), in float64."""
    g = torch.Generator().manual_seed(sum(shape))
    true = torch.randn(*shape, generator=g, dtype=torch.float64).cumsum(-1).cumsum(-2) / 10
    for pred in (true, 0.5 * true + 1, true + torch.randn(*shape, generator=g, dtype=torch.float64)):
        ours = ssim_per_map(pred, true, data_range=10.0)
        ref = tm_ssim(pred, true, data_range=10.0, reduction="none")
        assert torch.allclose(ours, ref, rtol=0, atol=1e-12)
    assert torch.allclose(ssim_per_map(true, true, 10.0), torch.ones(shape[0], dtype=torch.float64), atol=1e-12)


def test_ssim_metric_pools_batches_like_torchmetrics():
    """Two float32 updates (the validation loop's dtype) give torchmetrics' mean to 1e-6."""
    g = torch.Generator().manual_seed(0)
    ours, ref = StructuralSimilarity(data_range=10.0), StructuralSimilarityIndexMeasure(data_range=10.0)
    for n in (5, 3):
        true = torch.randn(n, 1, 32, 32, generator=g)
        pred = true + 0.5 * torch.randn(n, 1, 32, 32, generator=g)
        ours.update(pred, true)
        ref.update(pred, true)
    assert float(ours.compute()) == pytest.approx(float(ref.compute()), abs=1e-6)


def test_blur_matrix_rows_sum_to_one_and_bad_input_is_refused():
    a = blur_matrix(9, 1.5, torch.float64, torch.device("cpu"))
    assert torch.allclose(a.sum(1), torch.ones(9, dtype=torch.float64), atol=1e-15)
    with pytest.raises(ValueError, match="too small for the 11-pixel window"):
        blur_matrix(5, 1.5, torch.float64, torch.device("cpu"))
    with pytest.raises(ValueError, match="one shape"):
        ssim_per_map(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9), 1.0)
    with pytest.raises(ValueError, match="data_range"):
        StructuralSimilarity(data_range=0.0)

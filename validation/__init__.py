"""Scientific validation: torchmetrics metrics over ``physics``, early stopping and reports."""

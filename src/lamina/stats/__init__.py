"""Stage 5: statistics as pure functions on arrays (numbers or tidy tables out)."""

from .regression import classification, confusion_table, fit_logistic, ols

__all__ = ["classification", "confusion_table", "fit_logistic", "ols"]

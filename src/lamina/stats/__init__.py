"""Stage 5: statistics as pure functions on arrays (numbers or tidy tables out)."""

from .multiple import benjamini_hochberg, max_statistic_pvalue, permutation_pvalue
from .regression import classification, confusion_table, fit_logistic, ols
from .similarity import cosine_matrix, rsa, unit_rows, upper

__all__ = ["benjamini_hochberg", "classification", "confusion_table", "cosine_matrix", "fit_logistic",
           "max_statistic_pvalue", "ols", "permutation_pvalue", "rsa", "unit_rows", "upper"]

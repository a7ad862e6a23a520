"""Stage 5: statistics as pure functions on arrays (numbers or tidy tables out).

| module | what |
|---|---|
| regression | OLS with inference, lagged designs, logistic decoding, confusion tables |
| multiple | Benjamini-Hochberg, permutation and max-statistic p-values |
| norms | log norms with the zero case made explicit |
| divergence | histograms, KL, Jensen-Shannon, the seed's scaled symmetric KL |
| permutation | the vectorised label-permutation null of the JS divergence |
| similarity | cosine matrices, upper triangles, RSA |
| dimensionality | participation ratio, effective dimensionality |
| bootstrap | item resampling for RSA confidence intervals |
| selectivity | within- vs across-category similarity, its t statistics and permutation test |
"""

from .bootstrap import percentile_ci, rsa_bootstrap
from .dimensionality import dimensionality, effective_dim, participation_ratio
from .divergence import js_divergence, kl
from .multiple import benjamini_hochberg, max_statistic_pvalue, permutation_pvalue
from .norms import log_norms
from .permutation import js_permutation_null
from .regression import classification, confusion_table, fit_logistic, lagged_design, ols
from .selectivity import selectivity
from .similarity import cosine_matrix, rsa, unit_rows, upper

__all__ = ["benjamini_hochberg", "classification", "confusion_table", "cosine_matrix", "dimensionality",
           "effective_dim", "fit_logistic", "js_divergence", "js_permutation_null", "kl", "lagged_design",
           "log_norms", "max_statistic_pvalue", "ols", "participation_ratio", "percentile_ci",
           "permutation_pvalue", "rsa", "rsa_bootstrap", "selectivity", "unit_rows", "upper"]

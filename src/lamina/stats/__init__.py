r"""Stage 5: statistics as pure functions on arrays (numbers or tidy tables out).

| module | what |
|---|---|
| regression | OLS with inference (iid or cluster-robust), lagged designs and per-series autoregressions, logistic decoding, confusion tables |
| multiple | Benjamini-Hochberg, permutation and max-statistic p-values (raw, and of statistics standardised by their own nulls), the decision rule p <= alpha |
| norms | log norms (per layer too) with the zero case made explicit |
| divergence | histograms, KL, Jensen-Shannon, symmetric KL to the mixture; all of them for two groups |
| permutation | label-permutation tests, layers at once: the JS null (two groups), within- vs across-label selectivity |
| similarity | cosine matrices, upper triangles, RSA (of data, or of pairs of similarity matrices) |
| dimensionality | participation ratio, effective dimensionality; participation ratio on bootstrap resamples |
| bootstrap | item resampling for RSA confidence intervals, percentile intervals, bootstrap p-values |
| blocks | block bootstrap of items in sequence order (circular blocks, Politis–White block length) |
| autoregression | autoregressions over several passages, OLS or Newey–West (HAC) errors, Ljung–Box |
| selectivity | within- vs across-category pair masks, means and t statistics, histogram edges |
| ranges | central value ranges for axes and colour scales |
| replicates | across replicates (text samples as the unit): t intervals (Hall's skewness-corrected ones too), simultaneous bands across layers, one-sample t tests, sign-flip max-t across layers |
| groups | two groups of tokens: shuffles within strata, differences of means for many labellings, two-sided p, shift intervals |
| pairing | replicates as the unit for a statistic of labels and values: each replicate's values under every replicate's labels, the pairing test |
| attention | attention-head scores on square patterns (sink, previous token, induction-like, entropy); massive activations (max / median \|x\| per entry) |
| clusters | means over items that come in clusters (positions of one context): interval and t test with the cluster as the unit |
"""

from .attention import (induction_mask, induction_score, massive_activations, pattern_entropy, previous_score,
                        sink_score)
from .autoregression import lagged_fits, ljung_box
from .blocks import block_length, circular_block_counts, optimal_block_length
from .bootstrap import bootstrap_pvalue, percentile_ci, rsa_bootstrap
from .dimensionality import dimensionality, effective_dim, participation_ratio, participation_ratio_bootstrap
from .divergence import group_divergences, js_divergence, kl
from .multiple import benjamini_hochberg, max_statistic_pvalue, permutation_pvalue, significant
from .norms import layer_log_norms, log_norms
from .permutation import js_permutation_null, selectivity_permutation_test
from .ranges import central_range
from .replicates import (AcrossReplicates, across_replicates, sign_flip_max_t, simultaneous_t_band, skew_t_interval,
                         t_interval)
from .regression import classification, confusion_percent, confusion_table, fit_logistic, lagged_design, lagged_ols, ols
from .selectivity import selectivity
from .similarity import cosine_matrix, rsa, rsa_pairs, unit_rows, upper

__all__ = ["AcrossReplicates", "across_replicates", "benjamini_hochberg", "block_length", "bootstrap_pvalue",
           "circular_block_counts", "lagged_fits", "ljung_box", "optimal_block_length",
           "participation_ratio_bootstrap", "central_range", "classification", "confusion_percent", "confusion_table",
           "cosine_matrix", "dimensionality", "effective_dim", "fit_logistic", "group_divergences", "js_divergence",
           "js_permutation_null", "kl", "lagged_design", "lagged_ols", "layer_log_norms", "log_norms",
           "max_statistic_pvalue", "ols", "participation_ratio", "percentile_ci", "permutation_pvalue", "rsa",
           "rsa_bootstrap", "rsa_pairs", "selectivity", "selectivity_permutation_test", "sign_flip_max_t", "significant", "simultaneous_t_band", "skew_t_interval", "t_interval", "unit_rows",
           "upper", "induction_mask", "induction_score", "massive_activations", "pattern_entropy", "previous_score",
           "sink_score"]

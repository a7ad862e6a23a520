"""The settings of ``categories``: one typed value, each setting's rule declared beside it (no torch here:
loading a run, drawing its figures and writing its report read them without the model)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import settings as shared
from ..settings import setting


@dataclass
class CategoriesConfig:
    words_file: str | None = None  # 'category,word' lines or JSON {category: [words]}; None: the seed's 34 words
    leading_space: bool = True  # encode ' galaxy', not 'galaxy' (both parts); words are given without it
    # Hidden entry of the single-layer figures: an index, or a relative depth (models/depth.py); the
    # seed's entry 4 of GPT-2's 0..12 is depth 1/3 (entry 10 of SmolLM2's 0..30).
    layer: int | float = shared.layer(0.33)
    n_permutations: int = shared.n_permutations()  # label shuffles per permutation test
    alpha: float = shared.alpha()  # significance level for the corrected p-values
    contexts: bool = True  # run part B (one word, many contexts)
    # first word vs the others (seed's order); a word's contexts are compared with another word's
    context_words: tuple[str, ...] = setting(("years", "garage", "lawn"), min_items=2, unique=True)
    book: str = shared.book("gatsby")  # for part B
    context_length: int = setting(50, ge=0)  # tokens of context before each occurrence (seed: contextwin = 50)
    # more occurrences than this: a random subset (bounds the n x n matrices)
    max_contexts_per_word: int = setting(200, ge=2, why="within-word pairs need two contexts")
    # part B: each word's contexts dealt out in turn to this many replicates
    replicates: int = shared.replicates(6, unit="subsets of each word's contexts")
    tornado_bins: int = shared.bins(34, minimum=2)  # bins of the tornado plots (seed: 35 edges)
    # (low, high); None: the observed range (seed: .4, 1)
    tornado_range: tuple[float, ...] | None = setting(None, items=2, order="<", why="low,high")
    batch_size: int = shared.batch_size(32)

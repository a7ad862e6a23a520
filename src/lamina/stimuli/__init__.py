"""Stage 3: stimuli builders for the seed designs and for new ones (repeated random tokens, prefixes,
concatenation), each returning a :class:`Stimuli`."""

from .base import Stimuli, encode
from .builders import first_tokens, one_long_sequence, passage, window, windows, word_in_contexts
from .combine import concat, prefixed, repeated_random
from .words import (SEED_004_CATEGORIES, SEED_004_CONTEXT_WORDS, check_single_tokens, read_words,
                    single_token_words)

__all__ = ["Stimuli", "encode", "first_tokens", "window", "windows", "passage", "one_long_sequence", "word_in_contexts",
           "single_token_words", "concat", "prefixed", "repeated_random", "check_single_tokens", "read_words",
           "SEED_004_CATEGORIES", "SEED_004_CONTEXT_WORDS"]

"""Stage "data": the texts lamina reads (HellaSwag, Gutenberg books, Wikipedia articles).

Every loader looks in ``LAMINA_DATA_DIR`` first, then in the lamina cache
(``LAMINA_CACHE``), and only then goes to the network, so offline machines work
with a directory of files. Errors a user can fix are :class:`lamina.LaminaError`.
"""

from .benchmark import hellaswag
from .books import BOOKS, book, gutenberg, strip_gutenberg
from .local import data_dir
from .wiki import wikipedia

__all__ = ["BOOKS", "book", "data_dir", "gutenberg", "hellaswag", "strip_gutenberg", "wikipedia"]

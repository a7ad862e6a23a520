"""English Wikipedia articles as plain text: local file, then the cache, then the MediaWiki API."""

import json
import urllib.parse

from lamina.errors import LaminaError
from ..cache import cache_dir

from .local import local_file, normalize, read_text
from .web import fetch, save_atomic

API = "https://en.wikipedia.org/w/api.php"


def slug(title: str) -> str:
    """The file-name form of ``title``: spaces as underscores ("/" as "%2F" so it stays one file)."""
    return title.strip().replace(" ", "_").replace("/", "%2F")


def wikipedia(title: str) -> str:
    """The plain text (str, LF line ends, section headings as ``== Heading ==``) of an article.

    Looks for ``wikipedia_{slug}.txt`` in ``LAMINA_DATA_DIR``, then
    ``cache_dir("wikipedia")/{slug}.txt``, else asks the MediaWiki API (following
    redirects) and caches the result. A missing article raises LaminaError.
    """
    if not isinstance(title, str) or not title.strip():
        raise LaminaError(f"a Wikipedia title is a non-empty str, got {title!r}.")
    name = slug(title)
    path = local_file(f"wikipedia_{name}.txt") or cache_dir("wikipedia") / f"{name}.txt"
    if path.is_file():
        return read_text(path).strip()
    query = {"action": "query", "prop": "extracts", "explaintext": 1, "format": "json",
             "redirects": 1, "titles": title.strip()}
    url = f"{API}?{urllib.parse.urlencode(query)}"
    raw = fetch(url, f"Wikipedia article {title!r}")
    try:
        pages = json.loads(raw)["query"]["pages"]
    except (ValueError, KeyError, TypeError) as exc:
        raise LaminaError(f"unexpected reply from {url}: not a MediaWiki query result.") from exc
    # formatversion=1 gives {pageid: page}; 2 gives a list. Accept both.
    page = next(iter(pages.values() if isinstance(pages, dict) else pages), {})
    if "missing" in page or "invalid" in page:
        raise LaminaError(f"English Wikipedia has no article titled {title!r}.")
    text = normalize(page.get("extract") or "").strip()
    if not text:
        raise LaminaError(f"the Wikipedia article {title!r} has no text.")
    save_atomic(path, text.encode("utf-8"))
    return text

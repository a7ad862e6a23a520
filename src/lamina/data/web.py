"""Downloads (urllib, no extra dependency) and atomic writes into the lamina cache."""

import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

from lamina.errors import LaminaError

USER_AGENT = "lamina/0.1 (https://pypi.org/project/lamina; research text loader)"
TIMEOUT_S = 30


def fetch(url: str, what: str) -> bytes:
    """The body of an HTTP GET of ``url`` as bytes.

    Any network or HTTP failure becomes a LaminaError naming the URL and the offline
    fallback, because on a machine without internet that is the only fix.
    """
    # Gutenberg and Wikipedia both reject urllib's default agent string.
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.read()
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError, timeouts are OSErrors
        raise LaminaError(
            f"could not download {what} from {url} ({exc}). Without internet, put the file in a "
            f"directory and set LAMINA_DATA_DIR to it."
        ) from exc


def save_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename.

    A reader (or a crash mid-download) never sees a half-written cache file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

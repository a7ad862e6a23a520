"""Stage "data": local files, Gutenberg stripping, downloads (faked), Wikipedia, HellaSwag via datasets."""

import io
import json
import sys
import types
import urllib.error
import urllib.parse
import urllib.request

import pytest

import lamina.data as data
from lamina.errors import LaminaError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Every test writes its downloads into a fresh cache, never ~/.cache/lamina."""
    monkeypatch.setenv("LAMINA_CACHE", str(tmp_path / "cache"))
    data.hellaswag.cache_clear()
    yield
    data.hellaswag.cache_clear()


@pytest.fixture
def empty_dir(tmp_path, monkeypatch):
    """LAMINA_DATA_DIR set to an empty directory, so loaders fall through to cache / network."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("LAMINA_DATA_DIR", str(path))
    return path


class FakeWeb:
    """Stands in for urllib.request.urlopen: records requests, answers with fixed bytes or an error."""

    def __init__(self, body=b"", error=None):
        self.body, self.error, self.requests = body, error, []

    def __call__(self, request, timeout=None):
        self.requests.append((request, timeout))
        if self.error:
            raise self.error
        return io.BytesIO(self.body)


def fake_web(monkeypatch, **kwargs) -> FakeWeb:
    web = FakeWeb(**kwargs)
    monkeypatch.setattr(urllib.request, "urlopen", web)
    return web


# --- local data directory -------------------------------------------------------------------

def test_data_dir_from_env(data_dir):
    assert data.data_dir() == data_dir


def test_data_dir_unset_is_none(monkeypatch):
    monkeypatch.delenv("LAMINA_DATA_DIR", raising=False)
    assert data.data_dir() is None


def test_data_dir_missing_is_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMINA_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(LaminaError, match="LAMINA_DATA_DIR"):
        data.data_dir()
    with pytest.raises(LaminaError, match="not a directory"):
        data.book("alice")


def test_hellaswag_local(data_dir):
    df = data.hellaswag()
    assert len(df) == 10042
    assert list(df.columns[:5]) == ["row", "activity_label", "ctx", "label", "endings"]
    assert df["row"].tolist() == list(range(10042))
    first = df.iloc[0]
    assert first["activity_label"] == "Roof shingle removal"
    assert first["ctx"] == "A man is sitting on a roof. he"
    assert first["label"] == 3 and first["endings"][3] == "starts pulling up roofing on a roof."
    assert set(df["label"]) == {0, 1, 2, 3}
    assert df["endings"].map(len).eq(4).all()


def test_hellaswag_returns_copies(data_dir):
    df = data.hellaswag()
    df.loc[0, "ctx"] = "changed"
    df["endings"].iloc[1].append("extra")
    again = data.hellaswag()
    assert again.loc[0, "ctx"] == "A man is sitting on a roof. he"
    assert len(again["endings"].iloc[1]) == 4


def test_hellaswag_bad_split():
    with pytest.raises(LaminaError, match="train.*validation.*test") as info:
        data.hellaswag("valid")
    assert "Did you mean 'validation'" in str(info.value)


def test_alice_is_stripped(data_dir):
    text = data.book("alice")
    assert text == data.gutenberg(11)
    assert "Project Gutenberg" not in text[:2000] and "Project Gutenberg" not in text[-2000:]
    assert "gutenberg" not in text.lower()
    assert "Alice was beginning to get very tired" in text
    assert text.startswith("ALICE'S ADVENTURES IN WONDERLAND\n\nLewis Carroll")
    assert text.endswith("the happy summer days.\n\n              THE END")
    assert "\r" not in text and "\ufeff" not in text


def test_alice_unstripped_keeps_license(data_dir):
    raw = data.gutenberg(11, strip=False)
    assert raw.startswith("Project Gutenberg's Alice's Adventures in Wonderland")
    assert "*** END OF THIS PROJECT GUTENBERG EBOOK" in raw and "\r" not in raw


def test_gatsby_loads(data_dir):
    text = data.book("gatsby")
    assert data.book(64317) == text == data.book("64317")
    assert text.startswith("The Great Gatsby")
    assert text.endswith("borne back ceaselessly into\nthe past.")
    assert "\r" not in text and len(text) > 250_000


def test_book_from_path(tmp_path):
    path = tmp_path / "story.txt"
    path.write_bytes(b"\xef\xbb\xbfOnce upon a time.\r\nThe end.\r")
    assert data.book(str(path)) == "Once upon a time.\nThe end.\n"
    assert data.book(path) == "Once upon a time.\nThe end.\n"


def test_book_unknown_name():
    with pytest.raises(LaminaError, match="alice.*gatsby") as info:
        data.book("alcie")
    assert "Did you mean 'alice'" in str(info.value)
    with pytest.raises(LaminaError, match="no such file"):
        data.book("missing/story.txt")


def test_empty_files_are_errors(empty_dir, tmp_path):
    (empty_dir / "pg5.txt").write_text("")
    with pytest.raises(LaminaError, match="empty"):
        data.gutenberg(5)
    (empty_dir / "hellaswag_train.jsonl").write_text("\n")
    with pytest.raises(LaminaError, match="empty"):
        data.hellaswag("train")
    (tmp_path / "blank.txt").write_text("  \n")
    with pytest.raises(LaminaError, match="empty"):
        data.book(str(tmp_path / "blank.txt"))


def test_gutenberg_local_name_must_match_exactly(empty_dir, monkeypatch):
    (empty_dir / "other_pg111.txt").write_text("wrong book")
    (empty_dir / "notpg11.txt").write_text("wrong book")
    (empty_dir / "pg11.txt").write_text("right book")
    fake_web(monkeypatch, error=AssertionError("no download expected"))
    assert data.gutenberg(11) == "right book"


# --- strip_gutenberg ------------------------------------------------------------------------

def test_strip_gutenberg_markers_crlf():
    text = ("\ufeffThe Project Gutenberg eBook of Foo\r\nLicense blah\r\n"
            "*** START OF THE PROJECT GUTENBERG EBOOK FOO ***\r\n\r\nCHAPTER 1\r\nBody line.\r\n\r\n"
            "*** END OF THE PROJECT GUTENBERG EBOOK FOO ***\r\nProject Gutenberg license...\r\n")
    assert data.strip_gutenberg(text) == "CHAPTER 1\nBody line."


def test_strip_gutenberg_this_lowercase_and_end_line():
    text = ("header\n*** start of this project gutenberg ebook bar ***\nStory.\n\n"
            "End of the Project Gutenberg EBook of Bar\n\n*** End of this Project Gutenberg EBook Bar ***\nfooter")
    assert data.strip_gutenberg(text) == "Story."


def test_strip_gutenberg_without_markers():
    assert data.strip_gutenberg("\r\n  Just a story.\r\nSecond line.\r\n\r\n") == "Just a story.\nSecond line."


# --- downloads (urlopen faked) --------------------------------------------------------------

BOOK = (b"\xef\xbb\xbfheader\r\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\nThe tale.\r\n"
        b"*** END OF THE PROJECT GUTENBERG EBOOK X ***\r\nlicense")


def test_gutenberg_download_is_cached_and_reused(empty_dir, tmp_path, monkeypatch):
    web = fake_web(monkeypatch, body=BOOK)
    assert data.gutenberg(1234) == "The tale."
    request, timeout = web.requests[0]
    assert request.full_url == "https://www.gutenberg.org/cache/epub/1234/pg1234.txt"
    assert request.get_header("User-agent", "").startswith("lamina") and timeout == 30
    cached = tmp_path / "cache" / "gutenberg" / "pg1234.txt"
    assert cached.read_bytes() == BOOK
    assert list(cached.parent.iterdir()) == [cached]  # no temporary file left behind
    # The second call reads the cache: the network now fails, yet the book loads.
    fake_web(monkeypatch, error=urllib.error.URLError("offline"))
    assert data.gutenberg(1234, strip=False).startswith("header\n*** START")
    assert data.book("1234") == "The tale."


def test_gutenberg_network_error(empty_dir, tmp_path, monkeypatch):
    fake_web(monkeypatch, error=urllib.error.URLError("Name or service not known"))
    url = "https://www.gutenberg.org/cache/epub/77/pg77.txt"
    with pytest.raises(LaminaError, match="LAMINA_DATA_DIR") as info:
        data.gutenberg(77)
    assert url in str(info.value)
    assert not (tmp_path / "cache" / "gutenberg" / "pg77.txt").exists()


def test_gutenberg_bad_id():
    with pytest.raises(LaminaError, match="positive int"):
        data.gutenberg(0)


def test_wikipedia_api(empty_dir, tmp_path, monkeypatch):
    reply = {"batchcomplete": "", "query": {"pages": {"123": {
        "pageid": 123, "ns": 0, "title": "Neural network", "extract": "A neural network is\r\na model.\n"}}}}
    web = fake_web(monkeypatch, body=json.dumps(reply).encode())
    assert data.wikipedia("Neural network") == "A neural network is\na model."
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(web.requests[0][0].full_url).query)
    assert query["titles"] == ["Neural network"] and query["explaintext"] == ["1"]
    assert query["prop"] == ["extracts"] and query["redirects"] == ["1"]
    cached = tmp_path / "cache" / "wikipedia" / "Neural_network.txt"
    assert cached.read_text() == "A neural network is\na model."
    fake_web(monkeypatch, error=urllib.error.URLError("offline"))
    assert data.wikipedia("Neural network") == "A neural network is\na model."


def test_wikipedia_local_file(empty_dir, monkeypatch):
    (empty_dir / "wikipedia_Cerebral_cortex.txt").write_text("The cortex.\n")
    fake_web(monkeypatch, error=AssertionError("no download expected"))
    assert data.wikipedia("Cerebral cortex") == "The cortex."


def test_wikipedia_missing_page_and_network_error(empty_dir, monkeypatch):
    reply = {"query": {"pages": {"-1": {"ns": 0, "title": "Qwxz", "missing": ""}}}}
    fake_web(monkeypatch, body=json.dumps(reply).encode())
    with pytest.raises(LaminaError, match="no article titled 'Qwxz'"):
        data.wikipedia("Qwxz")
    fake_web(monkeypatch, error=TimeoutError("timed out"))
    with pytest.raises(LaminaError, match="en.wikipedia.org.*LAMINA_DATA_DIR"):
        data.wikipedia("Qwxz")


# --- HellaSwag through a fake `datasets` -----------------------------------------------------

HUB_ROWS = [
    {"ind": 4, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
     "ctx": "A man is sitting on a roof. he", "endings": ["a.", "b.", "c.", "d."], "label": "3"},
    {"ind": 9, "activity_label": "Health", "ctx_a": "", "ctx_b": "",
     "ctx": "[header] How to rest. [title] Lie down. [step] Close your eyes.",
     "endings": ["[substeps] Sleep.", "x", "y", "z"], "label": ""},
]


def test_hellaswag_via_datasets(empty_dir, monkeypatch):
    calls = []

    def load_dataset(name, split):
        calls.append((name, split))
        return list(HUB_ROWS)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    df = data.hellaswag("test")
    assert calls == [("Rowan/hellaswag", "test")]
    assert df["row"].tolist() == [0, 1] and df["label"].tolist() == [3, -1]
    assert df["ctx"].tolist() == ["A man is sitting on a roof. he", "How to rest. Lie down. Close your eyes."]
    assert df["endings"].iloc[1] == ["Sleep.", "x", "y", "z"]
    data.hellaswag("test")
    assert len(calls) == 1  # parsed once per process


def test_hellaswag_without_datasets(empty_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(LaminaError, match=r"pip install datasets.*hellaswag_validation\.jsonl"):
        data.hellaswag()

"""What a notebook user sees: rich HTML views of runs and recordings (every user string escaped),
figures as restylable matplotlib Figures that display themselves, and one progress-bar rule
(widget in Jupyter with ipywidgets, plain text otherwise, hidden in logs)."""

import dataclasses
import html
import re
import sys
import types
from pathlib import Path

import pytest
import tqdm.notebook
import tqdm.std
from matplotlib.figure import Figure

import lamina
from lamina import _progress
from lamina.plots import figure

EVIL = "<img src=x onerror=alert(1)>"
TEXT = ("<script>alert('x')</script> The cat sat on the mat, and the dog sat on the rug. "
        "Then the cat ran away from the dog, and the dog ran after the cat. ") * 2


# ---- progress bars ---------------------------------------------------------------------


class ZMQInteractiveShell:  # the name Jupyter's kernel shell has; Colab's subclasses it
    pass


class ColabShell(ZMQInteractiveShell):
    pass


def _kernel(monkeypatch, shell=ColabShell):
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell()))


def test_outside_jupyter_plain_text_shown_only_on_a_terminal(monkeypatch):
    assert not _progress.in_notebook()
    assert _progress.bar_class() is tqdm.std.tqdm
    assert _progress.shown(True) and not _progress.shown(False)
    monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: False, write=print, flush=lambda: None))
    assert not _progress.shown(None)  # a log or a pipe
    monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: True, write=print, flush=lambda: None))
    assert _progress.shown(None)  # a terminal


def test_in_jupyter_widget_with_ipywidgets_else_plain_text(monkeypatch):
    _kernel(monkeypatch)
    assert _progress.in_notebook() and _progress.shown(None) and not _progress.shown(False)
    monkeypatch.setattr(_progress, "has_widgets", lambda: True)
    assert _progress.bar_class() is tqdm.notebook.tqdm
    monkeypatch.setattr(_progress, "has_widgets", lambda: False)
    assert _progress.bar_class() is tqdm.std.tqdm  # no "IProgress not found" error or warning


def test_ipython_console_is_not_a_notebook(monkeypatch):
    class TerminalInteractiveShell:
        pass

    _kernel(monkeypatch, TerminalInteractiveShell)
    assert not _progress.in_notebook()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert not _progress.in_notebook()


def test_every_bar_goes_through_progress_bar():
    """No module calls tqdm itself: one rule for where bars go and when they show."""
    src = Path(lamina.__file__).parent
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py") if p.name != "_progress.py"
                 and re.search(r"\b(tqdm|trange)\(", p.read_text())]
    assert offenders == []


def test_record_bar_follows_progress(tiny_gpt2, capsys):
    stimuli = lamina.stimuli.passage(TEXT, tiny_gpt2)
    lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=True)
    assert "recording" in capsys.readouterr().err
    lamina.record(tiny_gpt2, stimuli, sites=["hidden"], progress=False)
    assert "recording" not in capsys.readouterr().err


# ---- figures ------------------------------------------------------------------------------


def test_figures_are_matplotlib_figures_that_display_themselves():
    fig, ax = figure()
    ax.plot([0, 1], [1, 0])
    assert isinstance(fig, Figure)
    assert fig._repr_png_().startswith(b"\x89PNG")


# ---- runs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evil_run(tiny_gpt2, tmp_path_factory, data_dir):
    model = dataclasses.replace(tiny_gpt2, name=EVIL)
    out = tmp_path_factory.mktemp("nb") / "run"
    return lamina.run("attn-autoregression", model=model, seed=0, out=out, progress=False,
                      settings={"text": TEXT, "min_tokens": 8})


def test_run_html_shows_settings_numbers_and_figures_escaped(evil_run):
    page = evil_run._repr_html_()
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page  # the text setting
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # the model name
    assert evil_run.experiment.title in page and str(evil_run.path) in page
    for label, value, test in evil_run.key_numbers:
        assert all(html.escape(part) in page for part in (label, value, test))
    names = list(evil_run.figures())
    assert page.count("data:image/png;base64,") == len(names) and all(f"<b>{n}.</b>" in page for n in names)
    for name in evil_run.tables:
        assert f"<td>{name}</td>" in page
    assert page == evil_run._repr_html_()  # figures drawn once, not on every display


def test_run_loaded_back_and_in_memory_runs_show_too(evil_run, tiny_gpt2, data_dir):
    loaded = lamina.Run.load(evil_run.path)
    assert loaded._repr_html_().count("data:image/png;base64,") == len(loaded.figures())
    memory = lamina.run("attn-autoregression", model=tiny_gpt2, progress=False, settings={"text": TEXT, "min_tokens": 8})
    assert "in memory" in memory._repr_html_() and "in memory" in repr(memory)
    assert repr(loaded) == f"Run(attn-autoregression on {EVIL}, seed 0, {str(evil_run.path)!r})"


def test_run_figure_is_one_restylable_figure(evil_run):
    fig = evil_run.figure("betas", colormap="viridis")
    assert isinstance(fig, Figure) and fig._repr_png_().startswith(b"\x89PNG")
    fig.axes[0].set_title("restyled")
    assert fig.axes[0].get_title() == "restyled"
    with pytest.raises(lamina.LaminaError, match="has no figure 'beta'.*betas.*Did you mean 'betas'"):
        evil_run.figure("beta")


# ---- recordings ----------------------------------------------------------------------------


def test_recording_html_sites_shapes_tokens_escaped(tiny_gpt2, tmp_path):
    model = dataclasses.replace(tiny_gpt2, name=EVIL)
    stimuli = lamina.stimuli.passage(TEXT, model)
    rec = lamina.record(model, stimuli, sites=["hidden", "attn.out"], layers=[0, 1, 2], progress=False)
    page = rec._repr_html_()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<td><</td>" not in page and "<td>&lt;</td>" in page  # the first tokens are '<' 'script' '>'
    n = len(rec.tokens)
    assert f"(3, 1, {n}, 64)" in page and "0–2" in page and f"first 10 of {n} rows" in page
    on_disk = lamina.record(tiny_gpt2, stimuli, sites=["hidden"], layers=[0, 3], out=tmp_path / "rec", progress=False)
    page = lamina.Recording.load(on_disk.path)._repr_html_()
    assert f"(2, 1, {n}, 64)" in page and "0, 3" in page and str(tmp_path / "rec") in page
    assert on_disk.shape("hidden") == (2, 1, n, 64) == tuple(on_disk["hidden"].shape)


def test_tqdm_auto_ipywidgets_warning_is_silenced_and_nothing_else():
    """huggingface_hub's tqdm.auto warns in a kernel without ipywidgets; lamina's text bars are the intended
    fallback, so that one message is filtered (set when lamina is imported) and other warnings pass.
    In a fresh interpreter: pytest sets its own warning filters around each test."""
    import subprocess

    code = ("import warnings, lamina, tqdm.std\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.warn('IProgress not found. Please update jupyter and ipywidgets.', tqdm.std.TqdmWarning)\n"
            "    warnings.warn('something else', UserWarning)\n"
            "print([str(w.message) for w in caught])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['something else']"

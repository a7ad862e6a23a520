"""Bad input, systematically (issue 19): every command-line option, every experiment setting and the
Python API, fuzzed with hypothesis.

The options and settings are introspected (the argparse parser, each experiment's ``Config`` and
``Options``), so a new one is fuzzed without a change here; a new option whose value form this file
has no rule for fails :func:`test_every_option_has_a_rule` until one is added.

Each drawn value belongs to a class (wrong type, empty, negative, zero, huge, NaN/inf, non-UTF-8,
a path to a file / a directory / nothing / somewhere unwritable, ...). A value is either refused the
lamina way (exit status 2, one line on stderr naming the option or setting, no traceback, nothing
written and an existing directory untouched) or accepted; for the classes that no option or
setting of that form can mean (an empty value, NaN for a count, a word for a device) acceptance is
a failure. "Accepted" is observed, never assumed: the command gets as far as its real work (the
first recording, or drawing), where a sentinel stops it.

No real model loads inside the hypothesis loops: a tiny random GPT-2 saved with the GPT-2 tokenizer.
``LAMINA_FUZZ_EXAMPLES`` scales the examples per test (default below; docs/reliability.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import math
import os
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import lamina
from lamina import LaminaError
from lamina.cli import build_parser, main
from lamina.experiments import EXPERIMENTS
from lamina.experiments.settings import rule_of

EXAMPLES = int(os.environ.get("LAMINA_FUZZ_EXAMPLES", "1"))
# No shrinking: each example runs commands; a failure is reported with the values drawn.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

TEXT = ("Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing "
        "to do: once or twice she had peeped into the book her sister was reading. ") * 12


class Reached(BaseException):
    """The command got past every check to its real work (a BaseException: nothing may swallow it)."""


# ---- the world the commands run in ---------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory, data_dir):
    """Files every example may point at: the tiny model, texts, a damaged model, a run directory."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    from conftest import _gpt2_files

    root = tmp_path_factory.mktemp("fuzz-world")
    vocab, merges = _gpt2_files()
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=merges)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=512,
                                    vocab_size=len(tokenizer))).eval()
    model_dir = root / "tiny"
    hf.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e ".encode("latin-1") * 50)
    (root / "empty-dir").mkdir()
    truncated = root / "truncated"
    truncated.mkdir()
    for item in model_dir.iterdir():
        (truncated / item.name).write_bytes(item.read_bytes())
    weights = (model_dir / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    (root / "damaged.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x07" * 9)
    model = lamina.wrap(hf, tokenizer, name=str(model_dir))
    encode = model.encode
    tokens = functools.lru_cache(maxsize=4096)(lambda text: tuple(encode(text)))
    model.encode = lambda text: list(tokens(text))  # each book is tokenized once per module
    return {"root": root, "model_dir": model_dir, "model": model, "text": root / "text.txt",
            "binary": root / "latin1.txt", "dir": root / "empty-dir", "truncated": truncated,
            "gguf": root / "damaged.gguf", "data_dir": data_dir}


@pytest.fixture
def sandbox(world, tmp_path, monkeypatch):
    """A working directory, the tiny model loaded once, no network, and sentinels at the real work."""
    from lamina import recording, rundir
    from lamina.comparison import core
    from lamina.data import books, wiki
    import lamina.models
    import lamina.runner

    monkeypatch.chdir(tmp_path)
    real_load, real_record = lamina.models.load, recording.record

    def load(name, **kwargs):
        if name == str(world["model_dir"]) and not any(kwargs.get(k) for k in ("device", "dtype", "device_map")):
            return world["model"]
        return real_load(name, **kwargs)

    def record(model, stimuli, *args, **kwargs):
        # The real checks of every argument, on one sequence (cheap), then stop: the run was accepted.
        positions = kwargs.get("positions", "all")
        if not isinstance(positions, (str, int, np.integer)):
            kwargs["positions"] = [list(positions)[0]]
        real_record(model, stimuli.subset([0]), *args, **{**kwargs, "out": None, "progress": False})
        raise Reached("record")

    def sweep(model, stimuli, edit_sets, **kwargs):  # lesion's passes: the reference's checks, then stop
        real_record(model, stimuli.subset([0]), sites=kwargs.get("reference_sites") or ["loss"],
                    layers=kwargs.get("reference_layers"), progress=False)
        raise Reached("record")

    def offline(url, what):
        raise LaminaError(f"could not download {what} (no network in the tests).")

    def reached(*args, **kwargs):
        raise Reached("draw")

    monkeypatch.setattr(lamina.models, "load", load)  # the runner and compare look it up there when they run
    monkeypatch.setattr(core, "_free", lambda: None)  # gc.collect per member: slow, and nothing to free here
    # compute.py is imported on a run's first call (Deferred): import each now, before `record` is replaced,
    # so that none binds the sentinel for good
    computes = [__import__(exp.compute.__module__, fromlist=["record"]) for exp in EXPERIMENTS.values()]
    monkeypatch.setattr(recording, "record", record)
    for module in computes:
        for name, sentinel in (("record", record), ("sweep", sweep)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, sentinel)
    monkeypatch.setattr(books, "fetch", offline)
    monkeypatch.setattr(wiki, "fetch", offline)
    monkeypatch.setattr(rundir, "draw", reached)
    work = tmp_path / "work"
    work.mkdir()
    existing = work / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("an existing output directory is left untouched")
    return {**world, "work": work, "existing": existing}


@pytest.fixture(scope="module")
def run_dir(world, tmp_path_factory):
    """A real (small) run directory for ``lamina report``."""
    out = tmp_path_factory.mktemp("fuzz-run") / "position"
    lamina.run("position", world["model"], out=out, progress=False, seqlen=4, n_samples=20, replicates=1,
               test_start=100)
    return out


# ---- bad values, by class -------------------------------------------------------------------------
# Words that mean a value somewhere (none, true, on, ...) are not "a word of the wrong kind".
RESERVED = {"none", "null", "true", "false", "yes", "no", "on", "off", "all", "last", "middle", "start", "cpu",
            "cuda", "mps", "xpu", "nan", "inf", "infinity"}
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(lambda w: w not in RESERVED)


def _non_utf8(raw: bytes) -> str:
    """Bytes that are not UTF-8, as Python holds them from a command line (lone surrogates)."""
    return (b"\xff" + raw).decode("utf-8", "surrogateescape")


def values(paths: dict):
    """(class, value) pairs: every class each option and setting is tried with."""
    return {
        "empty": st.sampled_from(["", " ", "\t"]),
        "word": WORDS,
        "negative": st.integers(-10 ** 6, -1).map(str),
        "zero": st.sampled_from(["0", "-0", "0.0"]),
        "huge": st.integers(2 ** 63, 10 ** 40).map(str),
        "large": st.integers(10 ** 6, 2 ** 62).map(str),
        "nonfinite": st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999"]),
        "fraction": st.floats(-1e3, 1e3, allow_nan=False).filter(lambda x: not float(x).is_integer()).map(repr),
        "non-utf8": st.binary(max_size=6).map(_non_utf8),
        "file": st.sampled_from([str(paths["text"])]),
        "binary-file": st.sampled_from([str(paths["binary"])]),
        "dir": st.sampled_from([str(paths["dir"])]),
        "missing": WORDS.map(lambda w: str(paths["root"] / "missing" / w)),
        "unwritable": st.sampled_from([str(paths["text"] / "below-a-file"), "/proc/lamina-cannot-write"]),
        "damaged-model": st.sampled_from([str(paths["truncated"]), str(paths["gguf"])]),
    }


CLASSES = list(values({k: Path("/x") for k in ("text", "binary", "dir", "root", "truncated", "gguf")}))
ALWAYS_BAD = {"empty", "non-utf8"}  # no option and no setting means anything by these


# ---- the command line: every option of every subcommand ------------------------------------------
def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _options():
    """(command, action) for every option that takes a value (flags have nothing to fuzz)."""
    out = []
    for command, parser in _subcommands().items():
        for action in parser._actions:
            if action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue
            out.append((command, action))
    return out


def _flag(action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def _base(command: str, paths: dict) -> list[str]:
    """A command line that is valid as it stands (each option is then replaced by a bad value)."""
    model, out = str(paths["model_dir"]), str(paths["work"] / "out")
    return {
        "run": ["run", "attn-autoregression", "--model", model, "--out", out, "--set", f"text={TEXT[:300]}"],
        "compare": ["compare", "attn-autoregression", "--models", model, "--out", out, "--set", f"text={TEXT[:300]}"],
        "report": ["report", str(paths.get("run_dir", "")), "--out", out],
        "sites": ["sites", model],
        "record": ["record", model, "--out", out, "--source", str(paths["text"]), "--window", "16"],
        "architectures": ["architectures"],
        "experiments": ["experiments"],
        "prepare": ["prepare"],
        "new": ["new", "demo_pkg", "--dir", out],
    }[command]


def _with(argv: list[str], action, value: str) -> list[str]:
    argv = list(argv)
    if not action.option_strings:  # a positional: after "--", so that a value such as -inf is still one
        rest = argv[2:] if action.dest in ("experiment", "run_dir", "model", "name") else argv[1:]
        return argv[:1] + rest + ["--", value]
    flag = _flag(action)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
        return argv
    return argv + [f"{flag}={value}"]  # '=' so that a value starting with '-' is still a value


# What each form of value may mean; a value of another class must be refused.
def _accepts(command: str, action, cls: str) -> bool:
    """Whether ``cls`` may be accepted by the option (a class outside it must be refused)."""
    kind = getattr(action.type, "__name__", None)
    if cls in ALWAYS_BAD:
        return False
    if action.choices is not None:
        return False  # no drawn value is one of the choices
    if hasattr(action.type, "minimum"):  # lamina.cli.count(minimum)
        number = {"negative": -1, "zero": 0, "large": 10 ** 6}.get(cls)
        return number is not None and number >= action.type.minimum
    if getattr(action.type, "path", False):  # an output directory
        return cls in ("word", "negative", "zero", "huge", "large", "nonfinite", "fraction", "dir", "missing")
    rules = {
        "positions": {"negative", "zero", "large"},
        "layer_list": {"negative", "zero", "large"},
        "where": {"zero", "large"},
        "device": set(),
        "model_dtype": set(),
        "control_kinds": set(),  # random or random:K; no drawn value is one
    }
    if kind in rules:
        return cls in rules[kind]
    if action.dest == "set":  # KEY=VALUE; no drawn value has the '='
        return False
    if kind == "text_value":
        text_rules = {
            "model": set(), "models": set(), "experiment": set(), "run_dir": set(), "types": set(),
            "sites": set(),
            "source": {"file", "large", "huge"},  # a text file; digits are a Gutenberg id (download refused)
            "name": {"word", "nonfinite"},  # lamina new NAME: a lower-case identifier (some words are; so are nan, inf)
        }
        return cls in text_rules[action.dest]
    raise AssertionError(f"no rule for {command} {_flag(action)}")


def _snapshot(root: Path) -> dict:
    """Every file and directory under ``root``: a refused command changes none of them."""
    out = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = (path.is_dir(), None if path.is_dir() else path.stat().st_mtime_ns)
    return out


def _names(message: str, names) -> bool:
    text = message.lower()
    for name in names:
        name = name.lstrip("-").lower()
        forms = {name, name.replace("_", "-"), name.replace("_", " "), name.replace("-", "_"),
                 name.replace("-", " "), name.rstrip("s"), name.replace("_", " ").rstrip("s")}
        if any(form and form in text for form in forms):
            return True
    return False


def refused_or_accepted(argv, capsys, sandbox, names, may_accept: bool, what: str):
    """Run ``argv``; check the lamina way of refusing, or that accepting was allowed."""
    before = _snapshot(sandbox["work"])
    try:
        code = main(argv)
    except Reached:
        capsys.readouterr()
        assert may_accept, f"{what}: accepted, but this class of value must be refused: {argv!r}"
        assert _snapshot(sandbox["work"]) == before, f"{what}: accepted, but wrote before its real work"
        return "accepted", None
    captured = capsys.readouterr()
    err = captured.err
    if code == 0:
        assert may_accept, f"{what}: accepted, but this class of value must be refused: {argv!r}"
        return "accepted", None
    assert code == 2, f"{what}: exit status {code}, not 2, for {argv!r}:\n{err}"
    # lamina compare reports each model's progress on stderr; the error is one line after them.
    lines = [line for line in err.splitlines() if not line.startswith("lamina compare: ")]
    assert err.endswith("\n") and len(lines) == 1, f"{what}: not one line on stderr for {argv!r}:\n{err}"
    err = lines[0]
    assert err.startswith("lamina: error: ") and "Traceback" not in err, err
    assert _names(err, names), f"{what}: the error does not name {names}: {err}"
    after = _snapshot(sandbox["work"])
    if "--models" in names:  # a member that cannot load is named in the comparison's report (by design)
        assert not list(sandbox["work"].glob("out/runs/*/results.json")), "a run directory was left behind"
    else:
        assert after == before, f"{what}: a refused command changed {set(after) ^ set(before)}"
    return "refused", err


OPTIONS = _options()


def test_every_option_has_a_rule():
    for command, action in OPTIONS:
        for cls in CLASSES:
            _accepts(command, action, cls)  # raises for an option with no rule


@pytest.mark.parametrize("command,action", OPTIONS, ids=[f"{c}:{_flag(a)}" for c, a in OPTIONS])
def test_every_option_refuses_bad_values(command, action, sandbox, run_dir, capsys):
    paths = {**sandbox, "run_dir": run_dir}
    base = _base(command, paths)
    classes = values(paths)

    @FUZZ
    @given(st.data())
    def check(data):
        for cls in CLASSES:
            value = data.draw(classes[cls], label=cls)
            if cls == "damaged-model" and action.dest not in ("model", "models"):
                continue
            argv = _with(base, action, value)
            refused_or_accepted(argv, capsys, paths, [_flag(action), action.dest],
                                _accepts(command, action, cls), f"{command} {_flag(action)} ({cls})")

    check()


# ---- experiment settings, through `lamina run --set` and lamina.run ---------------------------------
def _settings():
    out = []
    for name, exp in EXPERIMENTS.items():
        for kind, cls in (("setting", exp.Config), ("option", exp.Options)):
            hints = typing.get_type_hints(cls)
            for field in dataclasses.fields(cls):
                out.append((name, kind, field.name, hints[field.name]))
    return out


def _kinds(hint) -> set:
    """The types a setting's value may have: int, float, bool, str, None, and "list" with its items' types."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, __import__("types").UnionType):
        return set().union(*(_kinds(a) for a in args))
    if origin in (tuple, list):
        return {"list"} | set().union(*(_kinds(a) for a in args if a is not Ellipsis))
    return {hint}


TEXT_SOURCES = ("book",)  # and every *_file setting: a path or a name, never a directory or binary file


def _declared_refusal(rule, hint, value: str) -> bool:
    """Whether ``value`` (as written on the command line) lies outside the setting's declared range or
    choices, so that it must be refused whatever its class."""
    kinds = _kinds(hint) - {type(None)}
    if rule is None or "list" in kinds:
        return False
    if rule.choices is not None and kinds == {str}:
        return value.strip() not in [str(choice) for choice in rule.choices]
    try:
        number = float(value)
    except ValueError:
        return False
    return bool(np.isfinite(number)) and _out_of_range(rule, number)


def _out_of_range(rule, number) -> bool:
    return ((rule.ge is not None and number < rule.ge) or (rule.gt is not None and number <= rule.gt)
            or (rule.le is not None and number > rule.le) or (rule.lt is not None and number >= rule.lt))


def _setting_accepts(key: str, hint, cls: str) -> bool:
    """Whether a setting of this type may accept ``cls`` (its check() may still refuse it; so may its
    declared rule: :func:`_declared_refusal`)."""
    kinds = _kinds(hint) - {type(None)}
    if cls in ALWAYS_BAD or cls == "damaged-model":
        return False
    if key in TEXT_SOURCES or key.endswith("_file"):
        return cls in ("file", "large", "huge") if key in TEXT_SOURCES else cls == "file"
    if str in kinds:
        return True
    numbers = kinds - {"list"}
    if cls == "nonfinite":
        return False
    if cls == "huge":
        return float in numbers
    ok = set()
    if int in numbers:
        ok |= {"negative", "zero", "large"}
    if float in numbers:
        ok |= {"negative", "zero", "large", "fraction"}
    if bool in numbers:
        ok |= {"zero"}
    return cls in ok


SETTINGS = _settings()
RULES = {(name, f.name): rule_of(f) for name, exp in EXPERIMENTS.items() for cls in (exp.Config, exp.Options)
         for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("experiment,kind,key,hint", SETTINGS,
                         ids=[f"{e}:{k}" for e, _, k, _ in SETTINGS])
def test_every_setting_refuses_bad_values(experiment, kind, key, hint, sandbox, capsys):
    """``lamina run EXP --set key=VALUE``: refused in one line naming the setting, or accepted up to the
    first recording; lamina.run with the same value raises the same message."""
    classes = values(sandbox)
    existing = sandbox["existing"]

    @FUZZ
    @given(st.data())
    def check(data):
        for cls in CLASSES:
            if cls == "damaged-model":
                continue
            value = data.draw(classes[cls], label=cls)
            argv = ["run", experiment, "--model", str(sandbox["model_dir"]), "--out", str(existing), "--force",
                    "--set", f"{key}={value}"]
            may = _setting_accepts(key, hint, cls) and not _declared_refusal(RULES[experiment, key], hint, value)
            outcome, line = refused_or_accepted(argv, capsys, sandbox, [key], may,
                                                f"{experiment} {key} ({cls})")
            if outcome == "refused":  # the Python API says the same
                with pytest.raises(LaminaError) as api:
                    _api_run(experiment, kind, key, value, sandbox)
                assert line == f"lamina: error: {lamina.errors.one_line(api.value)}", (line, str(api.value))

    check()


def _api_run(experiment, kind, key, value, sandbox):
    try:
        if kind == "option":
            return lamina.run(experiment, sandbox["model"], out=sandbox["existing"], force=True, options={key: value})
        return lamina.run(experiment, sandbox["model"], out=sandbox["existing"], force=True, settings={key: value})
    except Reached:
        raise AssertionError("the API accepted what the CLI refused")


@pytest.mark.parametrize("experiment,kind,key,hint", SETTINGS,
                         ids=[f"{e}:{k}" for e, _, k, _ in SETTINGS])
def test_settings_refuse_python_values_of_the_wrong_kind(experiment, kind, key, hint):
    """``lamina.run(..., key=value)`` with Python values (None, lists, dicts, NaN, bools, bytes): a
    LaminaError naming the setting, before any model loads, or a typed config."""
    exp = EXPERIMENTS[experiment]
    build = exp.options if kind == "option" else exp.config
    anything = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(),
                         st.text(max_size=6), st.binary(max_size=4), st.lists(st.integers(), max_size=3),
                         st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                         st.just(object()), st.just(Path("/nonexistent")))

    @API
    @given(anything)
    def check(value):
        try:
            config = build({key: value})
        except LaminaError as err:
            assert "\n" not in str(err) and _names(str(err), [key]), str(err)
            return
        got = getattr(config, key)
        kinds = _kinds(hint)
        if got is None:
            assert type(None) in kinds, (value, got)
        elif isinstance(got, tuple):
            assert "list" in kinds and all(type(item) in kinds for item in got), (value, got)
        else:
            assert type(got) in kinds, (value, got)
        assert not isinstance(value, (bytes, dict)) and type(value) is not object, (value, got)

    check()


# ---- the declared rules: values just outside each range or choice refused, values inside accepted -----
# Settings that another setting bounds (the cross-field rules of a Config.check): what keeps a value that
# is inside its own declared range valid as a whole.
COMPANIONS = {
    ("position", "n_samples"): lambda v: {"test_start": v},
    ("position", "train_start"): lambda v: {"test_start": v + 500},
    ("position", "test_start"): lambda v: {"train_start": v + 500},
    ("attn-kl", "window"): lambda v: {"skip_first": 0},
    ("attn-kl", "skip_first"): lambda v: {"window": v + 4},
    ("heads", "window"): lambda v: {"skip_first": 0},
    ("heads", "skip_first"): lambda v: {"window": max(4, v + 2)},
    ("mlp-stages", "replicates"): lambda v: {"max_targets": 3 * v},
    ("mlp-stages", "max_targets"): lambda v: {"replicates": 1},
}
LIST_EXAMPLES = {("categories", "tornado_range"): (0.4, 1.0)}  # a valid value where the default is None
LIMITS = ("ge", "gt", "le", "lt", "choices", "items", "min_items", "unique", "order")


def _limits(rule) -> bool:
    """Whether ``rule`` declares something a value can break, not only what the setting means (``book``)."""
    return any(getattr(rule, name) not in (None, False) for name in LIMITS)


DECLARED = [(e, k, key, hint) for e, k, key, hint in SETTINGS  # a check's values: its own tests
            if RULES[e, key] is not None and RULES[e, key].check is None and _limits(RULES[e, key])]


def test_every_number_and_list_setting_declares_its_rule():
    """A count, a number or a list with no declared range, length or order would take any value: each
    such setting declares one (text and true/false settings are typed by their annotation alone)."""
    bare = [(e, key) for e, _, key, hint in SETTINGS
            if RULES[e, key] is None and _kinds(hint) - {type(None)} - {str, bool}]
    assert not bare, f"settings without a declared rule: {bare}"


def _below(x, kind):
    return x - 1 if kind is int else math.nextafter(x, -math.inf)


def _above(x, kind):
    return x + 1 if kind is int else math.nextafter(x, math.inf)


def _edges(rule, kind) -> tuple[list, list]:
    """Each declared bound's nearest values inside and outside it."""
    inside, outside = [], []
    if rule.ge is not None:
        inside, outside = inside + [kind(rule.ge)], outside + [_below(kind(rule.ge), kind)]
    if rule.gt is not None:
        inside, outside = inside + [_above(kind(rule.gt), kind)], outside + [kind(rule.gt)]
    if rule.le is not None:
        inside, outside = inside + [kind(rule.le)], outside + [_above(kind(rule.le), kind)]
    if rule.lt is not None:
        inside, outside = inside + [_below(kind(rule.lt), kind)], outside + [kind(rule.lt)]
    return inside, outside


def _drawn(rule, kind):
    """Strategies of a value inside the declared range and one outside it (None: no side to draw from)."""
    low = rule.ge if rule.ge is not None else rule.gt
    high = rule.le if rule.le is not None else rule.lt
    if kind is int:
        first = None if low is None else int(low) + (rule.gt is not None)
        last = None if high is None else int(high) - (rule.lt is not None)
        inside = st.integers(first, last if last is not None else (first or 0) + 10 ** 6)
        outside = [st.integers(first - 10 ** 6, first - 1)] if first is not None else []
        outside += [st.integers(last + 1, last + 10 ** 6)] if last is not None else []
    else:
        base = low if low is not None else high - 1e6
        inside = st.floats(base, high if high is not None else base + 1e6, exclude_min=rule.gt is not None,
                           exclude_max=rule.lt is not None)
        outside = [st.floats(low - 1e6, low, exclude_max=rule.ge is not None)] if low is not None else []
        outside += [st.floats(high, high + 1e6, exclude_min=rule.le is not None)] if high is not None else []
    return inside, (st.one_of(outside) if outside else None)


def _list_cases(rule, example: tuple) -> tuple[list, list]:
    """(accepted, refused) lists made from a valid one by breaking one declared rule at a time."""
    good, bad = [example], []
    if rule.items is not None:
        bad += [example[:-1], example + example[-1:]]
    if rule.min_items is not None:
        bad.append(example[:rule.min_items - 1])
    if rule.unique:
        bad.append(example + example[:1])
    if rule.order and len(set(example)) > 1:
        bad.append(tuple(reversed(example)))
    if rule.choices is not None:
        bad.append((f"{example[0]}x",) + example[1:])
        if rule.min_items in (None, 1) and rule.items is None:
            good += [(choice,) for choice in rule.choices]
    kind = type(example[0])
    for inside, outside in zip(*_edges(rule, kind)):
        if kind in (int, float):
            good.append((inside,) + example[1:] if not rule.order or inside < example[1] else example)
            bad.append((outside,) + example[1:] if outside < example[0] else example[:-1] + (outside,))
    return good, bad


def _refused_by_rule(build, experiment, what, key, value):
    with pytest.raises(LaminaError) as err:
        build({key: value})
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{experiment}: {what} {key!r} "), (value, message)
    assert " must " in message and ", not " in message, (value, message)


@pytest.mark.parametrize("experiment,kind,key,hint", DECLARED, ids=[f"{e}:{k}" for e, _, k, _ in DECLARED])
def test_declared_rules_refuse_values_just_outside(experiment, kind, key, hint):
    """Values generated from each setting's declaration (its bounds, choices, list length, uniqueness,
    order): just outside refused by ``build`` with the one-line message naming experiment, setting, rule
    and value; inside (the bound itself, values drawn within) accepted, as Python values and as text."""
    exp = EXPERIMENTS[experiment]
    build = exp.options if kind == "option" else exp.config
    what = "presentation option" if kind == "option" else "setting"
    rule, companions = RULES[experiment, key], COMPANIONS.get((experiment, key), lambda v: {})
    kinds = _kinds(hint) - {type(None)}
    written = lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731

    def accepted(value):
        for form in (value, written(value)):
            got = getattr(build({key: form, **companions(value)}), key)
            assert got == value, (form, got)

    def refused(value):
        for form in (value, written(value)) if value != () else (value,):  # "" is refused as empty
            _refused_by_rule(build, experiment, what, key, form)

    if "list" in kinds:
        default = next(f.default for f in dataclasses.fields(build().__class__) if f.name == key)
        good, bad = _list_cases(rule, tuple(LIST_EXAMPLES.get((experiment, key), default)))
        assert bad, f"{experiment} {key}: no case generated from {rule}"
        [accepted(value) for value in good]
        [refused(value) for value in bad]
        return
    if rule.choices is not None:
        choices = list(rule.choices)
        [accepted(choice) for choice in choices]
        [refused(value) for value in (f"{choices[0]}x", f"x{choices[-1]}", choices[0].upper())]
        return
    number = int if int in kinds else float
    inside, outside = _edges(rule, number)
    assert outside, f"{experiment} {key}: no bound declared in {rule}"
    [accepted(value) for value in inside]
    [refused(value) for value in outside]
    inner, outer = _drawn(rule, number)

    @API
    @given(inner, outer)
    def check(good, bad):
        accepted(good)
        refused(bad)

    check()


# ---- the Python API: lamina.record, lamina.load, the stimulus builders -----------------------------
# Calls without a model load are cheap: these draw more examples.
API = settings(FUZZ, max_examples=10 * EXAMPLES)
ANY = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(), st.text(max_size=8),
                st.binary(max_size=4), st.lists(st.integers(-5, 5), max_size=3),
                st.dictionaries(st.sampled_from(["hidden", "x"]), st.integers(-3, 3), max_size=2),
                st.just(object()))


def _api_case(fn, args: dict, name: str, value):
    """Call ``fn`` with ``args`` and ``name=value``: a result or a one-line LaminaError, never another error."""
    try:
        return fn(**{**args, name: value})
    except LaminaError as err:
        assert "\n" not in str(err), str(err)
        return err
    except Reached:
        return None


def _parameters(fn, skip=()):
    return [p for p in inspect.signature(fn).parameters if p not in skip]


@pytest.mark.parametrize("name", _parameters(lamina.record, skip=("backend", "workers", "ray_address")))
def test_record_arguments(name, world, tmp_path):
    stim = lamina.Stimuli([[1, 2, 3, 4], [5, 6, 7]])
    args = {"model": world["model"], "stimuli": stim, "sites": ["hidden"], "progress": False}

    @API
    @given(ANY)
    def check(value):
        if name == "out" and isinstance(value, str) and value:
            value = str(tmp_path / "rec" / value.replace("/", "_").replace("\x00", "_"))
        _api_case(lamina.record, args, name, value)

    check()


@pytest.mark.parametrize("name", _parameters(lamina.load))
def test_load_arguments(name, world):
    args = {"name_or_path": str(world["model_dir"])}
    values_ = st.one_of(ANY, st.sampled_from([str(world["truncated"]), str(world["gguf"]), str(world["dir"]),
                                             str(world["text"]), "cuda:7", "meta", "bogus"]))

    @settings(max_examples=max(2, EXAMPLES), deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
    @given(values_)
    def check(value):
        _api_case(lamina.load, args, name, value)

    check()


BUILDERS = {
    lamina.stimuli.first_tokens: {"texts": [TEXT, TEXT[:40]], "n": 4},
    lamina.stimuli.window: {"text": TEXT, "length": 8},
    lamina.stimuli.windows: {"text": TEXT, "length": 8, "n": 2},
    lamina.stimuli.passage: {"text": TEXT[:200]},
    lamina.stimuli.one_long_sequence: {"text": TEXT, "length": 8},
    lamina.stimuli.word_in_contexts: {"text": TEXT, "words": [" sister"], "length": 4},
    lamina.stimuli.single_token_words: {"categories": {"a": ["cat", "dog"], "b": ["sun"]}},
    lamina.stimuli.check_single_tokens: {"words": ["cat", "dog"]},
}


@pytest.mark.parametrize("builder,name", [(b, n) for b in BUILDERS for n in _parameters(b)],
                         ids=[f"{b.__name__}:{n}" for b in BUILDERS for n in _parameters(b)])
def test_stimuli_builder_arguments(builder, name, world):
    args = {"tokenizer": world["model"], **BUILDERS[builder]}

    @API
    @given(ANY)
    def check(value):
        _api_case(builder, args, name, value)

    check()


def test_read_words_and_book_refuse_bad_paths(world):
    from lamina.stimuli import read_words

    for path in (world["dir"], world["binary"], world["root"] / "missing.csv", world["gguf"]):
        with pytest.raises(LaminaError):
            read_words(path)
    for path in (world["dir"], world["binary"], world["root"] / "missing.txt"):
        with pytest.raises(LaminaError):
            lamina.data.book(str(path))


# ---- an unexpected error is a bug: one line, exit 1, the traceback with --debug ---------------------
def test_internal_error_is_one_line_saying_it_is_a_bug(monkeypatch, capsys):
    import lamina.experiments.settings as settings_module

    def broken(*args, **kwargs):
        raise KeyError("an internal table lost its key")

    monkeypatch.setattr(settings_module, "describe", broken)
    assert main(["experiments", "-v"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bug in lamina" in err and "--debug" in err and "Traceback" not in err
    assert "KeyError" in err
    with pytest.raises(KeyError):
        main(["--debug", "experiments", "-v"])


def test_empty_setting_is_refused_not_the_default(capsys):
    assert main(["run", "attn-autoregression", "--set", "text="]) == 2
    assert "setting 'text' is empty" in capsys.readouterr().err
    with pytest.raises(LaminaError, match="setting 'text' is empty"):
        lamina.run("attn-autoregression", text="")


def test_list_settings_take_both_forms_and_are_documented(capsys):
    exp = EXPERIMENTS["categories"]
    for written in ("years,garage", " years , garage ", "('years', 'garage')", "['years','garage']",
                    '("years", "garage")'):
        assert exp.config({"context_words": written}).context_words == ("years", "garage"), written
    assert EXPERIMENTS["attn-kl"].config({"bins_sweep": "(5, 7)"}).bins_sweep == (5, 7)
    with pytest.raises(LaminaError, match="bins_sweep.*takes 2 items"):
        EXPERIMENTS["attn-kl"].config({"bins_sweep": "5"})
    with pytest.raises(LaminaError, match="context_words.*empty item"):
        exp.config({"context_words": "years,,garage"})
    assert main(["experiments", "-v"]) == 0
    out = capsys.readouterr().out
    assert "context_words=years,garage,lawn" in out and "--set \"context_words=('years','garage')\"" in out


def test_listed_cases(world, tmp_path, capsys, data_dir):
    """The cases issue 19 names, one by one."""
    cases = [
        (["sites", str(world["model_dir"]), "--device", "bogus"], "unknown device 'bogus'"),
        (["sites", str(world["gguf"])], "damaged, truncated or not a model"),
        (["sites", str(world["truncated"])], "damaged, truncated or not a model"),
        (["sites", str(world["dir"])], "has no config.json"),
        (["record", "--out", str(world["text"])], "is an existing file"),
        (["record", "--out", "/proc/lamina/x"], "cannot be created"),
        (["record", str(world["model_dir"]), "--out", str(tmp_path / "r"), "--source", str(world["binary"])],
         "is not UTF-8"),
        (["record", "--out", str(tmp_path / "r"), "--positions", "middle"], "argument --positions"),
        (["run", "attn-autoregression", "--set", "text="], "setting 'text' is empty"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "r").exists()

"""Where an experiment comes from: lamina itself, an installed distribution, a file, a module, an object.

Everything that takes an experiment (``lamina.run``, ``lamina.compare``, ``Run.load(path,
experiment=...)``, ``lamina run|compare SPEC``, ``lamina report DIR --experiment SPEC``) takes a
*spec*, resolved by :func:`resolve`:

* an :class:`~lamina.experiments.base.Experiment` object, used as it is;
* a name: a built-in experiment, else one that an installed distribution registers under the
  entry-point group ``lamina.experiments`` (``my-exp = "my_pkg:EXPERIMENT"``, or ``"my_pkg"`` for a
  module holding ``EXPERIMENT``; the entry point is named after the experiment);
* ``path/to/file.py:NAME``: the file imported by its path, ``NAME`` the attribute holding the
  experiment (``path/to/file.py`` alone: ``EXPERIMENT``); a package directory (``path/to/pkg:NAME``)
  imports its ``__init__.py`` with its relative imports. A file is imported again when it (or a
  file of the package) changes;
* ``my.module:NAME``: the module imported from ``sys.path``.

A built-in name wins over an entry point of the same name: that entry point is ignored with a
warning, and ``lamina experiments`` lists it as ignored (run it as ``my_pkg:EXPERIMENT``). Two
distributions registering one name is an error naming both.

Provenance: a run's manifest records ``experiment`` (the name) and ``experiment_source``, how it was
found: ``lamina``, ``entry-point:DIST``, ``file:/abs/path.py:NAME``, ``module:my.module:NAME`` or
``object:MODULE:NAME`` (an object, found as ``MODULE.NAME``; ``object:MODULE:`` when no module
attribute holds it). :func:`for_run` finds the experiment again from these two; an object is
remembered for the rest of the process, so an experiment defined in a notebook cell and run there
reads back there. An experiment from outside lamina also gets ``experiment_code``
(:func:`code_sha256`): ``lamina compare`` reuses its runs only while that code is unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import marshal
import os
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

from ..errors import LaminaError, closest, one_line
from .base import Deferred, Experiment

GROUP = "lamina.experiments"
LAMINA = "lamina"
SPECS = "a name from `lamina experiments`, FILE.py[:NAME], MODULE:NAME or an Experiment object"
PASS_IT = ("pass the experiment: lamina.Run.load(path, experiment=EXP) (Comparison.load likewise) or "
           "lamina report DIR --experiment FILE.py:NAME")

_files: dict[str, Path] = {}  # module name -> the file or package directory it was imported from
_passed: dict[str, Experiment] = {}  # source -> experiment given as an object in this process
_warned: set[tuple[str, str]] = set()


class Found(NamedTuple):
    """An experiment and how it was found (the manifest's ``experiment_source``)."""

    experiment: Experiment
    source: str


class Entry(NamedTuple):
    """One experiment known by name (``lamina experiments``): a built-in or an entry point."""

    name: str
    source: str  # "lamina" or "entry-point:DIST"
    experiment: Experiment | None  # None where it cannot be used by name
    problem: str | None = None  # why not


def _builtin() -> dict[str, Experiment]:
    from . import BUILTIN as found  # the package discovers them; imported here to avoid a cycle

    return found


# ------------------------------------------------------------------------------------------ by name


def _entry_points() -> dict[str, list[tuple[str, importlib.metadata.EntryPoint]]]:
    """name -> [(distribution, entry point)] of the group, as installed now (by distribution name)."""
    out: dict[str, list] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = (ep.dist.name if ep.dist is not None else None) or "an unnamed distribution"
        out.setdefault(ep.name, []).append((dist, ep))
    return {name: sorted(claims, key=lambda claim: claim[0]) for name, claims in out.items()}


def _load_entry(name: str, dist: str, ep) -> Experiment:
    where = f"entry point {name!r} of {dist} ({ep.value})"
    try:
        obj = ep.load()
    except Exception as err:  # noqa: BLE001 - the distribution's code: named in one line
        raise LaminaError(f"{where} cannot be loaded: {_why(err)}.") from err
    if inspect.ismodule(obj):
        obj = _attribute(obj, "EXPERIMENT", ep.value, kind=f"entry point {name!r} of {dist}: ", default=True)
    elif not isinstance(obj, Experiment):
        raise LaminaError(f"{where} is {_a(obj)}, not a lamina Experiment.")
    if obj.name != name:
        raise LaminaError(f"{where} gives the experiment {obj.name!r}; the entry point must be named after it "
                          f"({obj.name} = \"{ep.value}\").")
    return obj


def _run_as(ep) -> str:
    return ep.value if ":" in ep.value else f"{ep.value}:EXPERIMENT"


def catalog() -> list[Entry]:
    """The experiments known by name: the built-ins in seed-notebook order, then the entry points by name
    (those that cannot be used by name with the reason: a clash, a load error)."""
    builtin = _builtin()
    entries = [Entry(name, LAMINA, exp) for name, exp in builtin.items()]
    for name, claims in sorted(_entry_points().items()):
        for dist, ep in claims:
            problem, exp = None, None
            if name in builtin:
                problem = f"ignored: {name!r} is a built-in experiment, which wins; run this one as {_run_as(ep)}"
            elif len(claims) > 1:
                problem = f"ignored: {_claimed(name, claims)}"
            else:
                try:
                    exp = _load_entry(name, dist, ep)
                except LaminaError as err:
                    problem = str(err)
            entries.append(Entry(name, f"entry-point:{dist}", exp, problem))
    return entries


def _claimed(name: str, claims) -> str:
    return (f"{len(claims)} installed distributions register the experiment {name!r} "
            f"({', '.join(f'{dist}: {ep.value}' for dist, ep in claims)}); uninstall one, or run one as MODULE:NAME")


def _by_name(name: str) -> Found:
    builtin = _builtin()
    claims = _entry_points().get(name, [])
    if name in builtin:
        for dist, ep in claims:
            if (name, dist) not in _warned:
                _warned.add((name, dist))
                warnings.warn(f"lamina: the entry point {name!r} of {dist} is ignored: {name!r} is a built-in "
                              f"experiment, which wins; run that one as {_run_as(ep)}.", stacklevel=2)
        return Found(builtin[name], LAMINA)
    if len(claims) > 1:
        raise LaminaError(_claimed(name, claims) + ".")
    if claims:
        dist, ep = claims[0]
        return Found(_load_entry(name, dist, ep), f"entry-point:{dist}")
    known = list(builtin) + [n for n in _entry_points() if n not in builtin]
    module = f" (a module: {name}:NAME)" if "." in name else ""
    raise LaminaError(f"unknown experiment {name!r}.{closest(name, known)} Experiments: {', '.join(known)}; "
                      f"or give FILE.py[:NAME], MODULE:NAME{module} or an Experiment object.")


def _entry(name: str, dist: str) -> Found:
    """The entry-point experiment ``name`` that ``dist`` registered when a run recorded it."""
    claims = [(d, ep) for d, ep in _entry_points().get(name, []) if d == dist]
    if not claims:
        raise LaminaError(f"no installed distribution {dist} registers the experiment {name!r} any more")
    return Found(_load_entry(name, *claims[0]), f"entry-point:{dist}")


# ------------------------------------------------------------------------------ files and modules


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {one_line(err)}".rstrip(": ")


def _a(obj) -> str:
    kind = type(obj).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _attribute(module, name: str, where: str, *, kind: str = "", default: bool = False) -> Experiment:
    """``module.name`` (dotted: attributes of attributes), checked to be an Experiment; ``kind where`` names
    the module in messages (``where:NAME`` is how to name another attribute)."""
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            held = [k for k, v in vars(module).items() if isinstance(v, Experiment)]
            said = (f"{kind}{where} defines no EXPERIMENT; name the attribute that holds the experiment "
                    f"({where}:NAME)." if default else f"{kind}{where} has no attribute {name!r}.")
            listed = f" Experiments in it: {', '.join(held)}." if held else " It holds no Experiment."
            raise LaminaError(f"{said}{closest(name, held)}{listed}")
        obj = getattr(obj, part)
    if not isinstance(obj, Experiment):
        raise LaminaError(f"{kind}{where}:{name} is {_a(obj)}, not a lamina Experiment "
                          "(lamina.experiments.Experiment).")
    return obj


def _stamp(path: Path) -> tuple:
    """What says the file (a package: any of its .py files) changed since it was imported."""
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def _import_file(path: Path):
    """The module of the file (or package directory) ``path``, imported under a name of its own."""
    package = path.is_dir()
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in (path.name if package else path.stem))
    name = f"_lamina_file_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{stem}"
    stamp = _stamp(path)
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__lamina_stamp__", None) == stamp:
        return module

    def forget():
        for key in [k for k in sys.modules if k == name or k.startswith(f"{name}.")]:
            del sys.modules[key]

    forget()  # changed since: import it (and its submodules) afresh
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py" if package else path,
                                                  submodule_search_locations=[str(path)] if package else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the user's code: named in one line
        forget()
        raise LaminaError(f"importing the experiment file {path} failed: {_why(err)}.") from err
    module.__lamina_stamp__ = stamp
    _files[name] = path
    return module


def _from_file(text: str, attr: str | None) -> Found:
    path = Path(text).expanduser()
    if path.name == "__init__.py" and path.is_file():
        path = path.parent  # a package: imported with its submodules, so its relative imports work
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise LaminaError(f"experiment path {text!r} is a directory without __init__.py; give a .py file or "
                              "a package directory.")
    elif not path.is_file():
        where = "" if path.is_absolute() else f" (from {Path.cwd()})"
        raise LaminaError(f"experiment file {text!r} does not exist{where}.")
    elif path.suffix != ".py":
        raise LaminaError(f"experiment file {text!r} is not a Python file (.py).")
    path = path.resolve()
    name = attr or "EXPERIMENT"
    exp = _attribute(_import_file(path), name, str(path), kind="experiment file ", default=attr is None)
    return Found(exp, f"file:{path}:{name}")


def _from_module(module_name: str, attr: str) -> Found:
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise LaminaError(f"{module_name!r} is not a module name; an experiment is {SPECS}.")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - the user's code: named in one line
        if isinstance(err, ModuleNotFoundError) and err.name and (
                module_name == err.name or module_name.startswith(f"{err.name}.")):
            local = Path(*module_name.split(".")).with_suffix(".py")
            hint = (f"; for the file in this directory write ./{local}:{attr}" if local.is_file()
                    else "; install it or add its folder to PYTHONPATH")
            raise LaminaError(f"cannot import the experiment module {module_name!r} ({_why(err)}){hint}.") from err
        raise LaminaError(f"importing the experiment module {module_name!r} failed: {_why(err)}.") from err
    exp = _attribute(module, attr, module_name, kind="experiment module ")
    return Found(exp, LAMINA if _builtin().get(exp.name) is exp else f"module:{module_name}:{attr}")


# ------------------------------------------------------------------------------------------ objects


def _object(exp: Experiment) -> Found:
    """An Experiment given as an object: a built-in's, an entry point's, else where a module holds it."""
    if _builtin().get(exp.name) is exp:
        return Found(exp, LAMINA)
    claims = _entry_points().get(exp.name, [])
    if len(claims) == 1 and exp.name not in _builtin():
        dist, ep = claims[0]
        try:
            if _load_entry(exp.name, dist, ep) is exp:
                return Found(exp, f"entry-point:{dist}")
        except LaminaError:
            pass
    defined = [getattr(obj, "__module__", None) for obj in (exp.compute, exp.Result, exp.Config)]
    candidates = [".".join(m.split(".")[:i]) for m in defined if m for i in range(1, m.count(".") + 2)]
    source = f"object:{defined[0] or '?'}:"
    for module_name in dict.fromkeys([*candidates, "__main__"]):
        module = sys.modules.get(module_name)
        attr = next((k for k, v in list(vars(module).items()) if v is exp), None) if module is not None else None
        if attr is not None:
            source = (f"file:{_files[module_name]}:{attr}" if module_name in _files
                      else f"object:{module_name}:{attr}")
            break
    if source.startswith("object:"):
        _passed[source] = exp
    return Found(exp, source)


# --------------------------------------------------------------------------------------- resolution


def locate(spec) -> Found:
    """The experiment ``spec`` names (see the module docstring) and how it was found."""
    found = _locate(spec)
    if _builtin().get(found.experiment.name) is not found.experiment:
        _EXTERNAL_FILES.update(_defining_files(found.experiment))
    return found


#: The files that define the experiments from outside lamina found in this process: an error raised in one
#: of them is the experiment's, not lamina's (the CLI says so).
_EXTERNAL_FILES: set[str] = set()


def external_files() -> frozenset[str]:
    """The absolute paths of the files defining the external experiments located in this process."""
    return frozenset(_EXTERNAL_FILES)


def _parts(exp: Experiment) -> tuple:
    """The functions and types that define ``exp`` (a deferred ``compute`` imported: its file counts too)."""
    compute = exp.compute.resolve() if isinstance(exp.compute, Deferred) else exp.compute
    return (compute, exp.tables, exp.profiles, exp.figures, exp.report, exp.control_settings, exp.Config,
            exp.Options, exp.Result)


def _defining_files(exp: Experiment) -> set[str]:
    out = set()
    for obj in _parts(exp):
        target = inspect.unwrap(obj) if callable(obj) else obj
        try:
            file = inspect.getsourcefile(target) if obj is not None else None
        except TypeError:
            file = None
        if file and not (getattr(obj, "__module__", "") or "").startswith("lamina."):
            out.add(os.path.abspath(file))
    return out


def _locate(spec) -> Found:
    if isinstance(spec, Found):
        return spec
    if isinstance(spec, Experiment):
        return _object(spec)
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise LaminaError(f"an experiment is {SPECS}, not {one_line(repr(spec))}.")
    text = spec.strip()
    head, colon, attr = text.rpartition(":")
    if not (colon and head and all(part.isidentifier() for part in attr.split("."))):
        head, attr = text, None
    if head.endswith(".py") or "/" in head or os.sep in head or (os.altsep and os.altsep in head):
        return _from_file(head, attr)
    if attr is not None:
        return _from_module(head, attr)
    return _by_name(text)


def resolve(spec) -> Experiment:
    """The :class:`Experiment` that ``spec`` names: an Experiment, a built-in or entry-point name,
    ``path/to/file.py[:NAME]`` or ``my.module:NAME``; a LaminaError (one line) says what is wrong."""
    return locate(spec).experiment


def for_run(name: str, source: str | None, experiment=None, *, where) -> Found:
    """The experiment of the run (or comparison) directory ``where`` whose manifest records ``name`` and
    ``source``: ``experiment`` when given (a spec; it must have that name), else found again from the source."""
    if experiment is not None:
        found = locate(experiment)
        if found.experiment.name != name:
            raise LaminaError(f"{where} holds a run of the experiment {name!r}, not of {found.experiment.name!r}.")
        return found
    try:
        if source is not None and not isinstance(source, str):
            raise LaminaError(f"its experiment_source {one_line(repr(source))} is not text (the manifest is damaged)")
        kind, _, rest = (source or "").partition(":")
        if source in (None, LAMINA):
            found = _by_name(name)
            if source == LAMINA and found.source != LAMINA:
                raise LaminaError(f"lamina has no built-in experiment {name!r} (any more)")
        elif kind == "entry-point":
            found = _entry(name, rest)
        elif kind == "file":
            path, _, attr = rest.rpartition(":")
            if not Path(path).exists():
                raise LaminaError(f"its file {path} no longer exists")
            found = _from_file(path, attr)
        elif kind == "module":
            found = _from_module(*rest.rpartition(":")[::2])
        elif kind == "object":
            module_name, _, attr = rest.rpartition(":")
            if source in _passed:
                found = Found(_passed[source], source)
            elif module_name == "__main__" or not attr:
                raise LaminaError("it was given as an object defined in a notebook or script that is not running here")
            else:
                found = Found(_from_module(module_name, attr).experiment, source)
        else:
            raise LaminaError(f"its experiment_source {source!r} is not one lamina knows")
        if found.experiment.name != name:
            raise LaminaError(f"{source} now holds the experiment {found.experiment.name!r}")
    except LaminaError as err:
        raise LaminaError(f"{where}: cannot find its experiment {name!r} ({source or 'by name'}): "
                          f"{str(err).rstrip('.')}; {PASS_IT}.") from err
    return Found(found.experiment, source or found.source)


def spec_of(name: str, source: str | None) -> str:
    """How ``lamina run`` names the experiment a manifest records (``name`` where nothing better)."""
    kind, _, rest = (source if isinstance(source, str) else "").partition(":")
    if kind == "file" or (kind in ("module", "object") and not rest.startswith("__main__:") and
                          not rest.endswith(":")):
        return rest
    return name


def code_sha256(exp: Experiment) -> str | None:
    """The sha256 of the code that defines an experiment from outside lamina (None for a built-in: lamina's
    version stands for its code): the files of the modules that define its functions and types (the source
    or bytecode of those defined in a notebook). Modules these import are not included."""
    if _builtin().get(exp.name) is exp:
        return None
    parts = set()
    for obj in _parts(exp):
        module_name = getattr(obj, "__module__", None) or ""
        if obj is None or module_name == "lamina" or module_name.startswith("lamina."):
            continue
        file = getattr(sys.modules.get(module_name), "__file__", None)
        if file and Path(file).is_file():
            parts.add(hashlib.sha256(Path(file).read_bytes()).hexdigest())
            continue
        try:
            code = inspect.getsource(obj).encode()
        except (OSError, TypeError):
            code = marshal.dumps(obj.__code__) if hasattr(obj, "__code__") else repr(obj).encode()
        parts.add(hashlib.sha256(f"{getattr(obj, '__qualname__', '')}\n".encode() + code).hexdigest())
    return hashlib.sha256("".join(sorted(parts)).encode()).hexdigest()

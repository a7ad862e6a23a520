"""List the public names of lamina that have no docstring: `python scripts/docstrings.py` (exit 1 if any).

The docs site's API reference is generated from docstrings (mkdocstrings), so a public name without
one would be a bare signature; `make docs` runs this check first (scripts/mkdocs_hooks.py) and fails
listing them. What counts as public (docs/api/index.md says the same):

- the names in the ``__all__`` of ``lamina`` and of each stage package in ``PACKAGES`` (a package
  without ``__all__``: the names its ``__init__`` imports that do not start with an underscore);
- the modules in ``MODULES`` (whole modules are the API there: ``lamina.edits``, the figure families
  of ``lamina.plots``) and their names by the same rule, or every name they define without an
  underscore where they have no ``__all__``;
- the methods and properties of a public class that do not start with an underscore, defined in
  lamina (inherited ones from the standard library or numpy are not ours to document).

Read statically with griffe (the library mkdocstrings reads), so nothing is imported: no torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import griffe

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

#: The stage packages, in the order of docs/design.md, whose ``__all__`` is their public face.
PACKAGES = ["lamina.models", "lamina.data", "lamina.stimuli", "lamina.recording", "lamina.stats",
            "lamina.plots", "lamina.experiments", "lamina.report", "lamina.comparison"]
#: Modules whose names are public although their package's ``__init__`` does not import them.
MODULES = ["lamina.recording.edits", "lamina.runner"] + [
    f"lamina.plots.{name}" for name in ("confusion", "depth", "distributions", "histograms", "matrices", "profiles",
                                        "regression", "replicates", "selectivity", "stages")]


def load(src: Path = SRC) -> griffe.Module:
    """The package ``lamina`` under ``src``, read statically."""
    return griffe.load("lamina", search_paths=[str(src)], resolve_aliases=True, resolve_external=False)


def face_names(package: griffe.Module) -> list[str]:
    """``__all__`` where it is defined, else the imported names without a leading underscore."""
    if package.exports:
        return [str(name) for name in package.exports]
    return [name for name, member in package.members.items() if not name.startswith("_") and member.is_alias]


def module_names(module: griffe.Module) -> list[str]:
    """A public module's names: ``__all__``, else what it defines (not imports) without an underscore."""
    if module.exports:
        return [str(name) for name in module.exports]
    return [name for name, member in module.members.items()
            if not name.startswith("_") and not member.is_alias and (member.is_function or member.is_class)]


def face_object(package: griffe.Module, name: str) -> griffe.Object:
    """``package[name]``, except where the name is also a submodule's (a function ``f`` imported from ``f.py``;
    none today: ``models/load.py`` became ``loading.py``): griffe reads the submodule there, the user the function."""
    obj = package[name]
    if obj.is_module and not obj.is_alias and name in obj.members:
        return obj[name]
    return obj


def shadowed(package: griffe.Module) -> list[str]:
    """The public names of ``package`` that are also its submodules' (see :func:`face_object`)."""
    return [name for name in face_names(package) if face_object(package, name) is not package[name]]


def top_level(lamina: griffe.Module) -> dict[str, griffe.Object]:
    """lamina's own names: imported on first use (PEP 562), so read from its ``_LAZY`` table."""
    import ast
    table = ast.literal_eval(str(lamina.members["_LAZY"].value))
    found = {}
    for name, (module, attribute) in table.items():
        target = lamina[module.lstrip(".")]
        found[f"lamina.{name}"] = target[attribute] if attribute else target
    return found


def public(lamina: griffe.Module) -> dict[str, griffe.Object]:
    """Every public object by the rule above, keyed by the path a user writes."""
    objects = top_level(lamina)
    for path in PACKAGES:
        package = lamina[path.removeprefix("lamina.")]
        objects[path] = package
        objects.update({f"{path}.{name}": face_object(package, name) for name in face_names(package)})
    for path in MODULES:
        module = lamina[path.removeprefix("lamina.")]
        objects[path] = module
        objects.update({f"{path}.{name}": module[name] for name in module_names(module)})
    for path, obj in list(objects.items()):
        target = obj.final_target if obj.is_alias else obj
        if target.is_class:
            for name, member in target.members.items():
                if name.startswith("_") or member.is_alias or not (member.is_function or "property" in member.labels):
                    continue
                objects[f"{path}.{name}"] = member
    return objects


def documentable(obj: griffe.Object) -> bool:
    """Functions, properties, classes and modules carry docstrings; constants (``SITES``, ``STYLE``) and
    dataclass fields are data (a class's docstring says what its fields hold)."""
    target = obj.final_target if obj.is_alias else obj
    return target.is_function or target.is_class or target.is_module or "property" in target.labels


def missing(src: Path = SRC) -> list[str]:
    """The public paths with no (or an empty) docstring, sorted, each with its file and line."""
    lamina = load(src)
    seen, out = set(), []
    for path, obj in public(lamina).items():
        target = obj.final_target if obj.is_alias else obj
        if target.path in seen:  # lamina.Model is lamina.models.Model: name it once
            continue
        seen.add(target.path)
        if documentable(target) and not (target.docstring and target.docstring.value.strip()):
            out.append(f"{path}  ({target.relative_filepath}:{target.lineno})")
    return sorted(out)


def main() -> int:
    names = missing()
    for line in names:
        print(line)
    print(f"{len(names)} public names without a docstring", file=sys.stderr)
    return 1 if names else 0


if __name__ == "__main__":
    sys.exit(main())

"""A run's specification as one typed value: :class:`RunSpec`, built and checked once at the edge.

``lamina run`` (the CLI or the API) and every member of ``lamina compare`` build one
:class:`RunSpec`: the experiment is resolved once, the settings are split into compute settings and
presentation options once (by the declared fields of ``Config`` and ``Options``), and each is
converted and checked once by its declared rule (:mod:`lamina.experiments.settings`). What runs the
experiment (:func:`lamina.runner.run_spec`) takes the typed value and parses nothing again.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from ..errors import LaminaError, one_line
from .settings import coerce, enforce
from .sources import Found, locate


@dataclass(frozen=True, eq=False)
class RunSpec:
    """Everything that decides one run, typed and checked.

    Attributes:
        experiment: the resolved experiment and how it was found (:class:`~lamina.experiments.Found`;
            the manifest's ``experiment_source``).
        config: the typed compute config (an instance of the experiment's ``Config``).
        options: the typed presentation options (an instance of its ``Options``).
        model: a :class:`~lamina.models.Model` or anything :func:`lamina.load` takes.
        seed: seeds every random choice of the run.
        load: keyword arguments of :func:`lamina.load` for a model given by name (``device``, ``dtype``,
            ``trust_remote_code`` and any ``load_kwargs``).
        given: the settings as they were given (names and values before conversion), so an error found
            later with the model or the data can say which ``--set`` led to it.
    """

    experiment: Found
    config: object
    options: object
    model: object = "smollm2-135m"
    seed: int = 0
    load: dict = field(default_factory=dict)
    given: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.experiment.experiment.name

    @classmethod
    def build(cls, experiment, model="smollm2-135m", *, settings: dict | None = None, options: dict | None = None,
              sets: dict | None = None, seed: int = 0, device=None, dtype=None, trust_remote_code: bool = False,
              load_kwargs: dict | None = None, **kwargs) -> RunSpec:
        """The checked specification; a LaminaError (one line) for the first thing that is wrong.

        Args:
            experiment: any spec :func:`lamina.experiments.locate` takes (or its :class:`Found`).
            settings / kwargs: compute settings (values or strings); options: presentation options.
            sets: the command line's ``--set`` pairs, settings and options mixed: split here by the
                experiment's declared ``Options`` fields (a name that is neither is refused as an
                unknown setting).
            seed, device, dtype, trust_remote_code, load_kwargs: as :func:`lamina.run` takes them.
        """
        found = locate(experiment)
        exp = found.experiment
        if settings is not None and not isinstance(settings, dict):
            raise LaminaError(f"settings are a dict {{name: value}}, not {type(settings).__name__}.")
        given = {**(settings or {}), **kwargs}
        if sets:
            names = {f.name for f in dataclasses.fields(exp.Options)}
            given.update({k: v for k, v in sets.items() if k not in names})
            picked = {k: v for k, v in sets.items() if k in names}
            if picked:
                options = {**(options or {}), **picked}
        config = exp.config(given)
        presentation = exp.options(options)
        check_seed(seed, "seed")
        if not isinstance(trust_remote_code, bool):
            raise LaminaError(f"trust_remote_code must be True or False, not {one_line(repr(trust_remote_code))}.")
        if load_kwargs is not None and not isinstance(load_kwargs, dict):
            raise LaminaError(f"load_kwargs is a dict of lamina.load arguments, not {type(load_kwargs).__name__}.")
        clash = set(load_kwargs or {}) & {"device", "dtype", "trust_remote_code"}
        if clash:
            raise LaminaError(f"give {sorted(clash)[0]} as its own argument, not in load_kwargs.")
        load = {"device": device, "dtype": dtype, "trust_remote_code": trust_remote_code, **(load_kwargs or {})}
        return cls(found, config, presentation, model, seed, load, given)

    def amended(self, changes: dict) -> RunSpec:
        """This specification with the compute settings ``changes`` applied to its typed config (converted
        and checked by their declared rules, the config's own ``check()`` too): a control's settings in
        ``lamina compare`` (:attr:`~lamina.experiments.Experiment.control_settings`)."""
        return dataclasses.replace(self, config=amend(self.config, changes, experiment=self.name))


def amend(config, changes: dict, *, experiment: str, kind: str = "setting"):
    """``config`` (a typed settings instance) with ``changes`` applied by ``dataclasses.replace``, each
    value converted to its field's type and the result checked as :func:`~lamina.experiments.settings.build`
    checks a new one."""
    if not changes:
        return config
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    for key in changes:
        if key not in names:
            raise LaminaError(f"unknown {kind} {one_line(repr(key))} for experiment {experiment!r}.")
    out = dataclasses.replace(config, **{k: coerce(k, v, hints[k]) for k, v in changes.items()})
    enforce(out, experiment=experiment, kind=kind)
    check = getattr(out, "check", None)  # the rules that tie settings together, as build applies them
    if check:
        check()
    return out


def check_seed(value, name: str) -> None:
    """A LaminaError unless ``value`` is an integer from 0 to 2**63 - 1."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 63:
        raise LaminaError(f"{name} must be an integer from 0 to 2**63 - 1, not {one_line(repr(value))}.")

"""The plan of a comparison: who takes part, each member's run key, and whether its run exists already.

A *member* is one model of the comparison: a trained model, or its untrained control. Each member's
run is an ordinary run directory (``lamina.Run.load`` reads it) named after its **run key**, the
sha256 of everything that decides its numbers:

* the experiment, its compute config (after ``--set``), the seed and lamina's version (and for an
  experiment from outside lamina the sha256 of its code, :func:`lamina.experiments.code_sha256`);
* the weights: their sha256 (as the manifest records it; known from the files before loading), or
  for an untrained control the config, init seed and torch version it is built from;
* the dtype, and a BOS override where one is given.

A directory with the member's key whose manifest and config agree is reused: nothing is loaded. A
model whose weights hash cannot be known (a hub model outside the local cache, a model built in
memory above 50M parameters) has no key and runs every time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from ..errors import LaminaError
from ..rundir import DATA_FILES, check

CONTROLS = ("random",)
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")


@dataclass
class Member:
    """One run of a comparison.

    Attributes:
        model: the trained model's name (a control shares it: ``control`` tells them apart).
        control: True for the untrained control of ``model``.
        label: how the report names it (``"gpt2"``, ``"gpt2 (untrained, seed 0)"``).
        seed: a control's initialisation seed (None for a trained model).
        spec: what to load: a name/path or a :class:`~lamina.models.Model`.
        device: the device it is loaded on (names only; a Model stays where it is).
        identity: the weights' sha256 (a control: its init identity); None when unknown.
        key: the run key (None: never reused); path: its run directory.
        status: ``"planned"``, then ``"new"``, ``"reused"`` or ``"failed"``; reason: why it failed.
        run: the finished :class:`~lamina.runner.Run` (None when failed).
    """

    model: str
    control: bool
    label: str
    spec: object
    device: str | None = None
    seed: int | None = None
    identity: str | None = None
    key: str | None = None
    path: Path | None = None
    status: str = "planned"
    reason: str | None = None
    run: object = None
    seconds: float = 0.0
    facts: dict = field(default_factory=dict)


def parse_models(models) -> list:
    """``"a,b@cuda:1"`` or a list of names / :class:`Model` objects -> a list of (spec, device or None).

    A name may end in ``@DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) to place that model alone.
    """
    from ..models import Model  # here, not above: loading a comparison's directory needs no torch

    if isinstance(models, (str, Model)):
        models = [models] if isinstance(models, Model) else [m for m in models.split(",")]
    items = []
    for spec in models:
        if isinstance(spec, Model):
            items.append((spec, None))
            continue
        if not isinstance(spec, str) or not spec.strip():
            raise LaminaError(f"--models takes model names separated by commas (e.g. smollm2-135m,gemma3-270m), "
                              f"not {spec!r}.")
        spec = spec.strip()
        name, at, device = spec.rpartition("@")
        if at and _DEVICE.match(device):
            items.append((name, device))
        else:
            items.append((spec, None))
    if len(items) < 1:
        raise LaminaError("a comparison needs at least one model (--models a,b,...).")
    names = [spec.name if isinstance(spec, Model) else spec for spec, _ in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LaminaError(f"model {repeated[0]!r} is named twice; each model of a comparison needs its own name.")
    return items


#: Untrained controls per model with ``--controls random`` (init seeds control_seed .. control_seed + 4):
#: a band for another initialisation needs the spread of several, one gives none, and with K of them
#: the family-wise band over 30 layers uses Student's t with K − 1 df at 1 − 0.05/60: 24.5 for K = 3,
#: 7.5 for K = 5. Power to find a shift of 8 initialisation SDs at 5 of 30 layers: 19% vs 90%
#: (docs/calibration.md).
DEFAULT_CONTROL_SEEDS = 5


def check_controls(controls) -> tuple[str, ...]:
    """``None``, ``"random"``, ``"random:K"`` or a list of those -> a tuple of known kinds, each ``"random:K"``
    with ``K`` the number of initialisation seeds (default :data:`DEFAULT_CONTROL_SEEDS`)."""
    if controls in (None, "", "none", ()):
        return ()
    kinds = tuple(c.strip() for c in controls.split(",")) if isinstance(controls, str) else tuple(controls)
    out = []
    for kind in kinds:
        name, colon, count = str(kind).partition(":")
        if name not in CONTROLS:
            raise LaminaError(f"unknown control {kind!r}; --controls takes: random or random:K (the same architecture "
                              f"with freshly initialised weights, K initialisation seeds, default "
                              f"{DEFAULT_CONTROL_SEEDS}).")
        if colon and not (count.isdigit() and 1 <= int(count) <= 100):
            raise LaminaError(f"--controls {kind!r}: K must be a whole number of seeds from 1 to 100 (e.g. random:5).")
        out.append(f"{name}:{int(count) if colon else DEFAULT_CONTROL_SEEDS}")
    if len({k.partition(':')[0] for k in out}) != len(out):
        raise LaminaError(f"--controls names a kind twice: {', '.join(out)}.")
    return tuple(out)


def control_seeds(kinds: tuple[str, ...], control_seed: int) -> list[int]:
    """The init seeds of each model's untrained controls: ``control_seed, control_seed + 1, ...``."""
    count = next((int(k.partition(":")[2]) for k in kinds if k.startswith("random:")), 0)
    return [control_seed + i for i in range(count)]


def slug(name: str) -> str:
    """A file-name-safe form of a model name (the last path component of a path)."""
    text = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).name.replace(" ", "-"))
    return re.sub(r"-+", "-", text).strip("-.") or "model"


def run_key(*, experiment: str, config, seed: int, identity: str | None, dtype: str, bos: dict,
            code: str | None = None) -> str | None:
    """The sha256 of what decides a member's numbers (see the module docstring); None without an identity."""
    if identity is None:
        return None
    text = json.dumps({"experiment": experiment, "config": dataclasses.asdict(config), "seed": seed,
                       "lamina": __version__, "weights": identity, "dtype": dtype, "bos": bos,
                       **({"code": code} if code else {})}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_dir(runs_dir: Path, experiment: str, member: Member) -> Path:
    """``runs_dir / <experiment>-<model>[-untrained-s<seed>]-<key[:12]>`` (``-unkeyed`` without a key)."""
    tail = f"-untrained-s{member.seed}" if member.control else ""
    return Path(runs_dir) / f"{experiment}-{slug(member.model)}{tail}-{member.key[:12] if member.key else 'unkeyed'}"


def reusable(member: Member, *, experiment: str, config, seed: int, dtype: str, code: str | None = None) -> bool:
    """Whether ``member.path`` is a complete run directory of exactly this member's run."""
    path = member.path
    if member.key is None or path is None or not (path / "report.html").is_file() \
            or not all((path / name).is_file() for name in DATA_FILES):
        return False
    try:
        manifest = check(path)  # every file there and unchanged since its run wrote it
        stored = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):  # a damaged run (LaminaError is a ValueError) is run again
        return False
    model = manifest.get("model", {})
    identity = model.get("source", {}).get("identity") if member.control else model.get("weights_sha256")
    return (manifest.get("experiment") == experiment and manifest.get("experiment_code") == code
            and manifest.get("seed") == seed
            and manifest.get("versions", {}).get("lamina") == __version__ and manifest.get("dtype") == dtype
            and identity == member.identity
            and stored == json.loads(json.dumps(dataclasses.asdict(config), default=str)))

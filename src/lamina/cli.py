"""The ``lamina`` command line: ``run``, ``compare``, ``report``, ``experiments``, ``sites``, ``record``, ``prepare``.

User mistakes print one line and exit 2; ``--debug`` shows the traceback instead. Every option's
value is checked when the command line is read (its form: a count, an index, a device, a directory
that can be written) or before any model loads (its meaning: a site, a text). An unexpected error
is a bug in lamina: one line says so and how to see the traceback, and the exit status is 1 (raised in
the files of an experiment from outside lamina, the line names that file instead).
``lamina compare`` exits 1 when some models could not run (the report names them and why) and the
others did.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from .errors import DISK_FULL, LaminaError, check_output_dir, one_line

INT64 = 2 ** 63
EXPERIMENT_HELP = ("a name from `lamina experiments`, path/to/file.py:NAME (file.py alone: its EXPERIMENT) or "
                   "my.module:NAME")


class _Parser(argparse.ArgumentParser):
    """argparse with lamina's error form: one line naming the option, exit status 2 (no usage block)."""

    def error(self, message):
        self.exit(2, f"lamina: error: {one_line(message)} (see `{self.prog} --help`)\n")


def _integer(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"needs an integer, not {one_line(repr(text))}") from None
    if not -INT64 < value < INT64:
        raise argparse.ArgumentTypeError(f"{value} is too large (it must fit a 64-bit integer)")
    return value


def count(minimum: int):
    """An argparse type: an integer of at least ``minimum`` (``.minimum`` tells the tests the rule)."""

    def parse(text: str) -> int:
        value = _integer(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    parse.minimum = minimum
    parse.__name__ = f"integer >= {minimum}"
    return parse


def output_dir(text: str):
    """An argparse type: a directory that can be written (an existing one, or one that can be created)."""
    try:
        return check_output_dir(text, "the directory")
    except LaminaError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


output_dir.path = True


def positions(text: str):
    """``all``, ``last`` or an index (negative counts from the end)."""
    if text.strip() in ("all", "last"):
        return text.strip()
    try:
        return _integer(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"takes all, last or an index, not {one_line(repr(text))}") from None


def layer_list(text: str) -> list[int]:
    """Comma-separated layer indices (negative counts from the end)."""
    items = text.split(",")
    try:
        return [_integer(item) for item in items]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"takes comma-separated layer indices such as 0,6,-1, "
                                         f"not {one_line(repr(text))}") from None


def where(text: str):
    """``middle``, ``start`` or a token offset (0 or more)."""
    if text.strip() in ("middle", "start"):
        return text.strip()
    try:
        value = _integer(text)
    except argparse.ArgumentTypeError:
        value = None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"takes middle, start or a token offset (0 or more), "
                                         f"not {one_line(repr(text))}")
    return value


def device(text: str) -> str:
    """A device name torch knows (cpu, cuda, cuda:1, mps); whether it is present is checked at load."""
    from .models.loading import parse_device

    try:
        parse_device(text)
    except LaminaError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text.strip()


def model_dtype(text: str) -> str:
    from .models.loading import DTYPES

    if text not in DTYPES:
        raise argparse.ArgumentTypeError(f"takes one of {', '.join(DTYPES)}, not {one_line(repr(text))}")
    return text


def control_kinds(text: str) -> str:
    """``random`` or ``random:K`` (K untrained initialisations per model)."""
    from .comparison.plan import check_controls

    try:
        check_controls(text_value(text))
    except LaminaError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--controls ")) from None
    return text


def text_value(text: str) -> str:
    """Any non-empty UTF-8 text (a name, a path, a comma-separated list)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"is not valid UTF-8: {one_line(repr(text))}") from None
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty")
    return text


def _add_model_args(parser):
    parser.add_argument("model", nargs="?", default="smollm2-135m", type=text_value,
                        help="embedded name, hub id, local directory or .gguf file (default: smollm2-135m)")
    parser.add_argument("--device", default=None, type=device, help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--dtype", default=None, type=model_dtype,
                        help="model dtype: float32 (default), bfloat16, float16")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run code shipped with a hub checkpoint (off unless given)")


def _load(args):
    from .models import load

    return load(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)


def cmd_prepare(args) -> int:
    from .models.embedded import EMBEDDED, converted_dir

    # Every embedded model that is installed; one that is not is named with how to install it.
    done = 0
    for name in EMBEDDED:
        try:
            print(f"{name}: {converted_dir(name)}")
            done += 1
        except LaminaError as err:
            print(f"{name}: skipped: {err}")
    if not done:
        raise LaminaError("no embedded model is installed; run `make model`.")
    return 0


def cmd_architectures(args) -> int:
    from .models import architectures as arch

    if args.verify:
        from .recording.verify import check_recording

        import transformers

        statuses = arch.survey(args.types or None, record_check=check_recording, progress=True)
        version = f"{transformers.__version__} (verified live)"
    else:
        version, statuses = arch.load_table()
        if args.types:
            unknown = sorted(set(args.types) - {s.model_type for s in statuses})
            if unknown:
                raise LaminaError(f"unknown model type(s) {', '.join(unknown)}; `lamina architectures` lists them.")
            statuses = [s for s in statuses if s.model_type in args.types]
    print(f"transformers {version}: every model type of its causal-LM mapping (docs/architectures.md)")
    print(arch.describe(statuses, only=args.status, compare=not args.types and args.status is None))
    return 0


def cmd_sites(args) -> int:
    model = _load(args)
    print(model)
    print(model.sites().to_string(index=False))
    print("token table columns: sequence, position, token, loss (-log p(next)), correct, predicted")
    return 0


def _source_text(args):
    """The text (or HellaSwag contexts) of ``--source``, read before any model loads."""
    from . import data

    try:
        if args.source == "hellaswag":
            return data.hellaswag("validation").iloc[: args.n_texts]["ctx"].tolist()
        return data.book(args.source)
    except LaminaError as err:
        raise LaminaError(f"--source {one_line(repr(args.source))}: {err}") from None


def _stimuli(args, model, text):
    from . import stimuli

    try:
        if args.source == "hellaswag":
            return stimuli.first_tokens(text, model, args.first)
        if args.passage:
            return stimuli.passage(text, model, max_length=model.context_length - int(model.prepend_bos))
        return stimuli.window(text, model, args.window, where=args.where,
                              max_length=model.context_length - int(model.prepend_bos))
    except LaminaError as err:
        options = ("--first" if args.source == "hellaswag" else "--passage" if args.passage
                   else "--window/--where")
        raise LaminaError(f"{options}: {err}") from None


def cmd_record(args) -> int:
    from .models.sites import split_sites
    from . import recording

    sites = [site.strip() for site in args.sites.split(",")]
    split_sites(sites)  # fail on a bad site before loading anything
    text = _source_text(args)
    model = _load(args)
    stim = _stimuli(args, model, text)
    rec = recording.record(model, stim, sites=sites, layers=args.layers, positions=args.positions,
                           dtype=args.store_dtype, batch_size=args.batch_size, out=args.out,
                           overwrite=args.overwrite, progress=None, loss=not args.no_loss, keep_bos=args.keep_bos)
    loss = rec.tokens.get("loss")
    print(f"recorded {rec.n_sequences} sequences, {len(rec.tokens)} tokens, sites {', '.join(rec.sites) or '-'} "
          f"-> {rec.path}")
    if loss is not None and loss.notna().any():
        print(f"mean next-token loss {loss.mean():.3f} nats, accuracy {rec.tokens['correct'].mean():.1%}")
    return 0


def cmd_experiments(args) -> int:
    from .experiments import catalog
    from .experiments.settings import describe

    entries = catalog()  # the built-ins, then installed distributions' entry points
    usable = {e.name: e.experiment for e in entries if e.problem is None}
    if args.names:
        print("\n".join(usable))
        return 0
    width = max(len(e.name) for e in entries)
    for e in entries:
        where = f"seed {e.experiment.seed_notebook}" if e.source == "lamina" else e.source
        print(f"{e.name:<{width}}  " + (f"{e.experiment.description} ({where})" if e.problem is None
                                        else f"({where}) {e.problem}"))
    if args.verbose:
        from .experiments.settings import LIST_FORMS

        print(f"\n{LIST_FORMS} An empty value (--set key=) is refused: leave a setting out to keep its default. "
              "Each line: name=default, then its type and rule.")
        for name, exp in usable.items():
            print(f"\n{name} settings (lamina run --set key=value):\n{describe(exp.Config)}")
            print(f"{name} presentation options (lamina run or lamina report --set key=value):\n"
                  f"{describe(exp.Options)}")
    return 0


def cmd_run(args) -> int:
    from .experiments import parse_sets
    from .experiments.spec import RunSpec
    from .runner import default_out, run_spec

    spec = RunSpec.build(args.experiment, args.model, sets=parse_sets(args.set), seed=args.seed,
                         device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    name = spec.name
    out = args.out or check_output_dir(default_out(name, args.model), "the default --out")
    result = run_spec(spec, out=out, force=args.force, progress=None)
    print(f"{name}: {result.manifest['wall_seconds']:.1f} s -> {result.report}")
    for label, value, test in result.key_numbers:
        print(f"  {label}: {value}" + (f"  ({test})" if test else ""))
    return 0


def cmd_compare(args) -> int:
    from .comparison import compare
    from .experiments import parse_sets

    result = compare(args.experiment, args.models, controls=args.controls, seed=args.seed,
                     control_seed=args.control_seed, sets=parse_sets(args.set), device=args.device,
                     dtype=args.dtype, trust_remote_code=args.trust_remote_code, out=args.out,
                     runs_dir=args.runs_dir, rerun=args.rerun, grid_points=args.grid_points, progress=None)
    width = max(len(m.label) for m in result.members)
    for m in result.members:
        detail = f"{m.reason}" if m.status == "failed" else f"{m.path}"
        print(f"  {m.label:<{width}}  {m.status:<7} {detail}")
    print(f"report: {result.report}")
    if result.failures:
        print(f"lamina: {len(result.failures)} of {len(result.members)} runs failed (named in the report); "
              "the others are complete.", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    from .experiments import parse_sets
    from .rundir import redraw

    target = redraw(args.run_dir, parse_sets(args.set), out=args.out, force=args.force, experiment=args.experiment)
    print(f"report: {target / 'report.html'}")
    return 0


def cmd_new(args) -> int:
    from .scaffold import entry_point, new

    written = new(args.name, args.dir)
    for path in written:
        print(path)
    if not any(p.name == "pyproject.toml" for p in written):
        print(f"kept the existing pyproject.toml; register the experiment there: {entry_point(args.name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lamina", description="Record and analyse a causal LM, layer by layer.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)

    runp = sub.add_parser("run", help="run an experiment and write its run directory with report.html")
    runp.add_argument("experiment", type=text_value, help=EXPERIMENT_HELP)
    runp.add_argument("--model", default="smollm2-135m", type=text_value,
                      help="embedded name, hub id, local directory or .gguf file (default: smollm2-135m)")
    runp.add_argument("--device", default=None, type=device, help="cpu (default), cuda, cuda:1, ...")
    runp.add_argument("--dtype", default=None, type=model_dtype,
                      help="model dtype: float32 (default), bfloat16, float16")
    runp.add_argument("--trust-remote-code", action="store_true",
                      help="run code shipped with a hub checkpoint (off unless given)")
    runp.add_argument("--seed", type=count(0), default=0, help="seed for every random choice (default 0)")
    runp.add_argument("--out", default=None, type=output_dir, help="run directory (default runs/EXPERIMENT-MODEL)")
    runp.add_argument("--force", action="store_true", help="replace an existing run directory")
    runp.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="override a setting or presentation option (repeatable; `lamina experiments -v` lists "
                           "each one's default, type and rule)")
    runp.set_defaults(func=cmd_run)

    cmp = sub.add_parser("compare", help="run one experiment across models (and untrained controls); "
                                          "profiles on relative depth in one report")
    cmp.add_argument("experiment", type=text_value, help=EXPERIMENT_HELP)
    cmp.add_argument("--models", required=True, type=text_value,
                     help="comma-separated models (embedded names, hub ids, directories, .gguf files); "
                          "NAME@cuda:1 places one model on its own device")
    cmp.add_argument("--controls", default=None, type=control_kinds,
                     help="random or random:K: add K untrained controls per model (same architecture, fresh "
                          "initialisations; default K=5), the band 'leaves its controls' band' refers to")
    cmp.add_argument("--control-seed", type=count(0), default=0,
                     help="init seed of the first untrained control; the others take the next seeds (default 0)")
    cmp.add_argument("--device", default=None, type=device,
                     help="device for every model: cpu (default), cuda, cuda:1, ...")
    cmp.add_argument("--dtype", default=None, type=model_dtype,
                     help="model dtype: float32 (default), bfloat16, float16")
    cmp.add_argument("--trust-remote-code", action="store_true",
                     help="run code shipped with a hub checkpoint (off unless given)")
    cmp.add_argument("--seed", type=count(0), default=0, help="seed of every run (default 0)")
    cmp.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="a setting for every model (repeatable); layer settings take a relative depth, e.g. 0.25; "
                          "`lamina experiments -v` lists each one's default, type and rule")
    cmp.add_argument("--out", default=None, type=output_dir,
                     help="comparison directory (default runs/compare-EXPERIMENT)")
    cmp.add_argument("--runs-dir", default=None, type=output_dir,
                     help="where the models' run directories live (default OUT/runs); shared dirs share runs")
    cmp.add_argument("--rerun", action="store_true", help="run every model again instead of reusing its run")
    cmp.add_argument("--grid-points", type=count(2), default=None,
                     help="points of the common relative-depth grid of profile differences "
                          "(default: the deeper model's layers)")
    cmp.set_defaults(func=cmd_compare)

    rep = sub.add_parser("report", help="redraw the figures and report.html of a run directory (no model needed)")
    rep.add_argument("run_dir", type=text_value, help="a directory written by `lamina run`")
    rep.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a presentation option (repeatable; `lamina experiments -v` lists each one's "
                          "default, type and rule)")
    rep.add_argument("--experiment", default=None, type=text_value, metavar="SPEC",
                     help="the run's experiment, where it cannot be found from manifest.json (a file that moved, "
                          "a notebook's): FILE.py:NAME, MODULE:NAME or a name")
    rep.add_argument("--out", default=None, type=output_dir,
                     help="write a redrawn copy here instead of redrawing in place")
    rep.add_argument("--force", action="store_true", help="replace an existing --out directory")
    rep.set_defaults(func=cmd_report)

    newp = sub.add_parser("new", help="write the skeleton of a new experiment package, its test and pyproject.toml")
    newp.add_argument("name", type=text_value, help="the package's name (a Python identifier, e.g. hidden_norms)")
    newp.add_argument("--dir", default=".", type=output_dir, help="where to write NAME/, tests/test_NAME.py and pyproject.toml")
    newp.set_defaults(func=cmd_new)

    exps = sub.add_parser("experiments", help="list experiments: lamina's, then installed distributions' "
                                                "(entry points of the group lamina.experiments)")
    exps.add_argument("-v", "--verbose", action="store_true",
                      help="also list each experiment's settings: default, type and rule")
    exps.add_argument("--names", action="store_true", help="only the names, one per line (for scripts)")
    exps.set_defaults(func=cmd_experiments)

    prep = sub.add_parser("prepare", help="convert the embedded model(s) into the cache once")
    prep.set_defaults(func=cmd_prepare)

    archp = sub.add_parser("architectures", help="every model type: verified (which sites) or refused and why")
    archp.add_argument("types", nargs="*", type=text_value, help="model types to show (default: all)")
    archp.add_argument("--status", choices=["verified", "refused", "not decoder-only", "not built", "failing"],
                       help="show only this status")
    archp.add_argument("--verify", action="store_true",
                       help="re-verify live with the installed transformers (tiny random models, ~1 min)")
    archp.set_defaults(func=cmd_architectures)

    sites = sub.add_parser("sites", help="list recording sites with their shapes and hooked modules")
    _add_model_args(sites)
    sites.set_defaults(func=cmd_sites)

    rec = sub.add_parser("record", help="record sites on a text and write a recording directory")
    _add_model_args(rec)
    rec.add_argument("--out", required=True, type=output_dir, help="recording directory (resumes if interrupted)")
    rec.add_argument("--source", default="alice", type=text_value,
                     help="alice, gatsby, a Gutenberg id, a text file, or hellaswag (default: alice)")
    rec.add_argument("--window", type=count(1), default=512, help="window length in tokens (default 512)")
    rec.add_argument("--where", default="middle", type=where,
                     help="window start: middle (default), start, or a token offset")
    rec.add_argument("--passage", action="store_true", help="record the whole text as one sequence")
    rec.add_argument("--first", type=count(1), default=6, help="hellaswag: first N tokens of each context")
    rec.add_argument("--n-texts", type=count(1), default=500, help="hellaswag: number of contexts")
    rec.add_argument("--sites", default="hidden,attn.out", type=text_value,
                     help="comma-separated sites (default hidden,attn.out)")
    rec.add_argument("--layers", default=None, type=layer_list, help="comma-separated layers (default: all)")
    rec.add_argument("--positions", default="all", type=positions,
                     help="all (default), last, or an index (negative counts from the end)")
    rec.add_argument("--store-dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                     help="float32 (default), bfloat16 (float32's range, half the bytes) or float16 (overflows above 65,504)")
    rec.add_argument("--batch-size", type=count(1), default=8)
    rec.add_argument("--no-loss", action="store_true",
                     help="no loss/correct/predicted: the LM head never runs, each pass stops after the last recorded module")
    rec.add_argument("--keep-bos", action="store_true",
                     help="also record the BOS token fed before each sequence (slot 0, position -1, bos=True)")
    rec.add_argument("--overwrite", action="store_true", help="replace a directory holding another recording")
    rec.set_defaults(func=cmd_record)
    return parser


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    0: done; 2: a user mistake (one line on stderr naming it); 1: a bug in lamina (one line saying
    so; ``--debug`` shows the traceback), or ``lamina compare`` with some models failed; 130: interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or an option argparse refused (already printed, one line)
        return done.code if isinstance(done.code, int) else 2
    try:
        return args.func(args)
    except LaminaError as err:
        if args.debug:
            raise
        print(f"lamina: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lamina: interrupted; run the same command again to resume a recording.", file=sys.stderr)
        return 130
    except OSError as err:
        if args.debug or err.errno not in _USER_SIDE_IO:
            return _internal(err, args.debug)
        where = f" writing {err.filename}" if err.filename else ""
        advice = ("free some space and run the same command again: finished shards and runs are kept and reused"
                  if err.errno in DISK_FULL else "choose a location this user may write to")
        print(f"lamina: error: {err.strerror or os.strerror(err.errno)}{one_line(where)}; {advice}.", file=sys.stderr)
        return 2
    except MemoryError:
        if args.debug:
            raise
        print("lamina: out of memory: the settings ask for more than this machine has; use smaller ones "
              "(fewer permutations, items or tokens) or a machine with more memory.", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - anything else is a bug: one line, the traceback on request
        return _internal(err, args.debug)


#: Faults of the machine, not of lamina: a full disk or quota, a read-only or forbidden location.
_USER_SIDE_IO = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _internal(err: BaseException, debug: bool) -> int:
    """A bug: one line saying so (exit 1); with ``--debug`` the traceback."""
    if debug:
        raise err
    detail = str(err).strip().splitlines()
    what = f"{type(err).__name__}{': ' + one_line(detail[0]) if detail else ''}"
    own = _user_frame(err)
    if own is not None:  # raised in (or under) an experiment's own code, outside lamina and its libraries
        print(f"lamina: error in your experiment's code ({own.filename}, line {own.lineno}, in {own.name}): {what}; "
              "run the same command with `lamina --debug ...` to see the traceback.", file=sys.stderr)
        return 1
    print(f"lamina: internal error, a bug in lamina ({what}); run the same command with `lamina --debug ...` "
          "to see the traceback, and please report it.", file=sys.stderr)
    return 1


def _user_frame(err: BaseException):
    """The innermost traceback frame in a file that defines an experiment from outside lamina (found in this
    process: :func:`lamina.experiments.sources.external_files`), or None."""
    import traceback

    from .experiments.sources import external_files

    files = external_files()
    found = None
    for frame in traceback.extract_tb(err.__traceback__):
        if os.path.abspath(frame.filename) in files:
            found = frame
    return found


if __name__ == "__main__":
    sys.exit(main())

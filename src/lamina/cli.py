"""The ``lamina`` command line: ``run``, ``compare``, ``report``, ``experiments``, ``sites``, ``record``, ``prepare``.

User mistakes print one line and exit 2; ``--debug`` shows the traceback instead. ``lamina compare``
exits 1 when some models could not run (the report names them and why) and the others did.
"""

from __future__ import annotations

import argparse
import sys

from .errors import LaminaError


def _add_model_args(parser):
    parser.add_argument("model", nargs="?", default="smollm2-135m",
                        help="embedded name, hub id, local directory or .gguf file (default: smollm2-135m)")
    parser.add_argument("--device", default=None, help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--dtype", default=None, help="model dtype: float32 (default), bfloat16, float16")
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


def _stimuli(args, model):
    from . import data, stimuli

    if args.source == "hellaswag":
        table = data.hellaswag("validation").iloc[: args.n_texts]
        return stimuli.first_tokens(table["ctx"].tolist(), model, args.first)
    text = data.book(args.source)
    if args.passage:
        return stimuli.passage(text, model, max_length=model.context_length - int(model.prepend_bos))
    where = int(args.where) if args.where.lstrip("-").isdigit() else args.where
    return stimuli.window(text, model, args.window, where=where,
                          max_length=model.context_length - int(model.prepend_bos))


def cmd_record(args) -> int:
    from .models.sites import split_sites
    from .recording import record

    split_sites(args.sites.split(","))  # fail on a bad site before loading anything
    model = _load(args)
    stim = _stimuli(args, model)
    layers = None if args.layers is None else [int(x) for x in args.layers.split(",")]
    positions = args.positions if args.positions in ("all", "last") else int(args.positions)
    rec = record(model, stim, sites=args.sites.split(","), layers=layers, positions=positions,
                 dtype=args.store_dtype, batch_size=args.batch_size, out=args.out, overwrite=args.overwrite,
                 progress=True, loss=not args.no_loss)
    loss = rec.tokens.get("loss")
    print(f"recorded {rec.n_sequences} sequences, {len(rec.tokens)} tokens, sites {', '.join(rec.sites) or '-'} "
          f"-> {rec.path}")
    if loss is not None and loss.notna().any():
        print(f"mean next-token loss {loss.mean():.3f} nats, accuracy {rec.tokens['correct'].mean():.1%}")
    return 0


def cmd_experiments(args) -> int:
    from .experiments import EXPERIMENTS
    from .experiments.settings import describe

    if args.names:
        print("\n".join(EXPERIMENTS))
        return 0
    width = max(len(name) for name in EXPERIMENTS)
    for name, exp in EXPERIMENTS.items():
        print(f"{name:<{width}}  {exp.description} (seed {exp.seed_notebook})")
    if args.verbose:
        for name, exp in EXPERIMENTS.items():
            print(f"\n{name} settings (lamina run --set key=value): {describe(exp.Config)}")
            print(f"{name} presentation options (lamina run or lamina report --set key=value): "
                  f"{describe(exp.Options)}")
    return 0


def cmd_run(args) -> int:
    from .experiments import parse_sets
    from .runner import default_out, run

    settings, options = _split_sets(args.experiment, parse_sets(args.set))
    out = args.out or default_out(args.experiment, args.model)
    result = run(args.experiment, args.model, device=args.device, dtype=args.dtype,
                 trust_remote_code=args.trust_remote_code, seed=args.seed, out=out, force=args.force,
                 progress=None, settings=settings, options=options)
    print(f"{args.experiment}: {result.manifest['wall_seconds']:.1f} s -> {result.report}")
    for label, value, test in result.key_numbers:
        print(f"  {label}: {value}" + (f"  ({test})" if test else ""))
    return 0


def _split_sets(experiment: str, sets: dict) -> tuple[dict, dict]:
    """``--set`` pairs of ``lamina run`` -> (compute settings, presentation options)."""
    import dataclasses

    from .experiments import get

    names = {f.name for f in dataclasses.fields(get(experiment).Options)}
    return ({k: v for k, v in sets.items() if k not in names}, {k: v for k, v in sets.items() if k in names})


def cmd_compare(args) -> int:
    from .comparison import compare
    from .experiments import parse_sets

    settings, options = _split_sets(args.experiment, parse_sets(args.set))
    result = compare(args.experiment, args.models, controls=args.controls, seed=args.seed,
                     control_seed=args.control_seed, settings=settings, options=options, device=args.device,
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

    target = redraw(args.run_dir, parse_sets(args.set), out=args.out, force=args.force)
    print(f"report: {target / 'report.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamina", description="Record and analyse a causal LM, layer by layer.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)

    runp = sub.add_parser("run", help="run an experiment and write its run directory with report.html")
    runp.add_argument("experiment", help="see `lamina experiments`")
    runp.add_argument("--model", default="smollm2-135m",
                      help="embedded name, hub id, local directory or .gguf file (default: smollm2-135m)")
    runp.add_argument("--device", default=None, help="cpu (default), cuda, cuda:1, ...")
    runp.add_argument("--dtype", default=None, help="model dtype: float32 (default), bfloat16, float16")
    runp.add_argument("--trust-remote-code", action="store_true",
                      help="run code shipped with a hub checkpoint (off unless given)")
    runp.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    runp.add_argument("--out", default=None, help="run directory (default runs/EXPERIMENT-MODEL)")
    runp.add_argument("--force", action="store_true", help="replace an existing run directory")
    runp.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="override a setting or presentation option (repeatable)")
    runp.set_defaults(func=cmd_run)

    cmp = sub.add_parser("compare", help="run one experiment across models (and untrained controls); "
                                          "profiles on relative depth in one report")
    cmp.add_argument("experiment", help="see `lamina experiments`")
    cmp.add_argument("--models", required=True,
                     help="comma-separated models (embedded names, hub ids, directories, .gguf files); "
                          "NAME@cuda:1 places one model on its own device")
    cmp.add_argument("--controls", default=None, choices=["random"],
                     help="random: add each model's untrained control (same architecture, fresh init)")
    cmp.add_argument("--control-seed", type=int, default=0, help="init seed of the untrained controls (default 0)")
    cmp.add_argument("--device", default=None, help="device for every model: cpu (default), cuda, cuda:1, ...")
    cmp.add_argument("--dtype", default=None, help="model dtype: float32 (default), bfloat16, float16")
    cmp.add_argument("--trust-remote-code", action="store_true",
                     help="run code shipped with a hub checkpoint (off unless given)")
    cmp.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    cmp.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="a setting for every model (repeatable); layer settings take a relative depth, e.g. 0.25")
    cmp.add_argument("--out", default=None, help="comparison directory (default runs/compare-EXPERIMENT)")
    cmp.add_argument("--runs-dir", default=None,
                     help="where the models' run directories live (default OUT/runs); shared dirs share runs")
    cmp.add_argument("--rerun", action="store_true", help="run every model again instead of reusing its run")
    cmp.add_argument("--grid-points", type=int, default=None,
                     help="points of the common relative-depth grid of profile differences "
                          "(default: the deeper model's layers)")
    cmp.set_defaults(func=cmd_compare)

    rep = sub.add_parser("report", help="redraw the figures and report.html of a run directory (no model needed)")
    rep.add_argument("run_dir", help="a directory written by `lamina run`")
    rep.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a presentation option (repeatable; see `lamina experiments -v`)")
    rep.add_argument("--out", default=None, help="write a redrawn copy here instead of redrawing in place")
    rep.add_argument("--force", action="store_true", help="replace an existing --out directory")
    rep.set_defaults(func=cmd_report)

    exps = sub.add_parser("experiments", help="list experiments")
    exps.add_argument("-v", "--verbose", action="store_true", help="also list each experiment's settings")
    exps.add_argument("--names", action="store_true", help="only the names, one per line (for scripts)")
    exps.set_defaults(func=cmd_experiments)

    prep = sub.add_parser("prepare", help="convert the embedded model(s) into the cache once")
    prep.set_defaults(func=cmd_prepare)

    archp = sub.add_parser("architectures", help="every model type: verified (which sites) or refused and why")
    archp.add_argument("types", nargs="*", help="model types to show (default: all)")
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
    rec.add_argument("--out", required=True, help="recording directory (resumes if interrupted)")
    rec.add_argument("--source", default="alice",
                     help="alice, gatsby, a Gutenberg id, a text file, or hellaswag (default: alice)")
    rec.add_argument("--window", type=int, default=512, help="window length in tokens (default 512)")
    rec.add_argument("--where", default="middle", help="window start: middle (default), start, or a token offset")
    rec.add_argument("--passage", action="store_true", help="record the whole text as one sequence")
    rec.add_argument("--first", type=int, default=6, help="hellaswag: first N tokens of each context")
    rec.add_argument("--n-texts", type=int, default=500, help="hellaswag: number of contexts")
    rec.add_argument("--sites", default="hidden,attn.out", help="comma-separated sites (default hidden,attn.out)")
    rec.add_argument("--layers", default=None, help="comma-separated layers (default: all)")
    rec.add_argument("--positions", default="all", help="all (default), last, or an index")
    rec.add_argument("--store-dtype", default="float32", help="float32 (default) or float16")
    rec.add_argument("--batch-size", type=int, default=8)
    rec.add_argument("--no-loss", action="store_true",
                     help="no loss/correct/predicted: the LM head never runs, each pass stops after the last recorded module")
    rec.add_argument("--overwrite", action="store_true", help="replace a directory holding another recording")
    rec.set_defaults(func=cmd_record)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LaminaError as err:
        if args.debug:
            raise
        print(f"lamina: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lamina: interrupted; run the same command again to resume a recording.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The ``uplift`` command line: thin typer commands over the Python API.

Each command parses its options, calls the same functions a notebook would, and prints rich tables (or,
with ``--json``, one JSON document on stdout). Input problems print one line to stderr and exit with code 2,
without a traceback; output files are written atomically.
"""

from __future__ import annotations

import functools
import io
import sys
import warnings
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.text import Text

from uplift._display import decimals, effect_unit, fmt_ci
from uplift._files import atomic_write_bytes, atomic_write_text, check_output_path, exit_on_termination, json_text
from uplift._versions import __version__
from uplift.cli.demo import run_demo
from uplift.cli.render import (
    RichProgress,
    cli_wording,
    console,
    err_console,
    print_json,
    readout_summary_table,
    readout_table,
    show_data_quality,
    show_drift,
    show_importance,
    show_segments,
    show_study,
    show_targeting,
    show_timings,
    table,
)
from uplift.cli.sources import (
    DbOpt,
    OutTableOpt,
    SqlOpt,
    TableOpt,
    TrainingDataArg,
    check_table_output,
    source_inputs,
    table_source,
)
from uplift.data.inspect import inspect_data
from uplift.data.sql import read_source, write_sql_table
from uplift.data.tables import read_table, write_table
from uplift.datasets import load_hillstrom
from uplift.errors import UpliftInputError
from uplift.features import build_features, schema_path
from uplift.fit.learners import DEFAULT_LEARNERS
from uplift.fit.models import MAX_TRAIN_ROWS
from uplift.fit.progress import PhaseTimes, phase_records
from uplift.persist import KEY_ENV, check_model_dir_target, model_digest
from uplift.scoring import score_file
from uplift.serving import serve as run_server
from uplift.spark import read_customers, spark_session, target_spark
from uplift.study import Study
from uplift.targeting.economics import read_exclusions
from uplift.targeting.lists import list_for_file
from uplift.targeting.readouts import readout as run_readout
from uplift.viz.plots import plot_profit_curve, plot_shap_summary


def _standard_metavar(param) -> str:
    """TEXT, INTEGER, FLOAT or PATH for a parameter's type (typer shows ``<str>``, ``<list[str]>``, ``<path>``)."""
    shown = param.display_type(None).strip("<>").removeprefix("list[").removesuffix("]")
    return _METAVARS.get(shown, "TEXT")


class _Argument(typer.core.TyperArgument):
    """A positional argument shown as click shows one: ``DATA`` in the usage line (typer 0.29 writes ``{DATA}``)
    and its type as a standard metavar (``PATH``, not ``<path>``) in the help."""

    def display_type_rich(self, ctx) -> str:
        return _standard_metavar(self)

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


class _StandardMetavars:
    """Help that shows the standard metavars (TEXT, INTEGER, FLOAT, PATH; none for a flag), not typer's
    ``<str>`` / ``<list[str]>`` / ``<bool>``, and each command's one-line summary as one paragraph (typer's rich
    mode keeps the docstring's line breaks in the command list, which wraps it at odd places)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.help and not self.short_help:
            self.short_help = " ".join(self.help.split("\n\n")[0].split())
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument):
                param.__class__ = _Argument
                if param.metavar is None:
                    param.metavar = param.name.upper()
                continue
            if param.metavar is None:
                param.metavar = "" if getattr(param, "is_flag", False) else _standard_metavar(param)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Command(_StandardMetavars, typer.core.TyperCommand):
    pass


class _Group(_StandardMetavars, typer.core.TyperGroup):
    pass


_METAVARS = {"int": "INTEGER", "float": "FLOAT", "path": "PATH", "file": "PATH", "dir": "PATH"}


class _App(typer.Typer):
    def command(self, *args, **kwargs):
        return super().command(*args, cls=kwargs.pop("cls", _Command), **kwargs)


app = _App(cls=_Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
           help="What did (or will) this campaign cause? Uplift models, honest evaluation, targeting lists.")
StrictDriftOpt = Annotated[bool, typer.Option(
    "--strict-drift", help="Fail (exit 2) when the customers drifted from the training data; the output is still "
    "written.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON document instead of tables.")]
#: Money on `fit` and `evaluate` (a revenue outcome's effects, uplift and calibration), as on target/report/readout.
CurrencyOpt = Annotated[str | None, typer.Option(help="Label of money amounts (effects, uplift and calibration of a "
                                                      "revenue outcome), e.g. EUR or '$' (default: none).")]
NaValuesOpt = Annotated[list[str], typer.Option(help="Value meaning 'missing' in the feature columns, e.g. -999 or "
                                                     "N/A (repeat); saved with the model and applied at scoring.")]
DateFormatOpt = Annotated[str | None, typer.Option(help="Format of ambiguous date columns, e.g. '%d/%m/%Y' "
                                                        "(ISO and unambiguous forms are recognised without it).")]
TrustOpt = Annotated[bool, typer.Option("--trust-model", help="Allow a model directory holding pickles (forest "
                                        "learners, custom base models): a pickle can run code when loaded, so only "
                                        "for a directory whose writers you trust. Default learners need no trust.")]
DigestOpt = Annotated[str | None, typer.Option("--expect-digest", metavar="HEX", help="Refuse the model unless its "
                                               "digest (printed by `uplift fit` and `uplift evaluate`) is HEX.")]
SignatureOpt = Annotated[bool, typer.Option("--require-signature", help=f"Refuse a model that is not signed with "
                                            f"the key in {KEY_ENV} (set at `uplift fit`).")]

#: Seeds numpy and LightGBM accept.
MAX_SEED = 2**32 - 1


def check_option(name: str, value: float | None, low: float, high: float | None = None, what: str = "") -> None:
    """One-line error (before any work) when an option's value is outside ``[low, high]``."""
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise UpliftInputError(f"{name} must be {bound}{what}, got {value}")


def load_study(model_dir: Path, trust: bool = False, expect_digest: str | None = None,
               require_signature: bool = False, *, for_scoring: bool = False, learner: str | None = None) -> Study:
    """The saved study, verified as the loading options ask (the one loader of every command); ``for_scoring``
    reads only what scoring with ``learner`` needs (see :meth:`Study.load`)."""
    return Study.load(model_dir, trust=trust, expect_digest=expect_digest, require_signature=require_signature,
                      for_scoring=for_scoring, learner=learner)


def _model_identity(study: Study) -> dict:
    manifest = study.result.manifest or {}
    return {"model_digest": manifest.get("digest"), "signature": manifest.get("signature")}


def _version(show: bool) -> None:
    if show:
        console.print(f"uplift {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """What did (or will) this campaign cause? Uplift models, honest evaluation, targeting lists."""


def cli_command(func):
    """Run a command, turning input errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return func(*args, **kwargs)
        except UpliftInputError as exc:
            message = getattr(exc, "cli_message", None) or cli_wording(str(exc))
            err_console.print(Text.assemble(("error:", "bold red"), f" {message}"), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; no output was written")
            raise typer.Exit(130) from None

    return wrapper


def _study_kwargs(treatment, outcome, control, id_col, design, feature, exclude, propensity) -> dict:
    return {"treatment": treatment, "outcome": list(outcome), "control": control, "id": id_col,
            "design": design, "features": list(feature) or None, "exclude": list(exclude) or None,
            "propensity": propensity}


def _fit_study(frame: pd.DataFrame, kwargs: dict, learners: str, folds: int, seed: int, select: str,
               quiet: bool, times: PhaseTimes | None = None, **fit_kwargs) -> Study:
    names = [s.strip() for s in learners.split(",") if s.strip()]
    study = Study(frame, **kwargs, times=times)
    progress = RichProgress(enabled=not quiet)
    try:
        study.fit(names, n_folds=folds, random_state=seed, select=select, progress=progress, **fit_kwargs)
    finally:
        progress.stop()
    return study


@app.command()
@cli_command
def fit(
    treatment: Annotated[str, typer.Option(help="Treatment (arm) column.")],
    outcome: Annotated[list[str], typer.Option(help="Outcome column; repeat for several (first is modelled).")],
    out: Annotated[Path, typer.Option(help="Model directory to write.")],
    data: Annotated[Path | None, typer.Argument(help="Campaign table (.csv, .csv.gz or .parquet); or --sql / --db "
                                                     "--table.")] = None,
    control: Annotated[str | None, typer.Option(help="Label of the control arm.")] = None,
    id_col: Annotated[str | None, typer.Option("--id", help="Customer id column.")] = None,
    design: Annotated[str, typer.Option(help="rct | observational | auto.")] = "auto",
    feature: Annotated[list[str], typer.Option(help="Feature column (repeat); default: all other columns.")] = [],  # noqa: B006
    exclude: Annotated[list[str], typer.Option(help="Column never to use as a feature (repeat).")] = [],  # noqa: B006
    propensity: Annotated[str | None, typer.Option(help="Known treatment-probability column.")] = None,
    learners: Annotated[str, typer.Option(help="Comma-separated learners to cross-fit.")] = ",".join(DEFAULT_LEARNERS),
    folds: Annotated[int | None, typer.Option(help="Cross-fitting folds (default: 5).")
                     ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    select: Annotated[str, typer.Option(help="Selection criterion: dr_loss | qini.")] = "dr_loss",
    pre_treatment: Annotated[list[str], typer.Option(help="Feature measured before the campaign (repeat): never "
                                                          "flagged as post-treatment leakage.")] = [],  # noqa: B006
    expected_split: Annotated[list[str], typer.Option(
        metavar="ARM=SHARE", help="Declared split of a randomised study, once per arm (shares or counts, e.g. "
        "--expected-split control=75 --expected-split coupon=25); the sample-ratio check tests the arms against "
        "it. Without it an unequal split is reported, not checked.")] = [],  # noqa: B006
    allow_srm: Annotated[bool, typer.Option("--allow-srm", help="Continue despite a failed sample-ratio check "
                                                                "(not advised).")] = False,
    allow_leakage: Annotated[bool, typer.Option("--allow-leakage", help="Continue despite a feature that gives the "
                                                                        "treatment away (not advised).")] = False,
    max_train_rows: Annotated[int, typer.Option(help="Cap on the rows one model trains on (a random sample beyond "
                                                     "it; every row is still evaluated); 0 = no cap.")
                              ] = MAX_TRAIN_ROWS,
    na_values: NaValuesOpt = [],  # noqa: B006
    date_format: DateFormatOpt = None,
    as_of: Annotated[str | None, typer.Option(help="Reference date (YYYY-MM-DD, e.g. the campaign start) of the "
                                                   "days_since_<date column> features; default: the latest date "
                                                   "in the data.")] = None,
    high_cardinality: Annotated[list[str], typer.Option(help="Text column to model as a category although it has "
                                                             "very many levels (repeat).")] = [],  # noqa: B006
    allow_similar_arms: Annotated[bool, typer.Option(
        "--allow-similar-arms", help="Accept a small arm whose label looks like a typo of another arm's.")] = False,
    currency: CurrencyOpt = None,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit and evaluate uplift learners on a campaign table and save the study (its digest is printed; with
    UPLIFT_MODEL_KEY set, it is signed)."""
    parent = out.resolve().parent
    if not parent.is_dir():
        raise UpliftInputError(f"cannot save the model: output directory {parent} does not exist "
                               "(or is not a directory); create it first")
    check_option("--seed", seed, 0, MAX_SEED)
    check_option("--folds", folds, 2)
    check_option("--max-train-rows", max_train_rows, 0, what=" (0 = no cap)")
    check_model_dir_target(out)
    source = table_source(data, sql, db, table_name)
    check_output_path(out, protect=source_inputs(source), directory=True)
    times = PhaseTimes()
    with times.phase("read"):
        frame = read_source(source, text=[treatment, *([id_col] if id_col else [])], na_values=na_values)
    kwargs = _study_kwargs(treatment, outcome, control, id_col, design, feature, exclude, propensity)
    kwargs.update(na_values=list(na_values), date_format=date_format, as_of=as_of,
                  high_cardinality=list(high_cardinality), allow_similar_arms=allow_similar_arms)
    study = _fit_study(frame, {**kwargs, "pre_treatment": list(pre_treatment) or None}, learners, folds, seed,
                       select, as_json, expected_split=list(expected_split) or None, allow_srm=allow_srm,
                       allow_leakage=allow_leakage,
                       max_train_rows=max_train_rows or None, times=times)
    study.save(out)
    with times.phase("data-quality summary"):
        quality = study.inspect()
    if not as_json:  # the data-quality summary heads the results (after the fit, so an error stays one line)
        show_data_quality(quality, short=True, said=study.notes)  # each finding once: the notes say it in full
    digest = model_digest(out)
    signed = "signed" if (out / "manifest.sig").is_file() else "unsigned"
    show_study(study, as_json, {"model_dir": str(out), "model_digest": digest, "signature": signed,
                                "data_quality": quality.to_dict(), "timings": phase_records(times)},
               currency=currency)
    if not as_json:
        show_timings(times)
        console.print(f"saved study to [bold]{out}[/]")
        # Two lines that fit 80 columns: the digest is one 64-character word.
        console.print(f"model digest: {digest}", highlight=False, soft_wrap=True)
        console.print(f"signature: {signed}; pin the digest with --expect-digest", highlight=False)


@app.command()
@cli_command
def inspect(
    data: Annotated[Path | None, typer.Argument(help="Campaign table (.csv, .csv.gz or .parquet); or --sql / --db "
                                                     "--table.")] = None,
    treatment: Annotated[str | None, typer.Option(help="Treatment (arm) column: arm shares and label typos.")] = None,
    outcome: Annotated[list[str], typer.Option(help="Outcome column (repeat).")] = [],  # noqa: B006
    id_col: Annotated[str | None, typer.Option("--id", help="Customer id column: blank and repeated ids.")] = None,
    na_values: NaValuesOpt = [],  # noqa: B006
    date_format: DateFormatOpt = None,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Data-quality report before any fit: per column role, type, missing share, levels, sentinels, outliers,
    dates; constant columns, duplicate rows and ids, arm shares."""
    frame = read_source(table_source(data, sql, db, table_name), text=[c for c in (treatment, id_col) if c],
                        na_values=na_values)
    quality = inspect_data(frame, treatment=treatment, outcome=list(outcome), id=id_col, na_values=na_values,
                           date_format=date_format)
    if as_json:
        print_json(quality.to_dict())
    else:
        show_data_quality(quality)


@app.command()
@cli_command
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit`.")],
    trust_model: TrustOpt = False,
    expect_digest: DigestOpt = None,
    require_signature: SignatureOpt = False,
    currency: CurrencyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a saved study's digest, cross-fitted leaderboard, average effects and calibration."""
    study = load_study(model_dir, trust_model, expect_digest, require_signature)
    identity = _model_identity(study)
    if not as_json:
        console.print(f"model digest: {identity['model_digest']}", highlight=False, soft_wrap=True)
        console.print(f"signature: {identity['signature']}", highlight=False)
    show_study(study, as_json, identity, currency=currency)


@app.command()
@cli_command
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit`.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")],
    data: Annotated[Path | None, typer.Argument(help="Customers to score (.csv, .csv.gz or .parquet); or --sql / "
                                                     "--db --table.")] = None,
    learner: Annotated[str | None, typer.Option(help="Learner to use (default: the chosen one).")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Score with the chosen model's distilled scorer (one small "
                                       "compiled tree ensemble per arm, ~1M rows/s on 2 cores); its fidelity to "
                                       "the full model is printed.")] = False,
    strict_drift: StrictDriftOpt = False,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    trust_model: TrustOpt = False,
    expect_digest: DigestOpt = None,
    require_signature: SignatureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Predict uplift for every row of DATA (id, uplift and CI columns where available), streamed in batches."""
    data = table_source(data, sql, db, table_name)
    check_output_path(out, protect=[*source_inputs(data), model_dir])
    study = load_study(model_dir, trust_model, expect_digest, require_signature, for_scoring=True,
                       learner="fast" if fast else learner)
    drift: dict = {}
    if fast and learner not in (None, "fast"):
        raise UpliftInputError(f"--fast scores with the chosen model ({study.best_learner_!r}) distilled; drop "
                               f"--fast to score with {learner!r}")
    learner = "fast" if fast else learner
    fast = learner == "fast"
    rows = score_file(study.result, data, out, learner=learner, drift=drift)
    summary = {"rows": rows, "out": str(out), "learner": study.best_learner_ if fast else learner or
               study.best_learner_, "drift": drift}
    if fast:
        summary["fast_scorer_fidelity"] = study.fast_fidelity.to_dict(orient="records")
    if as_json:
        print_json(summary)
    else:
        how = " via the fast scorer" if fast else ""
        console.print(f"wrote {rows:,} predictions ({summary['learner']} learner{how}) to [bold]{out}[/]")
        for fid in summary.get("fast_scorer_fidelity", []):
            console.print(f"  fast scorer vs full model ({fid['arm']}): R² {fid['r2']:.3f}, corr {fid['corr']:.3f}, "
                          f"mean |difference| {fid['mean_abs_error']:.3g} outcome units (uplift SD "
                          f"{fid['teacher_sd']:.3g}), top-20% overlap {fid['top20_overlap']:.1%}, "
                          f"{fid['trees']} trees; measured on {fid['n']:,} held-out training customers")
        show_drift(drift)
    check_drift(drift, strict_drift)


@app.command()
@cli_command
def demo(
    folds: Annotated[int, typer.Option(help="Cross-fitting folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also save the fitted study here.")] = None,
    data_out: Annotated[Path | None, typer.Option(help="Also write the Hillstrom data here (.csv or .parquet), "
                                                       "to run `uplift segments/explain/target` on it.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The whole study on the embedded Hillstrom e-mail experiment (64,000 customers, 2 e-mails + control)."""
    check_option("--seed", seed, 0, MAX_SEED)
    check_option("--folds", folds, 2)
    if out is not None:
        check_model_dir_target(out)
        check_output_path(out, protect=[data_out], directory=True)
    if data_out is not None:
        check_output_path(data_out, protect=[out])
    frame = load_hillstrom()
    run_demo(frame, folds=folds, seed=seed, out=out, as_json=as_json)
    _write(frame, data_out)


def _save_png(fig, path: Path, protect: list | None = None) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue(), protect=protect)


def _save_png_stack(figures: list, path: Path, protect: list | None = None) -> None:
    """Several figures (one per arm) as one PNG, one below the other."""
    from PIL import Image  # matplotlib's own image library, only needed here
    if len(figures) == 1:
        _save_png(figures[0], path, protect)
        return
    images = []
    for fig in figures:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        images.append(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    sheet = Image.new("RGB", (max(im.width for im in images), sum(im.height for im in images)), "white")
    top = 0
    for im in images:
        sheet.paste(im, (0, top))
        top += im.height
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    atomic_write_bytes(path, out.getvalue(), protect=protect)


def _load_with_data(model_dir: Path, data: Path, *options) -> Study:
    study = load_study(model_dir, *options)
    # Read with the model's column types: codes and ids as text, dates and missing-value codes as in training.
    return study.attach_data(study.schema.read(data, text=[study.roles.get("id"), study.roles["treatment"]]))


def _check_outputs(outputs: list[Path | None], inputs: list[Path | None]) -> None:
    """Every output against every input and against the command's other outputs, before any work."""
    given = [o for o in outputs if o is not None]
    for k, path in enumerate(given):
        check_output_path(path, protect=[*inputs, *given[:k]])


def _write(frame: pd.DataFrame, out: Path | None, protect: Path | list | None = None) -> None:
    if out is not None:
        write_table(frame, out, protect=protect)


ArmOpt = Annotated[str | None, typer.Option(help="Treated arm to analyse (default: every treated arm, one block "
                                                 "per arm).")]


@app.command()
@cli_command
def segments(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit`.")],
    data: TrainingDataArg = None,
    by: Annotated[list[str], typer.Option(help="Segment column (repeat for crossed segments).")] = [],  # noqa: B006
    bins: Annotated[int, typer.Option(help="Quantile bins for numeric columns.")] = 5,
    min_size: Annotated[int, typer.Option(help="Segments smaller than this are flagged, not reported.")] = 200,
    no_discover: Annotated[bool, typer.Option("--no-discover", help="Skip the segments discovered by an honest "
                                                                    "shallow tree (shown by default).")] = False,
    max_depth: Annotated[int, typer.Option(help="Depth of the discovery tree (≤ 3 reads best).")] = 3,
    min_leaf: Annotated[int, typer.Option(help="Fewest customers per discovered segment.")] = 500,
    arm: ArmOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write the segment table here (.csv or .parquet).")] = None,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    trust_model: TrustOpt = False,
    expect_digest: DigestOpt = None,
    require_signature: SignatureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Uplift per segment with 95% doubly-robust CIs, and auto-discovered segments as readable rules."""
    check_option("--bins", bins, 2)
    check_option("--min-size", min_size, 1)
    check_option("--max-depth", max_depth, 1)
    check_option("--min-leaf", min_leaf, 1)
    data = table_source(data, sql, db, table_name)
    inputs = [*source_inputs(data), model_dir]
    _check_outputs([out], inputs)
    study = _load_with_data(model_dir, data, trust_model, expect_digest, require_signature)
    doc: dict = {}
    if by:
        seg = study.segments(list(by), bins=bins, min_size=min_size, arm=arm)
        doc["segments"] = seg
        _write(seg, out, protect=inputs)
    if not no_discover:
        doc["discovered"] = study.discover_segments(max_depth=max_depth, min_leaf=min_leaf, arm=arm)
        if not by:
            _write(doc["discovered"], out, protect=inputs)
    if not doc:
        raise UpliftInputError("nothing to do: give --by COLUMN, or drop --no-discover")
    if as_json:
        print_json(doc)
        return
    for name, frame in doc.items():
        title = ("Segments" if name == "segments" else
                 "Discovered segments (honest: fit on one half, estimated on the other)")
        show_segments(title, frame)


@app.command()
@cli_command
def explain(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit`.")],
    data: TrainingDataArg = None,
    max_rows: Annotated[int, typer.Option(help="Customers to explain (a random sample).")] = 2000,
    arm: ArmOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Write the SHAP summary plot here (.png; with several arms "
                                                   "one panel per arm, one below the other).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write per-customer top-3 drivers here (every arm).")] = None,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    trust_model: TrustOpt = False,
    expect_digest: DigestOpt = None,
    require_signature: SignatureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """What drives uplift, for every treated arm: SHAP importance of the chosen model (via a surrogate tree,
    fidelity R² shown)."""
    check_option("--max-rows", max_rows, 1)
    data = table_source(data, sql, db, table_name)
    inputs = [*source_inputs(data), model_dir]
    _check_outputs([out, plot], inputs)  # --out and --plot may not be one file either
    study = _load_with_data(model_dir, data, trust_model, expect_digest, require_signature)
    explanations = study.explain_arms(arm=arm, max_rows=max_rows)
    drivers = pd.concat([e.top_drivers(3) for e in explanations.values()], ignore_index=True)
    _write(drivers, out, protect=inputs)
    if plot is not None:
        _save_png_stack([plot_shap_summary(expl) for expl in explanations.values()], plot, inputs)
    doc = {"importance": pd.concat([e.importance for e in explanations.values()], ignore_index=True),
           "surrogate_r2": {name: e.surrogate_r2 for name, e in explanations.items()},
           "top_drivers_preview": drivers.groupby("arm", sort=False).head(9)}
    if as_json:
        print_json(doc)
        return
    for expl in explanations.values():
        show_importance(expl)


@app.command()
@cli_command
def target(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit`.")],
    out: Annotated[Path, typer.Option(help="Targeting list to write (.csv or .parquet; a .duckdb database with "
                                           "--out-table).")],
    cost: Annotated[list[str], typer.Option(help="Cost per coupon: one number, or ARM=COST (repeat).")],
    customers: Annotated[Path | None, typer.Argument(help="Customers to target (.csv, .csv.gz or .parquet); or "
                                                          "--sql / --db --table.")] = None,
    value: Annotated[float | None, typer.Option(help="Money per conversion (revenue outcome: default 1).")] = None,
    budget: Annotated[float | None, typer.Option(help="Total budget; default: everyone with positive profit.")] = None,
    max_customers: Annotated[int | None, typer.Option(help="At most this many customers.")] = None,
    min_roi: Annotated[float | None, typer.Option(help="Only coupons with at least this ROI.")] = None,
    exclude: Annotated[Path | None, typer.Option(help="File of ids never to contact (one per line or a table "
                                                      "with the id column).")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Write every customer with a `selected` flag.")] = False,
    allow_negative: Annotated[bool, typer.Option("--allow-negative", help="Also target negative-profit customers "
                                                                          "(not advised).")] = False,
    seed: Annotated[int, typer.Option(help="Seed for the random baseline, holdout and exploration.")] = 0,
    holdout: Annotated[float, typer.Option(help="Share of selected customers kept as a randomised holdout "
                                                "(no coupon) to measure the result afterwards.")] = 0.0,
    explore: Annotated[float, typer.Option(help="Share of NOT selected customers who get the coupon anyway "
                                                "(exploration data for re-training).")] = 0.0,
    strict_drift: StrictDriftOpt = False,
    engine: Annotated[str, typer.Option(help="pandas: in memory on this machine | spark: score and rank with Apache "
                                             "Spark, Parquet output (needs the spark extra: pip install "
                                             "'uplift\\[spark]').")] = "pandas",
    spark_master: Annotated[str, typer.Option(help="Spark master URL for --engine spark.")] = "local[*]",
    fast: Annotated[bool, typer.Option("--fast", help="Score the customers with the chosen model's distilled "
                                       "scorer (see `uplift predict --fast`); the list's honest value is still "
                                       "that of the full model's rule.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the honest profit curve here (.png): held-out "
                                                   "doubly-robust profit of the list's customers and coupons "
                                                   "in its order, with its 95% band, the list's cut marked (there "
                                                   "it is the list's honest value), the model's expectation "
                                                   "beside it.")] = None,
    currency: Annotated[str | None, typer.Option(help="Label of money amounts, e.g. EUR or '$' (default: none, "
                                                      "the units of --cost and --value).")] = None,
    skip_extrapolated: Annotated[bool, typer.Option("--skip-extrapolated", help="Observational studies: never "
                                                    "select customers outside the study's overlap (`overlap` "
                                                    "false: their uplift is an extrapolation).")] = False,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    out_table: OutTableOpt = None,
    trust_model: TrustOpt = False,
    expect_digest: DigestOpt = None,
    require_signature: SignatureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a ranked coupon targeting list under a budget, with expected value and 95% intervals."""
    if plot is not None and plot.suffix.lower() != ".png":
        raise UpliftInputError(f"--plot {plot}: the profit curve is written as a .png file")
    if engine not in ("pandas", "spark"):
        raise UpliftInputError(f"--engine must be pandas or spark, got {engine!r}")
    check_option("--seed", seed, 0, MAX_SEED)
    customers = table_source(customers, sql, db, table_name, what="CUSTOMERS")
    inputs = [*source_inputs(customers), exclude, model_dir]
    if out_table is not None:  # a write-back into a database: the only output that may be an input's file
        if engine == "spark":
            raise UpliftInputError("--out-table is not available with --engine spark; write Parquet")
        inputs = [*check_table_output(out, out_table, customers), exclude, model_dir]
    check_output_path(out, protect=inputs, directory=engine == "spark")  # Spark writes a Parquet folder
    if plot is not None:
        check_output_path(plot, protect=[*inputs, out])
    loading = (trust_model, expect_digest, require_signature)
    if engine == "spark":
        if not isinstance(customers, Path):
            raise UpliftInputError("--engine spark reads the customers from a file; export the query to Parquet")
        if holdout > 0 or explore > 0:
            raise UpliftInputError("--holdout and --explore are not available with --engine spark; write the list "
                                   "with Spark and draw the holdout from it, or use --engine pandas")
        if skip_extrapolated:
            raise UpliftInputError("--skip-extrapolated is not available with --engine spark; use --engine pandas")
        _target_with_spark(model_dir, customers, out, spark_master=spark_master, exclude=exclude,
                           strict_drift=strict_drift, as_json=as_json, cost=cost, value=value, budget=budget,
                           max_customers=max_customers, min_roi=min_roi, allow_negative=allow_negative,
                           include_all=all_rows, random_state=seed, learner="fast" if fast else None,
                           loading=loading)
        return
    study = load_study(model_dir, *loading)
    frame = study.schema.read(customers, text=[study.roles.get("id")])
    excluded = read_exclusions(exclude, study.roles.get("id")) if exclude is not None else None
    res = study.target(frame, cost=cost, value=value, budget=budget, max_customers=max_customers,
                       min_roi=min_roi, exclude=excluded, allow_negative=allow_negative, include_all=all_rows,
                       random_state=seed, learner="fast" if fast else None, holdout=holdout, explore=explore,
                       skip_extrapolated=skip_extrapolated)
    drift = study.drift(frame, uplift=res.scores)  # the list's own scores: the customers are scored once
    if out_table is not None:
        write_sql_table(res.list, out, out_table)
    else:
        _write(list_for_file(res.list, out), out, protect=inputs)
    if plot is not None:
        _save_png(plot_profit_curve(res.curve, currency=currency), plot, [*inputs, out])
    if as_json:
        print_json({"summary": res.summary, "holdout": res.holdout, "drift": drift, "out": str(out)})
    else:
        show_targeting(res.summary, f"table {out_table} of {out}" if out_table else out, currency=currency,
                       kind=study.crossfit_.kind)
        if res.holdout:
            h = res.holdout
            mde, unit = h.get("mde"), effect_unit(study.crossfit_.kind, currency)
            mde_text = fmt_ci(mde, scale=unit.scale, unit=unit.short, digits=decimals(0, mde or 0, unit.scale))
            console.print(f"holdout: {h.get('n_holdout', 0):,} selected customers get no coupon (randomised, "
                          f"stratified by coupon and uplift decile); exploration: {h.get('n_explore', 0):,} "
                          "not-selected customers get one"
                          + (f"; smallest detectable average uplift {mde_text} per customer (80% power, 5% "
                             "level)" if mde else ""), highlight=False)
            if h.get("warning"):
                console.print(f"[yellow]warning:[/] {h['warning']}", highlight=False)
        show_drift(drift)
    check_drift(drift, strict_drift)


def _target_with_spark(model_dir: Path, customers: Path, out: Path, *, spark_master: str, exclude: Path | None,
                       strict_drift: bool, as_json: bool, loading: tuple = (), **kwargs) -> None:
    """`uplift target --engine spark`: read the customers with Spark, write the list as Parquet."""
    if not out.name.lower().endswith((".parquet", ".pq")):
        raise UpliftInputError(f"--engine spark writes the list as Parquet: give --out a .parquet name (got {out})")
    study = load_study(model_dir, *loading)
    excluded = read_exclusions(exclude, study.roles.get("id")) if exclude is not None else None
    drift: dict = {}
    with spark_session(spark_master, "uplift target") as spark:
        # the study as loaded and verified here, not the directory again (which could change in between)
        res = target_spark(study, read_customers(spark, customers, schema=study.schema), out=out,
                           exclude=excluded, drift=drift, **kwargs)
    if as_json:
        print_json({"summary": res.summary, "holdout": None, "drift": drift, "out": str(out)})
    else:
        show_targeting(res.summary, out, kind=study.crossfit_.kind)
        show_drift(drift)
    check_drift(drift, strict_drift)


def check_drift(drift: dict, strict: bool) -> None:
    if strict and drift and drift.get("drifted"):
        raise UpliftInputError(f"drift: {drift['warnings'][0]} (and {len(drift['warnings']) - 1} more); "
                               "the output was written, but --strict-drift turns drift into an error")


@app.command()
@cli_command
def report(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit`.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")],
    data: Annotated[Path | None, typer.Option(help="Training data (enables segments, SHAP and diagnostics plots).")]
    = None,
    segment_by: Annotated[list[str], typer.Option(help="Segment column for the report (repeat).")] = [],  # noqa: B006
    cost: Annotated[list[str], typer.Option(metavar="COST|ARM=COST", help="Cost per coupon for the targeting "
                                                 "section: one number, or ARM=COST (repeat), as for `uplift target`.")
                    ] = [],  # noqa: B006
    value: Annotated[float | None, typer.Option(help="Money per conversion, for the targeting section.")] = None,
    budget: Annotated[float | None, typer.Option(help="Budget for the targeting section.")] = None,
    currency: Annotated[str | None, typer.Option(help="Label of money amounts (costs, profit, effects on a "
                                                      "revenue outcome), e.g. '$' or EUR (default: none, the units "
                                                      "of --cost and --value).")] = None,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    trust_model: TrustOpt = False,
    expect_digest: DigestOpt = None,
    require_signature: SignatureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report (plots embedded; opens from disk without a network)."""
    if data is not None or sql is not None or db is not None or table_name is not None:
        data = table_source(data, sql, db, table_name, what="--data")
    check_output_path(out, protect=[*source_inputs(data), model_dir])
    loading = (trust_model, expect_digest, require_signature)
    study = _load_with_data(model_dir, data, *loading) if data is not None else load_study(model_dir, *loading)
    study.report(out, command_line=" ".join(["uplift", *sys.argv[1:]]), segment_by=list(segment_by) or None,
                 cost=list(cost) or None, value=value, budget=budget, currency=currency)
    if as_json:
        print_json({"report": str(out), "with_data": data is not None})
    else:
        console.print(f"wrote report to [bold]{out}[/]")


@app.command()
@cli_command
def refute(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit`.")],
    data: TrainingDataArg = None,
    arm: Annotated[str | None, typer.Option(help="Treated arm to check (default: the first).")] = None,
    method: Annotated[str, typer.Option(help="aipw | backdoor.linear_regression")] = "aipw",
    max_rows: Annotated[int, typer.Option(help="Rows sampled for the refutation.")] = 20_000,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    trust_model: TrustOpt = False,
    expect_digest: DigestOpt = None,
    require_signature: SignatureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Try to refute the average effect with DoWhy (placebo, random common cause, subset, hidden confounder)."""
    check_option("--max-rows", max_rows, 1)
    data = table_source(data, sql, db, table_name)
    study = _load_with_data(model_dir, data, trust_model, expect_digest, require_signature)
    res = study.refute(arm=arm, estimate_method=method, max_rows=max_rows)
    ev = study.e_values()
    if as_json:
        print_json({"refutation": res, "e_values": ev})
        return
    console.print(table("DoWhy refutation of the average effect", res, {c: c for c in res.columns}))
    if len(ev):
        console.print(table("E-values (risk-ratio strength of a hidden confounder needed to explain the effect away)",
                            ev, {c: c for c in ev.columns if c != "message"}))


@app.command()
@cli_command
def readout(
    sent_list: Annotated[Path, typer.Argument(help="The targeting list as sent (written with --holdout).")],
    outcome: Annotated[str, typer.Option(help="Outcome column in RESULTS (e.g. converted).")],
    id_col: Annotated[str, typer.Option("--id", help="Customer id column in both files.")],
    results: Annotated[Path | None, typer.Argument(help="Observed outcomes per customer after the campaign; or "
                                                        "--sql / --db --table.")] = None,
    revenue: Annotated[str | None, typer.Option(help="Revenue column in RESULTS.")] = None,
    value: Annotated[float | None, typer.Option(help="Money per conversion (if no revenue column).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the readout as .json.")] = None,
    currency: Annotated[str | None, typer.Option(help="Currency of revenue and costs, shown with money "
                                                      "(e.g. EUR).")] = None,
    sql: SqlOpt = None,
    db: DbOpt = None,
    table_name: TableOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """After the campaign: realised incremental conversions/revenue/profit (sent vs holdout) with 95% CIs."""
    results = table_source(results, sql, db, table_name, what="RESULTS")
    inputs = [sent_list, *source_inputs(results)]
    if out is not None:
        if out.suffix.lower() != ".json":
            raise UpliftInputError(f"readout output {out}: use a .json file name")
        check_output_path(out, protect=inputs)
    res = run_readout(read_table(sent_list, text=[id_col]), read_source(results, text=[id_col]), id_col=id_col,
                      outcome=outcome, revenue=revenue, value=value)
    if out is not None:
        atomic_write_text(out, json_text(res), protect=inputs)
    if as_json:
        print_json(res)
        return
    summary = res["summary"]
    console.print(readout_summary_table(summary, currency=currency))
    console.print(f"method: {summary['method']}", highlight=False)
    kind = "binary" if "incremental_conversions" in summary else "continuous"
    money = f" (money in {currency})" if currency else ""
    for name, key in (("by_coupon", "coupon"), ("by_decile", "uplift_decile")):
        frame = res.get(name)
        if isinstance(frame, pd.DataFrame) and len(frame):
            title = "By coupon" if key == "coupon" else "By predicted-uplift decile (1 = highest; calibration)"
            console.print(readout_table(title + (money if "profit" in frame else ""), frame, key, kind,
                                        currency=currency))
    for note in res.get("notes", []):
        console.print(f"[yellow]note:[/] {cli_wording(note)}", highlight=False)


@app.command()
@cli_command
def serve(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `uplift fit` (verified on start).")],
    host: Annotated[str, typer.Option(help="Address to listen on (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each holds the model in memory).")] = 1,
    expect_digest: Annotated[str | None, typer.Option(help="Refuse to start unless the model has this digest "
                                                            "(GET /v1/model shows it).")] = None,
    learner: Annotated[str | None, typer.Option(help="Learner that scores (default: the fast scorer when the "
                                                     "study has one, else the chosen model).")] = None,
    cost: Annotated[list[str], typer.Option(metavar="COST|ARM=COST", help="Default cost per coupon for /v1/decide: "
                                            "one number, or ARM=COST (repeat); a request may give its own.")
                    ] = [],  # noqa: B006
    value: Annotated[float | None, typer.Option(help="Default money per conversion for /v1/decide.")] = None,
    max_rows: Annotated[int, typer.Option(help="Most customers per request (more: HTTP 413).")] = 10_000,
    drift_window: Annotated[int, typer.Option(help="Customers in the rolling window of the drift metrics.")] = 5000,
    skip_extrapolated: Annotated[bool, typer.Option(
        "--skip-extrapolated", help="/v1/decide gives no coupon to customers outside an observational study's "
        "overlap unless a request says \"skip_extrapolated\": false.")] = False,
    log_ids: Annotated[bool, typer.Option(
        "--log-ids", help="Log every decision with the customer id sent (off: ids are never logged).")] = False,
    no_access_log: Annotated[bool, typer.Option("--no-access-log", help="No log line per request (by default one: "
                                                                        "method, path, status).")] = False,
    trust_model: TrustOpt = False,
    require_signature: SignatureOpt = False,
) -> None:
    """Serve uplift and coupon decisions over HTTP (POST /v1/uplift, /v1/decide; GET /v1/model, /metrics)."""
    run_server(model_dir, host=host, port=port, workers=workers, access_log=not no_access_log, learner=learner,
               expect_digest=expect_digest, cost=list(cost) or None, value=value, max_rows=max_rows,
               drift_window=drift_window, log_ids=log_ids, trust=trust_model, require_signature=require_signature,
               skip_extrapolated=skip_extrapolated)


# ---------------------------------------------------------------------------------------------------------
# uplift features: from event logs to the campaign table (uplift.features)
# ---------------------------------------------------------------------------------------------------------
@app.command()
@cli_command
def features(
    out: Annotated[Path, typer.Option(help="Campaign table with features and outcomes to write (.parquet or .csv); "
                                           "its feature schema goes beside it (<out>.features.json).")],
    events: Annotated[Path | None, typer.Option(help="Event log (.parquet or .csv), read by DuckDB.")] = None,
    events_sql: Annotated[str | None, typer.Option(metavar="QUERY", help="Event log as a DuckDB query (in --db "
                                                                         "when given).")] = None,
    campaign: Annotated[Path | None, typer.Option(help="Campaign table: customer id, arm, exposure time.")] = None,
    campaign_sql: Annotated[str | None, typer.Option(metavar="QUERY", help="Campaign table as a DuckDB query (in "
                                                                           "--db when given).")] = None,
    db: DbOpt = None,
    as_of_exposure: Annotated[bool, typer.Option("--as-of-exposure", help="Features end at each customer's exposure "
                                                 "(the default; no window reaches past it).")] = False,
    as_of: Annotated[str | None, typer.Option(help="Features end at this one date for everyone instead (refused "
                                                   "when it is after an exposure).")] = None,
    campaign_start: Annotated[str | None, typer.Option(help="One exposure time for every customer, when the "
                                                            "campaign table has no exposure column.")] = None,
    window: Annotated[str, typer.Option(help="Feature windows in days, comma-separated.")] = "7,30,90,365",
    outcome: Annotated[list[str], typer.Option(metavar="TYPE:DAYS", help="Follow-up outcome after exposure, e.g. "
                                               "purchase:14d (conversion_14d and revenue_14d); repeat.")
                       ] = ["purchase:14d"],  # noqa: B006
    id_col: Annotated[str, typer.Option("--id-col", help="Customer id column of the events.")] = "customer_id",
    campaign_id_col: Annotated[str | None, typer.Option(help="Customer id column of the campaign (default: "
                                                             "--id-col).")] = None,
    treatment: Annotated[str | None, typer.Option(help="Arm column of the campaign (read as text).")] = None,
    time_col: Annotated[str, typer.Option(help="Event time column.")] = "timestamp",
    event_type_col: Annotated[str, typer.Option(help="Event type column.")] = "event_type",
    amount_col: Annotated[str, typer.Option(help="Amount column (optional in the data).")] = "amount",
    category_col: Annotated[str, typer.Option(help="Category column (optional in the data).")] = "category",
    channel_col: Annotated[str, typer.Option(help="Channel column (optional in the data).")] = "channel",
    exposure_col: Annotated[str, typer.Option(help="Exposure time column of the campaign.")] = "exposure_time",
    purchase: Annotated[str, typer.Option(help="Event type of a purchase (AOV, rates, outcome names).")] = "purchase",
    observed_until: Annotated[str | None, typer.Option(help="When the event log ends (default: its last event); "
                                                            "a follow-up past it is noted.")] = None,
    allow_leakage: Annotated[bool, typer.Option("--allow-leakage", help="Build features whose window reaches past "
                                                "an exposure anyway (loud warning, recorded in the schema; not "
                                                "advised).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Point-in-time behaviour features from an event log, strictly before each exposure, plus follow-up outcomes
    (DuckDB), written as the campaign table `uplift fit` reads."""
    if as_of_exposure and as_of is not None:
        raise UpliftInputError("give --as-of-exposure or --as-of DATE, not both")
    try:
        windows = [int(w) for w in window.split(",") if w.strip()]
    except ValueError:
        raise UpliftInputError(f"--window {window!r}: give whole days, comma-separated, e.g. 30,90,365") from None
    event_source = table_source(events, events_sql, db, None, what="--events")
    campaign_source = table_source(campaign, campaign_sql, db if campaign is None else None, None,
                                   what="--campaign")
    inputs = [*source_inputs(event_source), *source_inputs(campaign_source)]
    schema_file = schema_path(out)
    _check_outputs([out, schema_file], inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = build_features(
            event_source, campaign_source, id=id_col, time=time_col, event_type=event_type_col, amount=amount_col,
            category=category_col, channel=channel_col, campaign_id=campaign_id_col, treatment=treatment,
            exposure=None if campaign_start is not None else exposure_col, campaign_start=campaign_start,
            as_of=as_of, windows=windows, outcomes=list(outcome), purchase=purchase, allow_leakage=allow_leakage,
            observed_until=observed_until)
    for w in caught:
        err_console.print(Text.assemble(("WARNING:", "bold red"), f" {w.message}"), highlight=False, soft_wrap=True)
    write_table(built.frame, out, protect=inputs)
    built.save_schema(schema_file, protect=[*inputs, out])
    doc = {"out": str(out), "schema": str(schema_file), "rows": len(built.frame),
           "features": len(built.feature_names), "outcomes": built.outcome_names, "notes": built.notes}
    if as_json:
        print_json(doc)
        return
    console.print(f"wrote {len(built.frame):,} customers x {len(built.feature_names)} features and outcomes "
                  f"{', '.join(built.outcome_names)} to [bold]{out}[/] (schema: {schema_file})", highlight=False)
    for note in built.notes:
        console.print(f"[yellow]note:[/] {cli_wording(note)}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    exit_on_termination()  # SIGTERM/SIGHUP: leave through the normal exit path, removing temp files
    app()


if __name__ == "__main__":
    main()

"""``distil review export`` / ``distil review import``: the human-in-the-loop round trip."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import spacy
import typer
from spacy.language import Language

from ...corpus import read_docs
from ...errors import DistilError
from ..config import load_pipeline
from ..review import ORDERS, export_review, import_review, load_review_schema, simulate_review
from .app import app
from .overrides import fail

review_app = typer.Typer(
    help="Review annotations: in the browser (serve), or exported for Prodigy or Label Studio and merged back."
)
app.add_typer(review_app, name="review")


CONFIG_HELP = "The pipeline config (.cfg or saved pipeline directory) whose [schemas] block gives the labels."
ORDER_HELP = (
    "uncertainty (least confident first), disagreement (with --second-opinion, most disagreement first), "
    "random, or input (file order). Ties are broken by a shuffle seeded with --seed."
)
SEED_HELP = "Seed of the shuffle that breaks ties (and of --order random): the same seed gives the same order."
SECOND_OPINION_HELP = (
    "Another pipeline (config or saved directory: rules, a quick student) run over the same texts; "
    "needed by --order disagreement."
)


def order_and_second_opinion(order: str, second_opinion: Optional[Path]) -> Optional[Language]:
    """Check ``--order`` and load the ``--second-opinion`` pipeline it needs; errors name the offending value."""
    if order not in ORDERS:
        raise fail(f"unknown --order {order!r}; use {', '.join(ORDERS)}")
    if order == "disagreement" and second_opinion is None:
        raise fail("--order disagreement needs --second-opinion CONFIG: the pipeline the teacher is compared with")
    if second_opinion is None:
        return None
    try:
        return load_pipeline(second_opinion)
    except DistilError as err:
        raise fail(f"--second-opinion {second_opinion}: {err}") from None


@review_app.command("export")
def export_command(
    annotations: Path = typer.Argument(..., help="`distil annotate` output directory or a records .jsonl file."),
    config: Path = typer.Option(..., "--config", "-c", help=CONFIG_HELP),
    fmt: str = typer.Option("prodigy", "--format", "-f", help="prodigy (JSONL) or labelstudio (JSON + .xml config)."),
    output: Path = typer.Option(..., "--output", "-o", help="Task file to write."),
    order: str = typer.Option("uncertainty", "--order", help=ORDER_HELP),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    second_opinion: Optional[Path] = typer.Option(None, "--second-opinion", help=SECOND_OPINION_HELP),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Export at most N documents."),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer used to rebuild the Docs."),
) -> None:
    """Write review tasks, the teacher's doubts first: least confident (--order uncertainty) or most disputed.

    --order disagreement compares the teacher with --second-opinion (another
    pipeline over the same texts) and exports the documents they disagree on
    most first. Ties are broken by a shuffle seeded with --seed, never by file
    order; docs/review.md defines the confidence.

    Prodigy: one task a line (spans, relations, options/accept), with no
    answer until the reviewer gives one; load it with a Prodigy recipe that
    shows spans and relations, with the schema's labels (printed). Label
    Studio: a JSON list of tasks with the model's predictions, plus
    OUTPUT.xml, the labeling config offering every label of the schema.

    Example: distil review export annotations/ner --config configs/ner_llm.cfg --format labelstudio --output review/ner.json --limit 200
    """
    if fmt not in ("prodigy", "labelstudio"):
        raise fail(f"unknown --format {fmt!r}; use prodigy or labelstudio")
    second = order_and_second_opinion(order, second_opinion)
    try:
        schema = load_review_schema(config)
        count = export_review(
            annotations, output, spacy.blank(lang), fmt=fmt, order=order, limit=limit, schema=schema,  # type: ignore[arg-type]
            seed=seed, second_opinion=second,
        )
    except DistilError as err:
        raise fail(str(err)) from None
    typer.echo(f"distil review export: {count} task(s) written to {output}", err=True)
    if fmt == "labelstudio":
        typer.echo(f"  labeling config: {output.with_suffix('.xml')}", err=True)
    else:
        # Categories travel in each task's options; spans and relations need the recipe's --label.
        for what, labels in (("entity", schema.entities), ("relation", schema.relations)):
            if labels:
                typer.echo(f"  {what} labels for the recipe: --label {','.join(labels)}", err=True)


@review_app.command("import")
def import_command(
    review_file: Path = typer.Argument(..., help="Corrected tasks: Prodigy JSONL (.jsonl) or Label Studio export (.json)."),
    into: Path = typer.Option(..., "--into", help="The annotation directory or records file to merge into."),
    config: Path = typer.Option(..., "--config", "-c", help=CONFIG_HELP),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer used to rebuild the Docs."),
) -> None:
    """Merge corrected tasks back: answered documents replace the model's, rejected ones are dropped.

    Only tasks the reviewer answered count as reviewed; unanswered ones keep
    the model's annotations. A task with a label outside the config's schema
    is listed with its file:line and not merged (exit code 1); fix it and
    import the file again. Prints counts and model-vs-reviewer agreement (F1
    per label that occurs, the reviewer as gold). Documents are matched by
    meta.key (set by `distil annotate`) or by their text.

    Example: distil review import review/ner.jsonl --into annotations/ner --config configs/ner_llm.cfg
    """
    try:
        report = import_review(review_file, into, spacy.blank(lang), schema=load_review_schema(config))
    except DistilError as err:
        raise fail(str(err)) from None
    invalid = sum(report.invalid.values())
    typer.echo(
        f"distil review import: {report.reviewed} reviewed ({report.changed} changed), {report.rejected} rejected, "
        f"{report.ignored} ignored, {report.unanswered} unanswered, {report.not_found} not found, {invalid} invalid",
        err=True,
    )
    for problem in report.invalid:
        typer.echo(f"  invalid: {problem}", err=True)
    typer.echo(json.dumps({"agreement": report.agreement}, indent=2))
    if invalid:
        raise fail(
            f"{invalid} task problem(s) in {review_file} were not merged (listed above); fix them and import "
            "the file again (the answered tasks already merged are merged again unchanged)"
        )


@review_app.command("simulate")
def simulate_command(
    annotations: Path = typer.Argument(..., help="`distil annotate` output directory or a records .jsonl file."),
    gold: Path = typer.Option(..., "--gold", "-g", help="Gold Docs for the same texts (.spacy or records .jsonl)."),
    fraction: float = typer.Option(..., "--fraction", help="Share of documents 'reviewed', first in --order."),
    output: Path = typer.Option(..., "--output", "-o", help="New annotation directory to write."),
    order: str = typer.Option("uncertainty", "--order", help=ORDER_HELP),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    second_opinion: Optional[Path] = typer.Option(None, "--second-opinion", help=SECOND_OPINION_HELP),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer used to rebuild the Docs."),
) -> None:
    """SIMULATE a person's review for experiments: gold replaces the teacher on the first fraction in --order.

    The documents a person would see first with `review export` and the same
    --order, --seed and --second-opinion get their gold annotations, marked
    meta.reviewed = true and meta.review = "simulated-gold". Use it to
    measure the human-in-the-loop curve (student accuracy against the
    fraction reviewed), with --order random beside it, before paying for
    real review.

    Example: distil review simulate annotations/teacher --gold corpus/train.spacy --fraction 0.2 --output annotations/review20
    """
    second = order_and_second_opinion(order, second_opinion)
    nlp = spacy.blank(lang)
    try:
        summary = simulate_review(
            annotations, list(read_docs(gold, nlp)), fraction, output, nlp,
            order=order, seed=seed, second_opinion=second,  # type: ignore[arg-type]
        )
    except DistilError as err:
        raise fail(str(err)) from None
    typer.echo(
        f"distil review simulate: {summary['replaced_by_gold']} of {summary['documents']} documents replaced by gold "
        f"(simulated review, --order {order}, --seed {seed}) -> {output}",
        err=True,
    )


@review_app.command("serve")
def serve_command(
    annotations: Path = typer.Argument(..., help="`distil annotate` output directory (an annotation store)."),
    config: Path = typer.Option(..., "--config", "-c", help=CONFIG_HELP),
    order: str = typer.Option("uncertainty", "--order", help=ORDER_HELP),
    seed: int = typer.Option(0, "--seed", help=SEED_HELP),
    second_opinion: Optional[Path] = typer.Option(None, "--second-opinion", help=SECOND_OPINION_HELP),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on: this machine only by default; any other needs --token-env."
    ),
    port: int = typer.Option(8090, "--port", min=1, max=65535, help="Port to listen on."),
    reviewer: Optional[str] = typer.Option(
        None, "--reviewer", help="Who reviews (default: your login name). Others on the same server open "
        "http://HOST:PORT/?reviewer=NAME; each reviewer's decisions are kept apart."
    ),
    token_env: Optional[str] = typer.Option(
        None, "--token-env", help="Name of an environment variable holding a token that the page and the API ask for."
    ),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer that places entities on tokens."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error (no access log)."),
) -> None:
    """Review annotations in the browser: one document at a time, the teacher's doubts first, keyboard-driven.

    Accept (a), reject (x) or correct each document: select text and press
    a label key (1-9) to add an entity, click its x to remove it; click two
    entities and a type for a relation; click a category. Every decision is
    saved at once to the annotation directory (records.jsonl, read by
    `distil train --reviewed-weight`; rejected documents are left out of
    training) and to DIR/review.sqlite (every reviewer's decisions); a
    restart resumes at your first undecided document, in the same --order.
    The server holds the directory's lock: `distil annotate` waits for it.

    Example: distil review serve annotations/ner --config configs/ner_llm.cfg --order uncertainty --port 8090
    """
    import getpass

    try:
        from ...review_app import ReviewAppError, ReviewSession, read_token, run_review_server
        from ...review_app.app import check_reviewer, is_loopback
    except ImportError as err:
        raise fail(f"distil review serve needs FastAPI and uvicorn ({err}); install them with pip install "
                   "'distil[serve]'") from None
    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise fail(f"--log-level {log_level}: choose debug, info, warning or error")
    second = order_and_second_opinion(order, second_opinion)
    try:
        token = read_token(token_env)
        if token is None and not is_loopback(host):
            raise ReviewAppError(
                f"--host {host} lets other machines reach the review server, which writes annotations: give "
                "--token-env NAME (a variable holding a secret token), or keep the default --host 127.0.0.1"
            )
        name = check_reviewer(reviewer or _login_name(getpass.getuser))
        schema = load_review_schema(config)
        session = ReviewSession.open(annotations, schema, spacy.blank(lang), order=order,  # type: ignore[arg-type]
                                     seed=seed, second_opinion=second)
    except DistilError as err:
        raise fail(str(err)) from None
    try:
        progress = session.progress(name)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        typer.echo(
            f"distil review serve: {session.total} documents of {annotations} in --order {order} (seed {seed}); "
            f"{name} decided {progress.decided}. Open http://{shown}:{port}/ (Ctrl-C stops; every decision is "
            "already saved)", err=True,
        )
        run_review_server(session, host=host, port=port, reviewer=name, token=token, log_level=log_level.lower())
    except DistilError as err:
        raise fail(str(err)) from None
    finally:
        session.close()


def _login_name(getuser: Callable[[], str]) -> str:
    """The login name as the default reviewer, or ``reviewer`` where there is none (a container without a user)."""
    try:
        return getuser()
    except (KeyError, OSError):
        return "reviewer"

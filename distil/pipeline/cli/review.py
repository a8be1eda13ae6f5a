"""``distil review export`` / ``distil review import``: the human-in-the-loop round trip."""

from __future__ import annotations

import json
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

review_app = typer.Typer(help="Export annotations for a person to correct, and merge the corrections back.")
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

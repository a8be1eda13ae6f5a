"""``distil sample``: a seeded random sample of a corpus, shuffled, and optionally the rest (shuffled too)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ...corpus import CorpusError
from ..sample import sample_corpus
from .app import app
from .overrides import fail


@app.command("sample")
def sample_command(
    source: Path = typer.Argument(..., help="Corpus: .spacy DocBin or records .jsonl."),
    output: Path = typer.Argument(..., help="Where to write the sample (.spacy or .jsonl)."),
    n: int = typer.Option(..., "--n", "-n", min=0, help="Number of documents to sample."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same sample."),
    rest: Optional[Path] = typer.Option(None, "--rest", help="Write the documents not sampled here."),
    exclude: Optional[str] = typer.Option(
        None, "--exclude", help="Leave out documents whose text is in this corpus (or bundled 'distil:pool_*.jsonl')."
    ),
) -> None:
    """Split a corpus reproducibly: N random documents to OUTPUT, the others to --rest.

    The N documents are drawn uniformly at random with --seed (not the first
    N: a corpus sorted by label would give a biased sample), and both files
    are shuffled, not in corpus order, so that any head of them (annotate
    --limit, a review stopped early) is a random sample too. The same corpus,
    N and seed always give the same files, and the same documents as
    `evaluate --limit N --seed S` on that corpus. --exclude leaves out the
    documents of another corpus first (matched by text, whitespace
    collapsed), e.g. the seed pool a teacher retrieves examples from, so that
    no gold example the teacher sees is also a train, dev or test document.

    Example: distil sample corpus/train_full.spacy corpus/dev.spacy --n 1000 --rest corpus/pool.spacy --seed 0

    Example: distil sample train_full.spacy dev.spacy --n 800 --rest rest.spacy --exclude distil:pool_wnut17.jsonl
    """
    try:
        taken, left, excluded = sample_corpus(source, output, n, seed=seed, rest=rest, exclude=exclude)
    except (CorpusError, ValueError) as err:
        raise fail(str(err)) from None
    message = f"distil sample: {taken} document(s) to {output}" + (f", {left} to {rest}" if rest else "")
    if exclude:
        message += f"; {excluded} left out (in {exclude})"
    typer.echo(message, err=True)

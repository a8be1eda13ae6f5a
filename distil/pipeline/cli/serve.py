"""``distil serve``: serve a pipeline over HTTP with dynamic batching, backpressure and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ...errors import DistilError
from ..config import load_pipeline
from .app import OVERRIDES_CONTEXT, app
from .overrides import fail, import_code, split_overrides


@app.command("serve", context_settings=OVERRIDES_CONTEXT)
def serve_command(
    ctx: typer.Context,
    config: str = typer.Argument(
        ..., metavar="CONFIG", help="Pipeline config (.cfg), a directory saved with nlp.to_disk, or an installed "
        "pipeline package (a wheel made by distil package)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes, each loading the pipeline once."),
    max_batch_size: int = typer.Option(32, "--max-batch-size", min=1, help="Most documents per nlp.pipe batch."),
    max_wait_ms: float = typer.Option(
        2.0, "--max-wait-ms", min=0, help="Longest a batch waits for more documents once it has one."
    ),
    max_queue: int = typer.Option(512, "--max-queue", min=1, help="Documents waiting at most; beyond: 503."),
    max_texts: int = typer.Option(256, "--max-texts", min=1, help="Texts per request at most; beyond: 413."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.001, help="Request deadline in seconds; past it: 504."),
    max_body_bytes: int = typer.Option(
        4 * 1024 * 1024, "--max-body-bytes", min=1, help="Request body size limit; beyond: 413."
    ),
    max_text_chars: Optional[int] = typer.Option(
        None, "--max-text-chars", min=1, help="Text length limit; beyond: 413 (default and ceiling: nlp.max_length)."
    ),
    token_env: Optional[str] = typer.Option(
        None, "--token-env", help="Name of an environment variable holding a bearer token that requests must send."
    ),
    code: Optional[Path] = typer.Option(None, "--code", help="Python file to import first (custom components)."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error (info: access log)."),
) -> None:
    """Serve a pipeline over HTTP: POST /v1/annotate answers with `distil run`'s records.

    Concurrent requests are batched into nlp.pipe calls; a full queue answers
    503, a late request 504. Also GET /v1/schema, /healthz, /readyz and
    /metrics (Prometheus). SIGTERM drains the requests in flight and exits 0.
    Config overrides go after the options, spaCy style.

    Example: DISTIL_TOKEN=secret distil serve configs/all_rules.cfg --port 8080 --token-env DISTIL_TOKEN
    """
    from ...serve import ServeSettings, run_server

    extra, overrides = split_overrides(ctx.args)
    if extra:
        raise fail(f"unexpected argument(s) after CONFIG: {' '.join(extra)} (config overrides look like "
                   "--section.key value)")
    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise fail(f"--log-level {log_level}: choose debug, info, warning or error")
    settings = ServeSettings(
        source=config, overrides=overrides, code=str(code) if code else None, host=host, port=port,
        workers=workers, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue,
        max_texts=max_texts, timeout_s=timeout, max_body_bytes=max_body_bytes, max_text_chars=max_text_chars,
        token_env=token_env, log_level=log_level.lower(),
    )
    settings.token()  # an unset token variable is an error before the (slow) pipeline load
    nlp = None
    if workers == 1:
        import_code(code)
        try:
            nlp = load_pipeline(config, overrides)
        except (DistilError, FileNotFoundError) as err:
            raise fail(str(err)) from None
    elif code is not None and not code.exists():
        raise fail(f"--code file not found: {code}")
    run_server(settings, nlp)

"""Import every command module so that it registers itself on the app."""

from . import (  # noqa: F401
    annotate,
    assemble,
    compare,
    convert,
    doctor,
    evaluate,
    export,
    package,
    review,
    run,
    sample,
    schema,
    serve,
    train,
)

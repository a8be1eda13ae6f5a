"""distil: config-declared spaCy pipelines whose components can be backed by an LLM, a distilled encoder or rules.

Application code needs only :func:`load`::

    import distil
    nlp = distil.load("configs/all_rules.cfg")
    doc = nlp("Apple hired Tim Cook.")
    doc.ents, doc.cats, doc._.relations
"""

from __future__ import annotations

from .about import __version__
from .annotations import Failure, Relation, register_extensions
from .pipeline.config import ConfigError
from .pipeline.config import load_pipeline as load
from .records import DocRecord, from_record, to_record
from .schemas import NERSchema, RELSchema, SchemaError, TextCatSchema

__all__ = [
    "ConfigError",
    "DocRecord",
    "Failure",
    "NERSchema",
    "RELSchema",
    "Relation",
    "SchemaError",
    "TextCatSchema",
    "__version__",
    "from_record",
    "load",
    "register_extensions",
    "to_record",
]

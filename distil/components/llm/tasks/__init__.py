"""distil's spacy-llm tasks: ``distil.NER.v1``, ``distil.TextCat.v1``, ``distil.REL.v1``."""

from .ner import NERTask, make_ner_task
from .rel import RELTask, make_rel_task
from .textcat import TextCatTask, make_textcat_task

__all__ = ["NERTask", "RELTask", "TextCatTask", "make_ner_task", "make_rel_task", "make_textcat_task"]

"""The LLM backend: spacy-llm tasks and models that write distil's typed annotations.

Tasks (``llm_tasks``): ``distil.NER.v1``, ``distil.TextCat.v1``,
``distil.REL.v1``. Models (``llm_models``): ``distil.OpenAI.v1`` (any
OpenAI-compatible server) and ``distil.LlamaCpp.v1`` (in-process GGUF, offline
by default). Answer cache (``llm_misc``): ``distil.ResponseCache.v1``.
Few-shot examples retrieved per document (``misc`` and ``llm_misc``):
``distil.RetrievedExamples.v1``. Answers carry scores from the models' token
log-probabilities (:mod:`.scores`). Models and tasks report their usage
through the ``distil_usage()`` hook (:mod:`distil.protocols`): after a run,
:func:`distil.pipeline.usage.collect_usage` gives per component the requests,
tokens, cache hits, failures, latency and cost beside the task's counters.
"""

from .cache import ResponseCache, make_response_cache
from .models import LlamaCppModel, OpenAIModel, make_llamacpp_model, make_openai_model
from .retrieval import RetrievedExamples, make_retrieved_examples
from .tasks import NERTask, RELTask, TextCatTask, make_ner_task, make_rel_task, make_textcat_task

__all__ = [
    "LlamaCppModel",
    "NERTask",
    "OpenAIModel",
    "RELTask",
    "ResponseCache",
    "RetrievedExamples",
    "TextCatTask",
    "make_llamacpp_model",
    "make_ner_task",
    "make_openai_model",
    "make_rel_task",
    "make_response_cache",
    "make_retrieved_examples",
    "make_textcat_task",
]

"""distil's spacy-llm models: ``distil.OpenAI.v1`` (HTTP) and ``distil.LlamaCpp.v1`` (in process)."""

from .llamacpp import LlamaCppModel, make_llamacpp_model
from .openai import OpenAIModel, make_openai_model

__all__ = ["LlamaCppModel", "OpenAIModel", "make_llamacpp_model", "make_openai_model"]

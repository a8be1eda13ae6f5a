"""distil's spacy-llm models: ``distil.OpenAI.v1`` (HTTP) and ``distil.LlamaCpp.v1`` (in process)."""

from .llamacpp import LlamaCppModel, LlamaCppSettings, make_llamacpp_model
from .openai import OpenAIModel, OpenAISettings, make_openai_model

__all__ = ["LlamaCppModel", "LlamaCppSettings", "OpenAIModel", "OpenAISettings", "make_llamacpp_model", "make_openai_model"]

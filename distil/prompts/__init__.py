"""Jinja2 prompt templates of the LLM tasks (package data)."""

"""Few-shot examples shipped with distil, referenced as "distil:<file>" in configs (package data)."""

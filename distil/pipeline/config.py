"""Load pipeline configs, apply dotted overrides, and build the ``Language``.

The config file is the single source of truth: ``distil.load`` and every CLI
command that takes a CONFIG go through :func:`load_pipeline`, so a pipeline
behaves the same from Python and from the command line.
"""

from __future__ import annotations

from ..errors import DistilError
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import spacy
from confection import ConfigValidationError
from spacy.language import DEFAULT_CONFIG, Language
from spacy.util import load_config, load_model_from_config
from thinc.api import Config

from ..schemas import SchemaError


class ConfigError(DistilError, ValueError):
    """A pipeline config could not be read or built; the message names the file and the problem."""


PathLike = Union[str, Path]


def check_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any], source: str) -> None:
    """Refuse an override of a setting that a plain section (such as ``[paths]``) does not have.

    confection adds unknown keys silently, so a typo such as ``--paths.ner_pattern``
    would change nothing. Blocks of a registered function (``@...``) or a
    component (``factory``) may take new keys: those are arguments, and
    validation at build time rejects the ones the function does not take.
    """
    for key in overrides:
        *parents, name = key.split(".")
        section: Any = config
        defaults: Any = DEFAULT_CONFIG  # spaCy fills settings such as [nlp] batch_size from here
        for part in parents:
            section = section.get(part) if isinstance(section, Mapping) else None
            defaults = defaults.get(part) if isinstance(defaults, Mapping) else None
        if not isinstance(section, Mapping) or name in section:
            continue  # confection reports a missing section itself
        if isinstance(defaults, Mapping) and name in defaults:
            continue
        if "factory" in section or any(k.startswith("@") for k in section):
            continue
        where = "[" + ".".join(parents) + "]" if parents else "the top level"
        known = ", ".join(sorted(k for k in section if not isinstance(section[k], Mapping))) or "no settings"
        raise ConfigError(f"{source}: override --{key}: {where} has no setting {name!r} (it has: {known})")


def read_config(path: PathLike, overrides: Optional[Mapping[str, Any]] = None) -> Config:
    """Read a config file with dotted ``overrides`` applied (not yet interpolated).

    An override of a setting a plain section lacks is an error (see
    :func:`check_overrides`), so a misspelt one cannot pass unnoticed.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        if overrides:
            check_overrides(load_config(path, interpolate=False), overrides, str(path))
        return load_config(path, overrides=dict(overrides or {}), interpolate=False)
    except ConfigError:
        raise
    except (ConfigValidationError, ValueError, KeyError) as err:
        raise ConfigError(f"{path}: {err}") from err
    except Exception as err:  # configparser raises its own hierarchy for syntax errors
        raise ConfigError(f"{path}: malformed config: {err}") from err


def load_pipeline(path: PathLike, overrides: Optional[Mapping[str, Any]] = None) -> Language:
    """Build the pipeline a config declares, with dotted ``overrides`` applied.

    ``path`` may also be a directory written by ``nlp.to_disk`` (or an
    installed pipeline package name), which is loaded with ``spacy.load``.
    Errors name the config file and say what is wrong: an unknown factory, a
    missing schema, a label that is not in the schema.
    """
    candidate = Path(path)
    if candidate.is_dir():
        return spacy.load(candidate, config=dict(overrides or {}))
    if not candidate.exists() and isinstance(path, str) and "/" not in path and not path.endswith(".cfg"):
        return spacy.load(path, config=dict(overrides or {}))
    config = read_config(candidate, overrides)
    try:
        return load_model_from_config(config, auto_fill=True, validate=True)
    except SchemaError as err:
        raise ConfigError(f"{candidate}: {err}") from err
    except ConfigValidationError as err:
        raise ConfigError(f"{candidate}: invalid config:\n{err}") from err
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ConfigError(f"{candidate}: {err}") from err

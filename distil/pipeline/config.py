"""Load pipeline configs, apply dotted overrides, and build the ``Language``.

The config file is the single source of truth: ``distil.load`` and every CLI
command that takes a CONFIG go through :func:`load_pipeline`, so a pipeline
behaves the same from Python and from the command line.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Optional, Union

import spacy
from confection import ConfigValidationError
from spacy.language import DEFAULT_CONFIG, Language
from spacy.util import is_package, load_config, load_model_from_config, registry
from thinc.api import Config

from ..errors import DistilError
from ..schemas import SchemaError
from .parts import check_ready


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
    if not candidate.exists() and looks_like_package_name(str(path)):
        # The CLI hands over a Path even for a package name, so the name is tested, not the type.
        if not is_package(str(path)):
            raise ConfigError(
                f"{path}: no such config file, pipeline directory or installed pipeline package "
                "(give a .cfg path, a directory saved with nlp.to_disk, or pip install the package first)"
            )
        return spacy.load(str(path), config=dict(overrides or {}))
    config = read_config(candidate, overrides)
    try:
        nlp = load_model_from_config(config, auto_fill=True, validate=True)
        # Built from a config, nothing restores a component's files later (spacy.load of a saved pipeline does,
        # through from_disk): components that need files (an encoder's model directory) check them now, so a
        # missing model fails here instead of on every document.
        check_ready(nlp)
        return nlp
    except SchemaError as err:
        raise ConfigError(f"{candidate}: {err}") from err
    except ConfigValidationError as err:
        raise ConfigError(describe_validation_error(err, config, str(candidate), overrides or {})) from err
    except ImportError as err:
        if "[E048]" not in str(err):  # a component's missing dependency: not the config's fault
            raise
        quote = find_unclosed_quote(candidate)
        lang = config.get("nlp", {}).get("lang")
        problem = quote or f"[nlp] lang = {lang!r} is not a language spaCy knows; use a code such as \"en\""
        raise ConfigError(f"{candidate}: {problem}") from err
    except (ValueError, KeyError, TypeError, OSError) as err:
        if "[E002]" in str(err):
            raise ConfigError(describe_unknown_factory(config, str(candidate))) from err
        raise ConfigError(f"{candidate}: {err}") from err


def looks_like_package_name(name: str) -> bool:
    """Whether ``name`` could be an installed pipeline package (``en_core_web_sm``) rather than a file path."""
    return name.replace("-", "_").isidentifier()


def find_unclosed_quote(path: Path) -> Optional[str]:
    """The first ``line N: ...`` of a config file whose value opens a double quote it never closes, if any.

    spaCy reports such a line only indirectly (``lang = "en`` becomes the
    language ``"en`` and fails with E048), so the file is scanned for it.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for number, line in enumerate(lines, start=1):
        _, sep, value = line.partition("=")
        if not sep or line.lstrip().startswith(("#", ";", "[")):
            continue
        if len(re.findall(r'(?<!\\)"', value)) % 2:
            return f"line {number}: unclosed quote in {line.strip()!r}; close the string with a \""
    return None


_SCHEMA_EXAMPLES = {
    "ner": '@misc = "distil.NERSchema.v1"\nlabels = {"person": "Names of people"}',
    "textcat": '@misc = "distil.TextCatSchema.v1"\nlabels = ["positive", "negative"]',
    "rel": '@misc = "distil.RELSchema.v1"\nlabels = ["works_for"]',
}


def describe_validation_error(
    err: ConfigValidationError, config: Mapping[str, Any], source: str, overrides: Mapping[str, Any]
) -> str:
    """Turn confection's validation error into one message naming the block and the fix, without a config dump.

    A reference to a block that is not there (``${schemas.ner}``) says which
    block to add; an argument a factory or registered function does not take
    lists the arguments it does take, and the closest one.
    """
    desc = str(err.desc or "")
    missing = re.search(r"option '([^']+)' in section '([^']+)' contains an interpolation key '([^']+)'", desc)
    if missing:
        option, section, key = missing.groups()
        message = f"{source}: [{section}] {option} = ${{{key}}}, but the config has no [{key}] block; add it"
        task = key.split(".")[-1]
        if key.startswith("schemas.") and task in _SCHEMA_EXAMPLES:
            message += f", e.g.\n[{key}]\n{_SCHEMA_EXAMPLES[task]}"
        return message
    problems = []
    for error in err.errors or []:
        loc = [str(part) for part in error.get("loc", [])]
        msg = str(error.get("msg", ""))
        owner = describe_owner(config, loc[0]) if loc else None
        block, arguments = owner if owner else ("[" + ".".join(loc[:1]) + "]", None)
        setting = ".".join(loc[1:]) or "(block)"
        if arguments is not None and ("unexpected argument" in msg or "extra fields" in msg):
            close = difflib.get_close_matches(setting, arguments, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            override = next((f" (from --{key})" for key in overrides if key.endswith("." + setting)), "")
            problems.append(
                f"{block} has no argument {setting!r}{override}; {hint}it takes: {', '.join(arguments)}"
            )
        else:
            problems.append(f"{block} {setting}: {msg}")
    if not problems:
        problems.append(desc or err.title or "invalid config")
    return f"{source}: " + "; ".join(problems)


def _blocks(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every block of a config with its dotted path, depth first."""
    for key, value in config.items():
        if isinstance(value, Mapping):
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from _blocks(value, path)


def describe_owner(config: Mapping[str, Any], name: str) -> Optional[tuple[str, Optional[list[str]]]]:
    """The block that calls factory or registered function ``name``, and the arguments that function takes.

    confection names the function, not the block, in its errors; the block is
    found by its ``factory`` or ``@registry`` value. The arguments are None
    when the function cannot be found.
    """
    for path, block in _blocks(config):
        if block.get("factory") == name:
            function = None
            for key in (Language.get_factory_name(name), name):
                if key in registry.factories:
                    function = registry.factories.get(key)
                    break
            return f"[{path}] (factory {name!r})", _arguments(function)
        for key, value in block.items():
            if str(key).startswith("@") and value == name:
                try:
                    function = registry.get(str(key)[1:], name)
                except Exception:  # an unknown registry: confection has said so already
                    function = None
                return f"[{path}] ({key} = {name!r})", _arguments(function)
    return None


def _arguments(function: Any) -> Optional[list[str]]:
    """The arguments a config block may set for ``function`` (spaCy passes ``nlp`` and ``name`` itself)."""
    if function is None:
        return None
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    return [p for p in parameters if p not in ("nlp", "name")]


def describe_unknown_factory(config: Mapping[str, Any], source: str) -> str:
    """Name the component whose factory does not exist, the closest factory name, and distil's factories.

    spaCy's E002 lists only the factories imported so far, which are never
    distil's (those load on demand through entry points).
    """
    distil_factories = sorted(ep.name for ep in entry_points(group="spacy_factories") if ep.name.startswith("distil_"))
    known = set(distil_factories) | {name for name in registry.factories.get_all() if "." not in name}
    for name, block in (config.get("components") or {}).items():
        factory = block.get("factory") if isinstance(block, Mapping) else None
        if factory is None or Language.has_factory(str(factory)) or str(factory) in distil_factories:
            continue
        close = difflib.get_close_matches(str(factory), sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (
            f"{source}: [components.{name}] factory {factory!r} does not exist; {hint}"
            f"distil's factories: {', '.join(distil_factories)} (spaCy's own, such as 'ner' or 'textcat', and "
            "spacy-llm's 'llm' work too)"
        )
    return f"{source}: unknown component factory (spaCy E002); distil's factories: {', '.join(distil_factories)}"

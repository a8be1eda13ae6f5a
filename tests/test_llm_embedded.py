"""The embedded GGUF model (packaged Gemma 3 270M) in process, for each task: structure and grounding.

Quality is not asserted (a 270M base model); what is: answers parse into the
schema, entities are grounded to exact offsets, nothing but the task's own
annotation changes, and usage is counted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import spacy
from spacy.language import Language

from distil.pipeline.usage import collect_usage
from distil.records import from_record

from .backends import SCHEMA_BLOCKS, SCHEMA_LABELS
from .conftest import distil_cli
from .llm_support import load_config_text

pytest.importorskip("llama_cpp")
REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "ner": [
        {"text": "Yesterday Maria Lopez flew from Madrid to meet the Netflix team.",
         "entities": [{"start": 10, "end": 21, "label": "person", "text": "Maria Lopez"},
                      {"start": 32, "end": 38, "label": "location", "text": "Madrid"},
                      {"start": 51, "end": 58, "label": "corporation", "text": "Netflix"}]},
    ],
    "textcat": [{"text": "Someone stole my card on the train.", "cats": {"lost_or_stolen_card": 1.0}},
                {"text": "How much is one dollar in yen today?", "cats": {"exchange_rate": 1.0}}],
    "rel": [
        {"text": "Maria Lopez works for Netflix in Madrid.",
         "entities": [{"start": 0, "end": 11, "label": "person", "text": "Maria Lopez"},
                      {"start": 22, "end": 29, "label": "corporation", "text": "Netflix"},
                      {"start": 33, "end": 39, "label": "location", "text": "Madrid"}],
         "relations": [{"head": 0, "tail": 1, "label": "works_for"}, {"head": 1, "tail": 2, "label": "located_in"}]},
    ],
}

COMPONENTS = {"ner": "distil.NER.v1", "textcat": "distil.TextCat.v1", "rel": "distil.REL.v1"}


@pytest.fixture(scope="module")
def nlp(tmp_path_factory: pytest.TempPathFactory) -> Language:
    tmp = tmp_path_factory.mktemp("embedded")
    parts = ['[nlp]\nlang = "en"\npipeline = ["ner", "textcat", "rel"]\n\n[schemas]\n']
    parts += [SCHEMA_BLOCKS[task] for task in COMPONENTS]
    parts.append("\n[components]\n")
    for task, name in COMPONENTS.items():
        examples = tmp / f"{task}.jsonl"
        examples.write_text("".join(json.dumps(r) + "\n" for r in EXAMPLES[task]))
        parts.append(
            f'\n[components.{task}]\nfactory = "llm"\n\n[components.{task}.task]\n@llm_tasks = "{name}"\n'
            f'schema = ${{schemas.{task}}}\nexamples = "{examples.as_posix()}"\n\n'
            f'[components.{task}.model]\n@llm_models = "distil.LlamaCpp.v1"\nn_ctx = 1024\n'
        )
    return load_config_text("".join(parts), tmp / "all_llm.cfg")


def test_all_three_tasks_in_process(nlp: Language) -> None:
    texts = ["Tim Cook visited Berlin with Google people.", "I lost my card, please block it."]
    docs = list(nlp.pipe(texts))
    assert [d.text for d in docs] == texts
    for doc in docs:
        for ent in doc.ents:
            assert ent.label_ in SCHEMA_LABELS["ner"]
            assert doc.text[ent.start_char : ent.end_char] == ent.text
        assert set(doc.cats) == set(SCHEMA_LABELS["textcat"])
        # The chosen category scores its probability under the model (token log-probs), not 1.0.
        assert 0.0 < sorted(doc.cats.values())[-1] <= 1.0 or doc._.failures
        for rel in doc._.relations:
            assert rel.label in SCHEMA_LABELS["rel"]
        for failure in doc._.failures:
            assert failure.kind in {"invalid_json", "schema_violation", "context_overflow"}
    # Something valid came back: an answer that is always invalid (every document failed) fails here.
    assert any(not doc._.failures for doc in docs)
    assert any(doc.ents for doc in docs), "the embedded model finds at least one entity in these texts"
    usage = collect_usage(nlp)
    assert usage["ner"]["docs"] == 2 and usage["ner"]["requests"] >= 2 and usage["ner"]["completion_tokens"] > 0
    assert usage["ner"]["prompt_tokens"] > 0 and usage["ner"]["latency_p50_ms"] > 0 and usage["ner"]["cost"] == 0.0
    from distil.pipeline.parts import model_files, model_size_bytes

    gguf = {f.suffix for files in model_files(nlp).values() for f in files}
    assert gguf == {".gguf"}, "each LLM component reports the GGUF file it runs"
    assert model_size_bytes(nlp) > 100e6, "the three components share one GGUF file, counted once"


def test_relations_on_given_entities_leave_them_alone(nlp: Language) -> None:
    rel = cast(Any, nlp.get_pipe("rel"))  # spacy-llm's LLMWrapper: its task and model
    record = {"text": "Sundar Pichai is the CEO of Google in Mountain View.",
              "entities": [{"start": 0, "end": 13, "label": "person", "text": "Sundar Pichai"},
                           {"start": 28, "end": 34, "label": "corporation", "text": "Google"},
                           {"start": 38, "end": 51, "label": "location", "text": "Mountain View"}]}
    doc = from_record(record, nlp)
    doc = rel(doc)
    assert doc.text == record["text"]
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(0, 13, "person"), (28, 34, "corporation"),
                                                                        (38, 51, "location")]
    for relation in doc._.relations:
        assert relation.label in rel.task.schema.allowed_labels(relation.head.label_, relation.tail.label_)
    assert rel._model.usage.requests >= 1


def test_lazy_grammar_decodes_like_the_full_grammar() -> None:
    from distil.components.llm.models import make_llamacpp_model
    from distil.components.llm.tasks import make_ner_task
    from distil.schemas import make_ner_schema

    task = make_ner_task(make_ner_schema(["person", "location"]))
    nlp = spacy.blank("en")
    requests = [r for doc in ("Tim Cook met Angela Merkel in Berlin.", "nothing here lol")
                for r in next(iter(task.generate_prompts([nlp.make_doc(doc)])))[0]]
    answers = {}
    for lazy in (True, False):
        model = make_llamacpp_model(n_ctx=512, repeat_penalty=1.0, lazy_grammar=lazy)
        answers[lazy] = [model.send(request).text for request in requests]
    assert answers[True] == answers[False]
    for text in answers[True]:
        assert isinstance(json.loads(text), dict)


def test_llama_cpp_notices_stay_off_stderr() -> None:
    """llama.cpp's own notices (KV cache, buffers) go to the distil.llamacpp logger, not the terminal."""
    result = subprocess.run(
        [*distil_cli(), "run", str(REPO / "configs" / "ner_llm.cfg"), "Tim Cook visited Berlin.", "--llm.cache", "false"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "kv_cache" not in result.stderr and "llama_" not in result.stderr, result.stderr
    assert "[ner] requests=1" in result.stderr, "the run report still prints"

"""Label Studio's JSON import/export format, both directions.

Export: a JSON list of tasks ``{"data": {"text", "key", "distil_cats"}, "predictions": [{"model_version",
"score", "result": [...]}]}`` where the result holds ``labels`` regions (entities), ``relation`` items
and a ``choices`` item (categories), so a person corrects the model's output in Label Studio. Import:
Label Studio's JSON export (the same tasks with ``annotations``), the latest non-cancelled annotation
of each task becoming the Doc. Scores ride along (``score`` on regions and relations, ``distil_cats`` in
``data``) and are kept when the person did not change the item, so an untouched round trip is lossless.
"""

from __future__ import annotations

from typing import Any, Optional
from xml.sax.saxutils import quoteattr

from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import (
    EntityPrediction,
    RelationPrediction,
    entity_score,
    write_cats,
    write_entities,
    write_relations,
)

FROM_ENTS = "label"
FROM_CATS = "category"
TO_NAME = "text"


def to_labelstudio(doc: Doc, key: str, *, multi_label: bool = False, score: Optional[float] = None) -> dict[str, Any]:
    """A Label Studio task whose prediction is the Doc's entities, relations and categories."""
    result: list[dict[str, Any]] = []
    for i, ent in enumerate(doc.ents):
        region: dict[str, Any] = {
            "id": f"e{i}",
            "from_name": FROM_ENTS,
            "to_name": TO_NAME,
            "type": "labels",
            "value": {"start": ent.start_char, "end": ent.end_char, "text": ent.text, "labels": [ent.label_]},
        }
        ent_score = entity_score(ent)
        if ent_score is not None:
            region["score"] = ent_score
        result.append(region)
    for rel in doc._.relations:
        item: dict[str, Any] = {
            "from_id": f"e{rel.head_index}",
            "to_id": f"e{rel.tail_index}",
            "type": "relation",
            "direction": "right",
            "labels": [rel.label],
        }
        if rel.score is not None:
            item["score"] = rel.score
        result.append(item)
    data: dict[str, Any] = {"text": doc.text, "key": key}
    if doc.cats:
        chosen = chosen_categories(doc.cats, multi_label)
        result.append(
            {"id": "cats", "from_name": FROM_CATS, "to_name": TO_NAME, "type": "choices", "value": {"choices": chosen}}
        )
        data["distil_cats"] = dict(doc.cats)
    prediction: dict[str, Any] = {"model_version": "distil", "result": result}
    if score is not None:
        prediction["score"] = score
    return {"data": data, "predictions": [prediction]}


def chosen_categories(cats: dict[str, float], multi_label: bool) -> list[str]:
    """The categories a document was given: the top one (exclusive) or every one at 0.5 or more."""
    if not cats:
        return []
    if multi_label:
        return [label for label, value in cats.items() if value >= 0.5]
    best = max(cats, key=lambda label: cats[label])
    return [best] if cats[best] > 0 else []


def latest_annotation(task: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The most recent annotation of an exported task that was not cancelled (skipped), if any."""
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return None
    return max(annotations, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))


def labelstudio_to_doc(
    task: dict[str, Any], result: list[dict[str, Any]], nlp: Language, *, multi_label: bool = False
) -> Doc:
    """The Doc a person's annotation result describes; raises ``ValueError`` naming what is wrong."""
    data = task.get("data") or {}
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("task has no 'data.text'")
    doc = nlp.make_doc(text)
    regions = [r for r in result if r.get("type") == "labels"]
    ids: dict[str, int] = {}
    predictions = []
    for region in regions:
        value = region.get("value") or {}
        labels = value.get("labels") or []
        if not labels:
            raise ValueError(f"region {region.get('id')} has no label")
        start, end = int(value["start"]), int(value["end"])
        if text[start:end].strip() == "":
            raise ValueError(f"region {region.get('id')} ({start}-{end}) is outside the text or empty")
        predictions.append(EntityPrediction(start, end, str(labels[0]), _number(region.get("score"))))
    write_entities(doc, predictions, overlap="longest")
    if len(doc.ents) != len(predictions):
        raise ValueError("entity regions overlap")
    order = sorted(range(len(regions)), key=lambda i: predictions[i].start_char)
    for ent_index, region_index in enumerate(order):
        ids[str(regions[region_index].get("id"))] = ent_index
    rels = []
    for item in result:
        if item.get("type") != "relation":
            continue
        head, tail = ids.get(str(item.get("from_id"))), ids.get(str(item.get("to_id")))
        if head is None or tail is None:
            raise ValueError(f"relation {item.get('labels')} links a region that does not exist")
        if item.get("direction") == "left":
            head, tail = tail, head
        for label in item.get("labels") or []:
            rels.append(RelationPrediction(head, tail, str(label), _number(item.get("score"))))
    write_relations(doc, rels)
    choices = [c for r in result if r.get("type") == "choices" for c in (r.get("value") or {}).get("choices", [])]
    original = data.get("distil_cats")
    if isinstance(original, dict):
        if set(chosen_categories(original, multi_label)) == set(choices):
            write_cats(doc, {str(k): float(v) for k, v in original.items()})
        else:
            write_cats(doc, {label: 1.0 if label in choices else 0.0 for label in dict.fromkeys([*original, *choices])})
    elif choices:
        write_cats(doc, dict.fromkeys(choices, 1.0))
    return doc


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def labeling_config(ent_labels: list[str], rel_labels: list[str], cat_labels: list[str], multi_label: bool) -> str:
    """The Label Studio labeling config (XML) that matches the exported tasks."""
    parts = ["<View>"]
    if ent_labels:
        parts.append(f'  <Labels name="{FROM_ENTS}" toName="{TO_NAME}">')
        parts.extend(f"    <Label value={quoteattr(label)}/>" for label in ent_labels)
        parts.append("  </Labels>")
    if rel_labels:
        parts.append("  <Relations>")
        parts.extend(f"    <Relation value={quoteattr(label)}/>" for label in rel_labels)
        parts.append("  </Relations>")
    parts.append(f'  <Text name="{TO_NAME}" value="$text"/>')
    if cat_labels:
        choice = "multiple" if multi_label else "single"
        parts.append(f'  <Choices name="{FROM_CATS}" toName="{TO_NAME}" choice="{choice}">')
        parts.extend(f"    <Choice value={quoteattr(label)}/>" for label in cat_labels)
        parts.append("  </Choices>")
    parts.append("</View>")
    return "\n".join(parts) + "\n"

"""``distil review serve``: the review page in a real headless Chromium, and its API, store and database.

The browser test runs the real thing: ``distil review serve`` in a subprocess
on a free loopback port, a real SQLite file in a real annotation store, and
Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``) driven
by Playwright for Python. Nothing is downloaded: Playwright is pointed at that
browser, and Chromium runs with its background networking off.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from spacy.language import Language

from distil.corpus import read_annotation_records, read_training_set
from distil.pipeline.annotate import text_key
from distil.pipeline.cli import run_cli
from distil.pipeline.review import ReviewSchema, load_review_schema
from distil.pipeline.store import AnnotationStore, StoreError
from distil.records import DocRecord

from .backends import SCHEMA_BLOCKS
from .conftest import REPO, distil_cli

fastapi = pytest.importorskip("fastapi", reason="distil review serve needs the serve extra")

from fastapi.testclient import TestClient  # noqa: E402

from distil.review_app import ReviewSession, create_app  # noqa: E402
from distil.review_app.edits import EditError, SetCategory, apply_edit  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = os.environ.get("DISTIL_REVIEW_SCREENSHOT")  # where to keep the page's screenshot (docs/img/...)
XSS = "<script>window.pwned=1</script><b>bold</b>"


def _ent(text: str, mention: str, label: str, score: float) -> dict[str, Any]:
    start = text.index(mention)
    return {"start": start, "end": start + len(mention), "label": label, "text": mention, "score": score}


def _cats(**scores: float) -> dict[str, float]:
    return {"lost_or_stolen_card": 0.0, "exchange_rate": 0.0, "top_up": 0.0, **scores}


T1 = "Tim Cook runs Apple in Cupertino."
T2 = "Sundar Pichai flew to Berlin for Google yesterday."
T3 = "I lost my card in Paris, can I still change money?"
T4 = f"Ana wrote {XSS} from Lisbon."
T5 = "How do I top up my account?"
T6 = "What is the exchange rate to Mexico?"
# Confidences 0.1, 0.2, 0.4, 0.5, 0.7, 0.95 (the lowest entity or top category score): the uncertainty order
# is the order of this list.
RECORDS: list[dict[str, Any]] = [
    {"text": T1, "entities": [_ent(T1, "Tim Cook", "person", 0.9), _ent(T1, "Apple", "corporation", 0.1),
                              _ent(T1, "Cupertino", "location", 0.8)],
     "relations": [{"head": 0, "tail": 1, "label": "works_for", "score": 0.7}],
     "cats": _cats(top_up=0.6, exchange_rate=0.3, lost_or_stolen_card=0.1)},
    {"text": T2, "entities": [_ent(T2, "Sundar Pichai", "person", 0.9), _ent(T2, "Berlin", "corporation", 0.2)],
     "cats": _cats(exchange_rate=0.9, top_up=0.1)},
    {"text": T3, "entities": [_ent(T3, "Paris", "location", 0.95)],
     "cats": _cats(exchange_rate=0.4, lost_or_stolen_card=0.35, top_up=0.25)},
    {"text": T4, "entities": [_ent(T4, "Lisbon", "location", 0.5)], "cats": _cats(top_up=0.9, exchange_rate=0.1)},
    {"text": T5, "cats": _cats(top_up=0.7, exchange_rate=0.3)},
    {"text": T6, "entities": [_ent(T6, "Mexico", "location", 0.95)], "cats": _cats(exchange_rate=0.95, top_up=0.05)},
]


def write_config(path: Path) -> Path:
    """A pipeline config whose [schemas] block has entities, relations and exclusive categories."""
    blocks = "".join(SCHEMA_BLOCKS[task] for task in ("ner", "rel", "textcat"))
    path.write_text(f'[nlp]\nlang = "en"\npipeline = []\n\n[schemas]\n{blocks}\n[components]\n', encoding="utf-8")
    return path


def write_store(directory: Path) -> Path:
    """An annotation store holding :data:`RECORDS`, written the way ``distil annotate`` writes."""
    records = [DocRecord.model_validate({**r, "meta": {"key": text_key(r["text"]), "source": "tweets.txt", "line": i}})
               for i, r in enumerate(RECORDS, start=1)]
    with AnnotationStore.open(directory, command="test") as store:
        store.append(records)
    return directory


@pytest.fixture(name="review_dir")
def review_dir_fixture(tmp_path: Path) -> tuple[Path, Path]:
    return write_store(tmp_path / "annotations"), write_config(tmp_path / "schema.cfg")


@pytest.fixture(name="client")
def client_fixture(review_dir: tuple[Path, Path], nlp: Language) -> Iterator[TestClient]:
    directory, config = review_dir
    session = ReviewSession.open(directory, load_review_schema(config), nlp, order="uncertainty")
    try:
        yield TestClient(create_app(session, reviewer="ana"), base_url="http://127.0.0.1")
    finally:
        session.close()


# -- the API, the store and the database, in process -------------------------------------------------------------


def test_edits_are_snapped_and_checked(client: TestClient) -> None:
    doc = client.get("/api/document").json()
    assert (doc["position"], doc["total"], doc["record"]["text"]) == (1, 6, T1)
    record = doc["record"]
    # A selection that cuts words and holds the space around them becomes whole tokens.
    start = T1.index("Cupertino")
    answer = client.post("/api/edit", json={"key": doc["key"], "record": {**record, "entities": [], "relations": []},
                                            "op": {"op": "add_entity", "start": start - 1, "end": start + 4,
                                                   "label": "location"}})
    assert answer.status_code == 200, answer.text
    assert [(e["text"], e["label"]) for e in answer.json()["record"]["entities"]] == [("Cupertino", "location")]
    overlap = client.post("/api/edit", json={"key": doc["key"], "record": record,
                                             "op": {"op": "add_entity", "start": 0, "end": 3, "label": "person"}})
    assert overlap.status_code == 422 and "overlaps the entity 'Tim Cook'" in overlap.json()["detail"]
    removed = client.post("/api/edit", json={"key": doc["key"], "record": record,
                                             "op": {"op": "remove_entity", "index": 0}}).json()["record"]
    assert [e["text"] for e in removed["entities"]] == ["Apple", "Cupertino"] and removed["relations"] == []
    # A decision with an entity off token boundaries is refused, naming the tokens there.
    cut = {**record, "entities": [{"start": 0, "end": 6, "label": "person", "text": "Tim Co"}], "relations": []}
    refused = client.post("/api/decisions", json={"key": doc["key"], "decision": "correct", "record": cut})
    assert refused.status_code == 422
    assert "'Tim Co' (person) at 0-6 is not on token boundaries" in refused.json()["detail"]
    assert "'Cook' 4-8" in refused.json()["detail"]
    assert client.get("/api/decisions").json() == []


def test_multi_label_categories_toggle(nlp: Language) -> None:
    schema = ReviewSchema("multi.cfg", entities=(), categories=("billing", "urgent"), exclusive=False)
    record = DocRecord(text="Refund me now!", cats={"billing": 0.8, "urgent": 0.3})
    toggled = apply_edit(record, SetCategory(op="set_category", label="urgent"), nlp, schema, schema.categories)
    assert toggled.cats == {"billing": 0.8, "urgent": 1.0}
    off = apply_edit(toggled, SetCategory(op="set_category", label="billing"), nlp, schema, schema.categories)
    assert off.cats == {"billing": 0.0, "urgent": 1.0}
    with pytest.raises(EditError, match=r"category label 'spam' is not in the schema of multi\.cfg"):
        apply_edit(record, SetCategory(op="set_category", label="spam"), nlp, schema, schema.categories)


def test_cli_refuses_what_it_cannot_serve(review_dir: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    directory, config = review_dir
    base = ["review", "serve", str(directory), "--config", str(config), "--port", str(_free_port())]
    with AnnotationStore.open(directory, command="distil annotate"):
        assert run_cli(base) == 1
    assert "is being written by another run" in capsys.readouterr().err
    assert run_cli([*base, "--host", "0.0.0.0"]) == 1
    assert "give --token-env NAME" in capsys.readouterr().err
    assert run_cli([*base, "--token-env", "DISTIL_TEST_UNSET_TOKEN"]) == 1
    assert "DISTIL_TEST_UNSET_TOKEN is not set" in capsys.readouterr().err
    assert run_cli(["review", "serve", str(tmp_path / "nowhere"), "--config", str(config)]) == 1
    assert "no annotations at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists(), "a mistyped directory is not created"


def test_page_shows_decisions_and_the_end(client: TestClient) -> None:
    keys = [text_key(r["text"]) for r in RECORDS]
    for key in keys[:-1]:
        client.post("/api/decisions", json={"key": key, "decision": "accept"})
    page = client.get("/")
    assert "Document 6 of 6" in page.text and "5 / 6 reviewed" in page.text
    assert "you accepted this" in client.get("/?at=1").text
    assert client.post("/api/decisions", json={"key": keys[-1], "decision": "reject"}).json()["next"] is None
    done = client.get("/")
    assert done.status_code == 200 and "You have decided all 6 documents" in done.text
    assert "default-src 'none'" in done.headers["content-security-policy"]
    assert client.get("/api/document").status_code == 404
    assert client.get("/api/document?at=7").status_code == 404
    assert client.post("/api/edit", json={"key": "nope", "record": {"text": "x"},
                                          "op": {"op": "remove_entity", "index": 0}}).status_code == 404


def test_token_guards_page_and_api(review_dir: tuple[Path, Path], nlp: Language) -> None:
    directory, config = review_dir
    session = ReviewSession.open(directory, load_review_schema(config), nlp)
    try:
        client = TestClient(create_app(session, reviewer="ana", token="s3cret"), base_url="http://127.0.0.1")
        page = client.get("/")
        assert page.status_code == 401 and 'id="login"' in page.text and "s3cret" not in page.text
        assert client.get("/api/document").status_code == 401
        assert client.get("/api/document", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.post("/api/login", json={"token": "wrong"}).status_code == 401
        assert client.post("/api/login", json={"token": "s3cret"}).status_code == 204
        assert "s3cret" not in (client.cookies.get("distil_review_session") or "")
        assert client.get("/api/document").status_code == 200  # the cookie now
        # A form post (what a cross-site page can send without a preflight) is refused.
        form = client.post("/api/decisions", content="key=x&decision=reject",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        # DNS rebinding: a request addressed to another host name is refused on loopback.
        assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    finally:
        session.close()


def test_server_holds_the_store_lock(review_dir: tuple[Path, Path], nlp: Language) -> None:
    directory, config = review_dir
    session = ReviewSession.open(directory, load_review_schema(config), nlp)
    try:
        with pytest.raises(StoreError, match="distil review serve"):
            AnnotationStore.open(directory, command="distil annotate")
    finally:
        session.close()
    AnnotationStore.open(directory).close()  # released on close


def test_reviewers_agreement_and_rejected_left_out_of_training(client: TestClient, review_dir: tuple[Path, Path],
                                                               nlp: Language) -> None:
    directory, _ = review_dir
    keys = [text_key(r["text"]) for r in RECORDS]
    assert client.post("/api/decisions", json={"key": keys[0], "decision": "accept"}).json()["next"] == 2
    assert client.post("/api/decisions", json={"key": keys[4], "decision": "reject"}).status_code == 200
    # Bob, on the same server, disagrees on the first document's Apple.
    doc = client.get("/api/document?at=1", headers={"X-Distil-Reviewer": "bob"}).json()
    assert doc["decision"] is None, "each reviewer sees the teacher's answer, not another reviewer's"
    fixed = {**doc["record"], "entities": [dict(e, label="location") if e["text"] == "Apple" else e
                                           for e in doc["record"]["entities"]]}
    saved = client.post("/api/decisions", json={"key": keys[0], "decision": "accept", "record": fixed,
                                                "reviewer": "bob"}).json()["saved"]
    assert saved["decision"] == "correct" and saved["reviewer"] == "bob"
    agreement = client.get("/api/agreement").json()
    assert agreement["reviewers"]["reviewers"] == ["ana", "bob"]
    assert agreement["reviewers"]["shared_documents"] == 1 and agreement["reviewers"]["same_decision"] == 1.0
    assert agreement["reviewers"]["entities"]["f"] == pytest.approx(2 / 3)
    assert agreement["teacher"]["ana"]["entities"]["f"] == 1.0 and agreement["teacher"]["ana"]["rejected"] == 1
    # The store holds the latest decision of each document; training leaves the rejected one out.
    by_key = {r.meta["key"]: r for r in read_annotation_records(directory)}
    assert by_key[keys[0]].meta["reviewer"] == "bob" and by_key[keys[0]].meta["review"] == "corrected"
    assert by_key[keys[4]].meta["review"] == "rejected"
    training = read_training_set(directory, nlp, reviewed_weight=3)
    assert (training.rejected, training.reviewed, training.failed) == (1, 1, 0)
    assert len(training.docs) == 5 + 2 and T5 not in {d.text for d in training.docs}
    assert client.get("/api/decisions?reviewer=ana").json()[1]["decision"] == "reject"


# -- the page in a real browser ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(directory: Path, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [*distil_cli(), "review", "serve", str(directory), "--config", str(config), "--port", str(port),
               "--reviewer", "tester", "--log-level", "warning"]
    with log.open("ab") as sink:
        server = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"distil review serve exited {server.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError(f"distil review serve did not answer within 60 s: {log.read_text()}")


def _kill(server: Optional[subprocess.Popen[bytes]]) -> None:
    if server is not None and server.poll() is None:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)


# Chromium as root in a container, with no traffic of its own (updates, sync, field trials) to a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio"]


@pytest.mark.slow
def test_review_in_the_browser(review_dir: tuple[Path, Path], tmp_path: Path, nlp: Language) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (dev extra)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    directory, config = review_dir
    keys = [text_key(r["text"]) for r in RECORDS]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server: Optional[subprocess.Popen[bytes]] = _start_server(directory, config, port, log)
    try:
        with playwright_api.sync_playwright() as playwright:
            # launch() gives the browser a fresh temporary profile (its --user-data-dir) every time.
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1120, "height": 820})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.set_default_timeout(15_000)

            # 1. The least confident document first; accept it with the keyboard.
            page.goto(base + "/")
            page.wait_for_selector("body.ready")
            assert page.inner_text("#position") == "Document 1 of 6"
            assert page.inner_text("#text").startswith("Tim Cook")
            assert "Tim Cook → works_for → Apple" in " ".join(page.inner_text("#relations").split())
            keyboard = page.inner_text(".keys")
            assert all(word in keyboard for word in ("accept", "reject", "undo", "next", "previous", "Ctrl"))
            page.keyboard.press("a")
            page.wait_for_url("**/?at=2*")
            page.wait_for_selector("body.ready")

            # 2. Fix a span: remove "Berlin" (wrongly a corporation), add "Google" by selecting it and pressing 3.
            assert page.inner_text("#position") == "Document 2 of 6"
            page.locator("mark.ent", has_text="Berlin").locator(".ent-remove").click()
            page.locator("mark.ent", has_text="Berlin").wait_for(state="detached")
            page.keyboard.press("u")  # undo brings it back; remove it again
            page.locator("mark.ent", has_text="Berlin").wait_for()
            page.locator("mark.ent", has_text="Berlin").locator(".ent-remove").click()
            page.locator("mark.ent", has_text="Berlin").wait_for(state="detached")
            assert page.locator("mark.ent").count() == 1
            google = page.locator('#text span.t', has_text="Google").bounding_box()
            assert google is not None
            middle = google["y"] + google["height"] / 2
            page.mouse.move(google["x"] + 1, middle)
            page.mouse.down()
            page.mouse.move(google["x"] + google["width"] - 1, middle, steps=5)
            page.mouse.up()
            assert page.evaluate("window.getSelection().toString()") == "Google"
            page.keyboard.press("3")
            page.locator("mark.ent", has_text="Google").wait_for()
            assert page.locator("mark.ent", has_text="Google").locator(".badge").text_content() == "corporation"
            # A relation: click the head, click the tail, press the type's key (1: works_for).
            page.locator("mark.ent", has_text="Sundar").click()
            page.locator("mark.ent", has_text="Google").click()
            page.locator("#relation-chooser").wait_for()
            page.keyboard.press("1")
            page.locator("#relations li").wait_for()
            assert " ".join(page.inner_text("#relations").split()).startswith("Sundar Pichai → works_for → Google")
            if SCREENSHOT:
                page.screenshot(path=SCREENSHOT, full_page=True)
            page.keyboard.press("a")
            page.wait_for_url("**/?at=3*")
            page.wait_for_selector("body.ready")

            # 3. Change the category: the teacher said exchange_rate, the reviewer picks lost_or_stolen_card.
            assert page.inner_text("#position") == "Document 3 of 6"
            assert page.locator(".cat.on").inner_text().startswith("exchange_rate")
            page.click('.cat[data-cat="lost_or_stolen_card"]')
            page.wait_for_selector('.cat.on[data-cat="lost_or_stolen_card"]')
            page.keyboard.press("a")
            page.wait_for_url("**/?at=4*")
            page.wait_for_selector("body.ready")
            assert page.inner_text("#progress-text") == "3 / 6 reviewed"

            # 4. Kill the server (no shutdown at all) and start it again: the page resumes at document 4.
            _kill(server)
            server = None
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            server = _start_server(directory, config, port, log)
            page.goto(base + "/")
            page.wait_for_selector("body.ready")
            assert page.inner_text("#position") == "Document 4 of 6"
            assert page.inner_text("#progress-text") == "3 / 6 reviewed"

            # 6. XSS: document 4 holds a script and markup; both show as text, neither runs nor renders.
            assert XSS in page.inner_text("#text")
            assert page.evaluate("typeof window.pwned") == "undefined"
            assert page.locator("#document b, #document script").count() == 0
            assert page.locator("mark.ent", has_text="Lisbon").count() == 1
            assert errors == [], errors
            browser.close()
    finally:
        _kill(server)

    # 5. The database and the store hold exactly those three decisions.
    with sqlite3.connect(directory / "review.sqlite") as db:
        rows = db.execute("SELECT reviewer, key, decision, record FROM decisions ORDER BY id").fetchall()
    assert [(who, key, decision) for who, key, decision, _ in rows] == [
        ("tester", keys[0], "accept"), ("tester", keys[1], "correct"), ("tester", keys[2], "correct")]
    saved = [DocRecord.model_validate_json(record) for *_, record in rows]
    assert [(e.text, e.label) for e in saved[1].entities] == [("Sundar Pichai", "person"), ("Google", "corporation")]
    assert [(r.head, r.tail, r.label) for r in saved[1].relations] == [(0, 1, "works_for")]
    assert saved[2].cats == _cats(lost_or_stolen_card=1.0)
    records = {r.meta["key"]: r for r in read_annotation_records(directory)}
    assert len(records) == 6
    for key, record, review in zip(keys[:3], saved, ("accepted", "corrected", "corrected"), strict=True):
        stored = records[key]
        assert (stored.meta["reviewed"], stored.meta["review"], stored.meta["reviewer"]) == (True, review, "tester")
        assert (stored.entities, stored.relations, stored.cats) == (record.entities, record.relations, record.cats)
        assert stored.meta["source"] == "tweets.txt"
    assert records[keys[0]].relations[0].label == "works_for" and records[keys[0]].cats == RECORDS[0]["cats"]
    assert all("reviewed" not in records[key].meta for key in keys[3:])
    training = read_training_set(directory, nlp, reviewed_weight=3)
    assert (training.reviewed, training.rejected, len(training.docs)) == (3, 0, 6 + 3 * 2)

    # 7. An API write with a label outside the schema: a 422 that names the label and the known ones.
    server = _start_server(directory, config, port, log)
    try:
        refused = httpx.post(f"{base}/api/decisions", json={
            "key": keys[3], "decision": "correct",
            "record": {"text": T4, "entities": [{**_ent(T4, "Lisbon", "city", 0.5)}]},
        })
        assert refused.status_code == 422
        assert refused.json()["detail"] == (
            f"entity label 'city' is not in the schema of {config} (known: person, location, corporation)")
    finally:
        _kill(server)
    assert "Tim Cook" not in log.read_text(), "the server logs no document text"

"""The demo app: corpus, deterministic answers, the production-only Smart Sync bug, recorded spans."""

from __future__ import annotations

import inspect
import itertools
import random
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from flywheel_demo.app import (
    CHAT_USAGE_KEY,
    FALLBACK_ANSWER,
    MODEL_NAME,
    RateLimitError,
    RecordingTracer,
    SupportAssistant,
    count_tokens,
    make_app,
    predict_fixed,
    predict_production,
    terms,
)
from flywheel_demo.corpus import DOCS, FEATURES, INCIDENT_FEATURE, doc_by_id, documents
from flywheel_demo.queries import QUERY_MIX, SLOTS, TEMPLATES, pii_suffix

PROD = SupportAssistant("production")
FIXED = SupportAssistant("fixed")


def expand(template: str) -> Iterator[str]:
    """Every filling of the template's slots."""
    names = re.findall(r"\{(\w+)\}", template)
    for combo in itertools.product(*(SLOTS[n] for n in names)):
        text = template
        for name, value in zip(names, combo, strict=True):
            text = text.replace("{" + name + "}", value, 1)
        yield text


def queries(feature: str) -> list[str]:
    return [q for t in TEMPLATES[feature] for q in expand(t)]


def test_corpus_shape() -> None:
    assert 25 <= len(DOCS) <= 40
    assert len({d.doc_id for d in DOCS}) == len(DOCS)
    assert {d.feature for d in DOCS} == set(FEATURES)
    archived = [d for d in DOCS if d.archived]
    assert [d.feature for d in archived] == [INCIDENT_FEATURE]
    assert len(documents()) == len(DOCS) - 1
    assert doc_by_id("smart-sync-conflicts").uri.endswith("/smart-sync/smart-sync-conflicts")
    with pytest.raises(KeyError, match="no document 'nope'"):
        doc_by_id("nope")


def test_query_templates_per_feature_and_mix() -> None:
    for feature in FEATURES:
        assert 15 <= len(TEMPLATES[feature]) <= 25, feature
    assert abs(sum(QUERY_MIX.values()) - 1.0) < 1e-9
    assert 0.12 <= QUERY_MIX[INCIDENT_FEATURE] <= 0.18
    # Every Smart Sync question names the feature (the bug keys on it), no other question does.
    for feature, templates in TEMPLATES.items():
        for t in templates:
            mentions = "smart sync" in " ".join(terms(t))
            assert mentions == (feature == INCIDENT_FEATURE), t


def test_answers_are_deterministic() -> None:
    q = "How do I rotate the webhook signing secret?"
    first = SupportAssistant("production").run(q)
    assert first == SupportAssistant("production").run(q) == PROD.run(q)
    assert "signing secret" in first


def test_production_bug_hits_every_smart_sync_question() -> None:
    for q in queries(INCIDENT_FEATURE):
        prod_hits = PROD.retriever.search(q)
        fixed_hits = FIXED.retriever.search(q)
        assert prod_hits[0].doc.archived, q
        assert "not supported" in PROD.run(q) or "no longer supported" in PROD.run(q), q
        assert not any(h.doc.archived for h in fixed_hits), q
        assert fixed_hits[0].doc.feature == INCIDENT_FEATURE, q
        assert "supported" not in FIXED.run(q), q


def test_production_bug_only_on_smart_sync_questions() -> None:
    rng = random.Random(3)
    for feature in TEMPLATES:
        if feature == INCIDENT_FEATURE:
            continue
        for q in queries(feature):
            for text in (q, q + pii_suffix(rng)):
                assert PROD.run(text) == FIXED.run(text), text
                prod = [h.doc.doc_id for h in PROD.retriever.search(text)]
                assert prod == [h.doc.doc_id for h in FIXED.retriever.search(text)], text


def test_bug_is_measurable_lexically() -> None:
    """Wrong answers ignore what was asked: few of the question's key terms appear in them."""

    def recall(q: str, answer: str) -> float:
        key = set(terms(q)) - {"smart", "sync"}
        return len(key & set(terms(answer))) / len(key) if key else 1.0

    qs = queries(INCIDENT_FEATURE)
    prod = sum(recall(q, PROD.run(q)) for q in qs) / len(qs)
    fixed = sum(recall(q, FIXED.run(q)) for q in qs) / len(qs)
    assert prod < 0.25 and fixed > 0.45 and fixed - prod > 0.3


def test_recorded_spans_look_like_a_traced_app() -> None:
    rec = RecordingTracer()
    q = "How do I limit Smart Sync bandwidth?"
    answer = FIXED.run(q, rec, session_id="sess-1", user_id="user-1")
    root, retr, chat = rec.spans
    assert (root.name, root.span_type, root.parent) == ("support_assistant", "CHAIN", None)
    assert root.inputs == {"query": q} and root.outputs == {"answer": answer}
    assert (retr.span_type, retr.parent, chat.span_type, chat.parent) == ("RETRIEVER", 0, "CHAT_MODEL", 0)
    assert retr.inputs["query"] == q
    doc = retr.outputs[0]
    assert set(doc) == {"page_content", "metadata", "id"}
    assert doc["metadata"]["doc_uri"].startswith("https://docs.acme.example/smart-sync/")
    assert doc["page_content"] == doc_by_id(doc["id"]).text
    usage = chat.attributes[CHAT_USAGE_KEY]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens"] == count_tokens(answer) and usage["input_tokens"] > 100
    assert chat.attributes["model"] == MODEL_NAME == chat.inputs["model"]
    assert chat.outputs["choices"][0]["message"]["content"] == answer
    assert rec.tags == {"app_version": "v2", "model": MODEL_NAME}
    assert rec.metadata == {"mlflow.trace.session": "sess-1", "mlflow.trace.user": "user-1"}
    assert PROD.run(q, RecordingTracer()) != answer


def test_retrieval_timeout_fails_the_retriever_span() -> None:
    rec = RecordingTracer()
    with pytest.raises(TimeoutError, match="did not respond"):
        PROD.run("How do I create an API key?", rec, fault="retrieval_timeout")
    assert [s.name for s in rec.spans] == ["support_assistant", "retrieve_docs"]
    assert all(isinstance(s.error, TimeoutError) for s in rec.spans)
    assert "TimeoutError" in rec.spans[1].stacktrace
    assert rec.spans[0].outputs is None


def test_rate_limit_fails_the_chat_span() -> None:
    rec = RecordingTracer()
    with pytest.raises(RateLimitError, match="429"):
        PROD.run("How do I create an API key?", rec, fault="rate_limit")
    root, retr, chat = rec.spans
    assert retr.error is None and isinstance(chat.error, RateLimitError) and root.error is chat.error
    assert CHAT_USAGE_KEY not in chat.attributes  # a refused call reports no usage
    assert chat.attributes["model"] == MODEL_NAME


def test_off_topic_question_gets_the_fallback() -> None:
    rec = RecordingTracer()
    assert PROD.run("Tell me a joke", rec) == FALLBACK_ANSWER
    assert rec.spans[1].outputs == []


def test_versions_and_predict_fns() -> None:
    assert make_app("production").app_version == "v1" and make_app("fixed").app_version == "v2"
    assert make_app("production").include_archived and not make_app("fixed").include_archived
    assert not SupportAssistant("production", include_archived=False).include_archived
    with pytest.raises(ValueError, match=r"unknown app version 'staging'.*'fixed', 'production'"):
        make_app("staging")
    for fn in (predict_production, predict_fixed):
        assert list(inspect.signature(fn).parameters) == ["query"]


def test_demo_modules_do_not_import_mlflow() -> None:
    code = (
        "import sys, flywheel_demo, flywheel_demo.simulate, flywheel_demo.schedule; "
        "bad = [m for m in ('mlflow', 'airflow', 'pandas') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_reviewers_corrected_answer_is_v2s_and_is_not_traced(monkeypatch) -> None:
    from flywheel_demo import app as demo_app

    def no_mlflow(*_args, **_kwargs):
        raise AssertionError("the reviewer's correction must not be traced to MLflow")

    monkeypatch.setattr(demo_app.MlflowTracer, "span", no_mlflow)
    query = "Smart Sync created a conflicted copy of my file, what should I do?"
    recorded = demo_app.RecordingTracer()
    assert demo_app.fixed_answer(query) == demo_app.make_app("fixed").run(query, recorded)
    assert demo_app.fixed_answer(query) != demo_app.make_app("production").run(query, demo_app.RecordingTracer())

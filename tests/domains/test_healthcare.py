from __future__ import annotations

import pytest

from domains.healthcare.plugin import HealthcarePlugin
from tests.domains.conftest import cand, ctx, event

P = HealthcarePlugin()
CFG = P.default_config()


def test_an_item_contraindicated_by_an_allergy_never_appears_whatever_the_score() -> None:
    items = [
        cand(
            "amox",
            99.0,
            kind="medication",
            title="Amoxicillin",
            condition_tags=["copd"],
            ingredients=["amoxicillin", "penicillin"],
            evidence_level="A",
        ),
        cand(
            "tio",
            0.1,
            kind="medication",
            title="Tiotropium",
            condition_tags=["copd"],
            ingredients=["tiotropium"],
        ),
    ]
    result = P.rerank(
        items, ctx(attrs={"age_band": "65-79", "conditions": ["copd"], "allergies": ["Penicillin"]}), CFG
    )
    assert [c.item_id for c in result.candidates] == ["tio"]
    assert (
        result.removed[0].item_id == "amox" and result.removed[0].adjustments[-1].rule == "healthcare.allergy"
    )


def test_contraindications_use_declared_and_diagnosed_conditions() -> None:
    ibu = cand(
        "ibu",
        5.0,
        kind="medication",
        title="Ibuprofen",
        condition_tags=["arthritis"],
        contraindication_tags=["ckd"],
    )
    history = [event("u1", None, "diagnosis", code="N18.3", system="icd10", condition="ckd")]
    result = P.rerank(
        [ibu], ctx(history=history, attrs={"age_band": "65-79", "conditions": ["arthritis"]}), CFG
    )
    assert result.candidates == []
    assert result.removed[0].adjustments[-1].rule == "healthcare.contraindication"
    # The explanation does not repeat the patient's condition.
    assert "ckd" not in result.removed[0].adjustments[-1].detail


def test_every_recommendation_requires_clinician_review_and_evidence_is_boosted() -> None:
    items = [
        cand("a", 1.0, kind="article", title="A", condition_tags=["asthma"], evidence_level="A"),
        cand("b", 1.0, kind="article", title="B", condition_tags=["other"], evidence_level="B"),
        cand("d", 1.0, kind="article", title="D", condition_tags=["other"], evidence_level="D"),
    ]
    result = P.rerank(items, ctx(attrs={"age_band": "18-39", "conditions": ["asthma"]}), CFG)
    # a: +0.3 evidence +0.25 condition match; b: +0.15; d: −0.1
    assert {c.item_id: round(c.score, 6) for c in result.candidates} == {"a": 1.55, "b": 1.15, "d": 0.9}
    assert all(c.flags["requires_clinician_review"] is True for c in result.candidates + result.removed)


def test_profile_conditions_care_history_adherence() -> None:
    history = [
        event("u1", None, "diagnosis", code="E11.9", condition="diabetes"),
        event("u1", None, "visit"),
        event("u1", "met", "prescription"),
        event("u1", "met", "adherence", taken=True),
        event("u1", "met", "adherence", taken=False),
        event("u1", "met", "adherence", taken=True),
    ]
    f = P.profile_features(history, ctx(attrs={"conditions": ["hypertension"]}).user, CFG)
    assert f["conditions"] == ["diabetes", "hypertension"]
    assert f["care_history"]["visits"] == 1 and f["care_history"]["prescriptions"] == 1
    assert f["adherence_rate"] == pytest.approx(0.6667)


def test_conditions_and_allergies_are_sensitive() -> None:
    assert set(P.sensitive_fields("user")) == {"conditions", "allergies"}
    assert P.validate_user({"conditions": ["x"]}) == {"attributes.age_band": ["is required"]}


def test_diagnosis_codes_conditions_and_lab_values_are_sensitive_event_context() -> None:
    assert P.sensitive_event_types() == {
        "diagnosis": ("code", "condition"),
        "lab_result": ("code", "value", "abnormal"),
    }
    assert P.sensitive_context_fields("visit") == () and P.sensitive_context_fields("nope") == ()

"""Healthcare: care items matched to conditions, hard safety filters, clinician review on everything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from domains.base import (
    Adjustment,
    Candidate,
    ConfigParam,
    ConfigValues,
    DomainPlugin,
    EventRecord,
    EventType,
    Field,
    RerankContext,
    RerankResult,
    SampleData,
    UserRecord,
    remove,
)

RULE_CONTRAINDICATION = "healthcare.contraindication"
RULE_ALLERGY = "healthcare.allergy"
RULE_EVIDENCE = "healthcare.evidence"
RULE_CONDITION_MATCH = "healthcare.condition_match"
RULE_REVIEW = "healthcare.clinician_review"

EVIDENCE_LEVELS = ("A", "B", "C", "D")  # A: systematic reviews/RCTs … D: expert opinion


def _tags(values: Any) -> set[str]:
    return {str(v).strip().lower() for v in values or [] if str(v).strip()}


def patient_conditions(user: UserRecord | None, history: Sequence[EventRecord]) -> set[str]:
    """Declared conditions plus those diagnosed in events (context.condition)."""
    conditions = _tags(user.attributes.get("conditions") if user else None)
    conditions |= _tags(e.context.get("condition") for e in history if e.type == "diagnosis")
    return conditions


class HealthcarePlugin(DomainPlugin):
    id = "healthcare"
    rerank_reads_clock = False  # its rules read the history and attributes, never the clock
    label = "Healthcare"
    description = "Care recommendations: never a contraindicated item, always a clinician in the loop."

    item_schema = (
        Field("kind", "choice", required=True, choices=("treatment", "medication", "programme", "article")),
        Field("title", "string", required=True, max_length=300),
        Field("condition_tags", "list", required=True, max_length=30, help="Conditions the item addresses."),
        Field(
            "contraindication_tags",
            "list",
            max_length=50,
            help="Conditions (or states such as pregnancy) for which the item must never be shown.",
        ),
        Field(
            "ingredients",
            "list",
            max_length=50,
            help="Active substances / allergens, matched against allergies.",
        ),
        Field("evidence_level", "choice", choices=EVIDENCE_LEVELS),
        Field("code", "string", max_length=64, help="A drug or procedure code, if any."),
    )
    user_schema = (
        Field("age_band", "choice", required=True, choices=("0-17", "18-39", "40-64", "65-79", "80+")),
        Field("sex", "choice", choices=("female", "male", "other", "unknown")),
        Field("conditions", "list", max_length=100, sensitive=True),
        Field("allergies", "list", max_length=100, sensitive=True),
    )
    event_types = (
        EventType(
            "diagnosis",
            0.0,
            (
                # Diagnosis codes and conditions are health data: encrypted at rest, masked in reads.
                Field("code", "string", required=True, max_length=32, sensitive=True),
                Field("system", "choice", choices=("icd9", "icd10", "snomed", "local")),
                Field(
                    "condition",
                    "string",
                    max_length=100,
                    sensitive=True,
                    help="The condition tag the code maps to.",
                ),
            ),
            requires_item=False,
        ),
        EventType(
            "prescription",
            3.0,
            (Field("dose", "string", max_length=100), Field("days", "int", min=1, max=3650)),
        ),
        EventType(
            "visit",
            1.0,
            (
                Field("department", "string", max_length=100),
                Field("kind", "choice", choices=("outpatient", "inpatient", "emergency", "telehealth")),
            ),
            requires_item=False,
        ),
        EventType(
            "lab_result",
            0.0,
            (
                Field("code", "string", required=True, max_length=32, sensitive=True),
                Field("value", "float", required=True, min=-1_000_000, max=1_000_000, sensitive=True),
                Field("unit", "string", max_length=32),
                Field("abnormal", "bool", sensitive=True),
            ),
            requires_item=False,
        ),
        EventType(
            "adherence", 2.0, (Field("taken", "bool", required=True), Field("ratio", "float", min=0, max=1))
        ),
        EventType("enroll", 3.0, help="Joined a programme."),
        EventType("view", 1.0, help="Read an article or an item page."),
        EventType(
            "outcome",
            0.0,
            (Field("rating", "int", required=True, min=1, max=5),),
            is_label=True,
            help="Patient-reported outcome of a care item (1 bad … 5 good).",
        ),
    )
    config = (
        ConfigParam("evidence_boost_a", "float", 0.3, min=0, max=2, label="Boost for evidence level A"),
        ConfigParam("evidence_boost_b", "float", 0.15, min=0, max=2),
        ConfigParam(
            "evidence_penalty_d", "float", 0.1, min=0, max=2, help="Subtracted for expert-opinion-only items."
        ),
        ConfigParam("condition_match_boost", "float", 0.25, min=0, max=2),
    )

    def rerank(
        self, candidates: list[Candidate], context: RerankContext, config: ConfigValues
    ) -> RerankResult:
        conditions = patient_conditions(context.user, context.history)
        allergies = _tags(context.user.attributes.get("allergies") if context.user else None)
        evidence = {
            "A": config["evidence_boost_a"],
            "B": config["evidence_boost_b"],
            "D": -config["evidence_penalty_d"],
        }
        kept: list[Candidate] = []
        removed: list[Candidate] = []
        for c in candidates:
            c.flags["requires_clinician_review"] = True
            c.adjustments.append(
                Adjustment(rule=RULE_REVIEW, effect="flag", detail="requires clinician review")
            )
            contra = _tags(c.attributes.get("contraindication_tags")) & (conditions | allergies)
            if contra:
                # Details name the rule, not the patient's condition (sensitive).
                removed.append(
                    remove(c, RULE_CONTRAINDICATION, f"contraindicated ({len(contra)} matching tag(s))")
                )
                continue
            if _tags(c.attributes.get("ingredients")) & allergies:
                removed.append(remove(c, RULE_ALLERGY, "contains an allergen of the patient"))
                continue
            level = c.attributes.get("evidence_level")
            if level in evidence:
                c.adjust(RULE_EVIDENCE, evidence[level], f"evidence level {level}")
            if _tags(c.attributes.get("condition_tags")) & conditions:
                c.adjust(
                    RULE_CONDITION_MATCH,
                    config["condition_match_boost"],
                    "addresses one of the patient's conditions",
                )
            kept.append(c)
        kept.sort(key=lambda c: -c.score)
        return RerankResult(candidates=kept, removed=removed)

    sensitive_profile_features = ("conditions", "diagnosis_codes")

    def profile_features(
        self,
        events: Sequence[EventRecord],
        user: UserRecord,
        config: ConfigValues,
        item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        counts = Counter(e.type for e in events)
        adherence = [e for e in events if e.type == "adherence"]
        ratings = [int(e.context["rating"]) for e in events if e.type == "outcome" and "rating" in e.context]
        visits = [e.timestamp for e in events if e.type == "visit"]
        last = events[-1].timestamp if events else None
        return {
            "conditions": sorted(patient_conditions(user, events)),
            "diagnosis_codes": sorted({str(e.context.get("code")) for e in events if e.type == "diagnosis"})[
                :50
            ],
            "care_history": {
                "visits": counts["visit"],
                "prescriptions": counts["prescription"],
                "programmes": counts["enroll"],
                "lab_results": counts["lab_result"],
                "days_since_last_visit": round((last - visits[-1]).total_seconds() / 86400, 1)
                if visits and last
                else None,
            },
            "adherence_rate": round(sum(bool(e.context.get("taken")) for e in adherence) / len(adherence), 4)
            if adherence
            else None,
            "mean_outcome_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "abnormal_labs": sum(bool(e.context.get("abnormal")) for e in events if e.type == "lab_result"),
        }

    def sample_data(self, seed: int, n_users: int) -> SampleData:
        from domains.healthcare.sample import sample_data

        return sample_data(seed, n_users)

    @classmethod
    def dataset_adapters(cls) -> dict[str, Callable[..., SampleData]]:
        from domains.healthcare.adapters import mimic3_demo

        return {"mimic3-demo": mimic3_demo}

"""Synthetic patients with chronic conditions: diagnoses, prescriptions, adherence, labs, reading.

Conditions are the clusters. Medications carry real-world style
contraindications and ingredients (an NSAID is contraindicated in kidney
disease and heart failure; amoxicillin contains penicillin), and the synthetic
clinicians never prescribe a contraindicated drug, so the sample data is safe
data. Patients read articles and join programmes about their conditions
(Zipf popularity, reading chains), adhere to treatment at their own rate, and
rate outcomes.
"""

from __future__ import annotations

from datetime import timedelta

from domains.base import SampleData
from domains.synth import ANCHOR, EventSink, Synth

# condition → (icd10 code, lab code, lab mean, lab sd, unit)
CONDITIONS = {
    "hypertension": ("I10", "bp_systolic", 148.0, 12.0, "mmHg"),
    "diabetes": ("E11.9", "hba1c", 7.6, 1.0, "%"),
    "asthma": ("J45.909", "fev1_pct", 78.0, 9.0, "%"),
    "depression": ("F32.9", "phq9", 13.0, 4.0, "score"),
    "ckd": ("N18.3", "egfr", 48.0, 8.0, "mL/min"),
    "heart_failure": ("I50.9", "bnp", 420.0, 150.0, "pg/mL"),
    "arthritis": ("M19.90", "crp", 9.0, 4.0, "mg/L"),
    "copd": ("J44.9", "fev1_pct", 58.0, 10.0, "%"),
}
# (title, condition, ingredients, contraindications, evidence)
MEDICATIONS = [
    ("Lisinopril 10 mg", "hypertension", ["lisinopril", "ace_inhibitor"], ["pregnancy", "angioedema"], "A"),
    ("Amlodipine 5 mg", "hypertension", ["amlodipine"], ["heart_failure"], "A"),
    ("Metformin 500 mg", "diabetes", ["metformin"], ["ckd"], "A"),
    ("Empagliflozin 10 mg", "diabetes", ["empagliflozin"], [], "A"),
    ("Salbutamol inhaler", "asthma", ["salbutamol"], [], "A"),
    ("Budesonide inhaler", "asthma", ["budesonide"], [], "B"),
    ("Sertraline 50 mg", "depression", ["sertraline", "ssri"], [], "A"),
    ("St John's wort", "depression", ["hypericum"], ["pregnancy"], "C"),
    ("Furosemide 40 mg", "heart_failure", ["furosemide", "sulfonamide"], [], "B"),
    ("Bisoprolol 5 mg", "heart_failure", ["bisoprolol"], ["asthma"], "A"),
    ("Ibuprofen 400 mg", "arthritis", ["ibuprofen", "nsaid"], ["ckd", "heart_failure", "asthma"], "B"),
    ("Paracetamol 1 g", "arthritis", ["paracetamol"], [], "B"),
    ("Tiotropium inhaler", "copd", ["tiotropium"], [], "A"),
    ("Amoxicillin 500 mg", "copd", ["amoxicillin", "penicillin"], [], "B"),
]
ALLERGIES = ("penicillin", "sulfonamide", "nsaid", "ssri", "latex")
AGE_BANDS = ("18-39", "40-64", "65-79", "80+")
DAYS = 90


def sample_data(seed: int, n_users: int) -> SampleData:
    s = Synth(seed, "healthcare")
    conds = list(CONDITIONS)
    n_items = max(len(MEDICATIONS) + 8 * len(conds), n_users // 2)
    catalog = s.catalog(n_items, len(conds), zipf_a=1.0)
    meds_by = {c: [m for m in MEDICATIONS if m[1] == c] for c in conds}
    items: list[dict] = []
    for i in range(n_items):
        cond = conds[int(catalog.cluster_of[i])]
        rank = int(list(catalog.members[int(catalog.cluster_of[i])]).index(i))
        if rank < len(meds_by[cond]):
            title, _, ingredients, contra, level = meds_by[cond][rank]
            attrs = {
                "kind": "medication",
                "title": title,
                "condition_tags": [cond],
                "ingredients": ingredients,
                "contraindication_tags": contra,
                "evidence_level": level,
            }
        else:
            kind = s.choice(("article", "programme", "treatment"), p=[0.65, 0.2, 0.15])
            attrs = {
                "kind": kind,
                "title": f"{cond.replace('_', ' ').title()} {kind} {i}",
                "condition_tags": [cond],
                "evidence_level": s.choice(("A", "B", "C", "D"), p=[0.2, 0.35, 0.3, 0.15]),
            }
            if kind == "programme" and s.chance(0.3):
                attrs["contraindication_tags"] = ["pregnancy"]
        items.append({"item_id": f"care{i:04d}", "attributes": attrs})

    users, sink = [], EventSink(f"hc{seed}")
    start = ANCHOR - timedelta(days=DAYS)
    for u in range(n_users):
        uid = f"pt{u:05d}"
        plan = s.user_plan(len(conds), activity=5.0, drift_share=0.1)
        order = list(reversed(plan.prefs_start.argsort()))
        mine = [conds[int(k)] for k in order[: s.integers(1, 3)]]
        allergies = [a for a in ALLERGIES if s.chance(0.08)]
        extra = ["pregnancy"] if s.chance(0.03) else []
        users.append(
            {
                "user_id": uid,
                "attributes": {
                    "age_band": s.choice(AGE_BANDS, p=[0.15, 0.4, 0.3, 0.15]),
                    "sex": s.choice(("female", "male"), p=[0.52, 0.48]),
                    "conditions": mine + extra,
                    "allergies": allergies,
                },
            }
        )
        blocked = set(mine + extra + allergies)
        t0 = start + timedelta(days=s.uniform(0, 10))
        for cond in mine:
            sink.add(
                uid,
                None,
                "diagnosis",
                t0,
                context={"code": CONDITIONS[cond][0], "system": "icd10", "condition": cond},
            )
        adherence = s.uniform(0.4, 0.98)
        prescribed: list[str] = []
        for cond in mine:
            safe = [
                i
                for i in catalog.members[conds.index(cond)]
                if items[i]["attributes"]["kind"] == "medication"
                and not (
                    set(items[i]["attributes"].get("contraindication_tags", []))
                    | set(items[i]["attributes"].get("ingredients", []))
                )
                & blocked
            ]
            if safe:
                pick = items[int(safe[0] if s.chance(0.7) else s.choice(safe))]["item_id"]
                sink.add(
                    uid,
                    pick,
                    "prescription",
                    t0 + timedelta(hours=2),
                    context={"dose": "1 daily", "days": 90},
                )
                prescribed.append(pick)
        for week in range(DAYS // 7 - 1):
            ts = t0 + timedelta(days=7 * week + s.uniform(0, 6))
            for pick in prescribed:
                taken = s.chance(adherence)
                sink.add(
                    uid,
                    pick,
                    "adherence",
                    ts,
                    context={"taken": taken, "ratio": round(min(1.0, max(0.0, s.normal(adherence, 0.1))), 2)},
                )
            if week % 4 == 0:
                cond = s.choice(mine)
                _, lab, mu, sd, unit = CONDITIONS[cond]
                value = round(s.normal(mu, sd) - (adherence - 0.7) * sd, 2)
                sink.add(
                    uid,
                    None,
                    "visit",
                    ts + timedelta(hours=1),
                    context={"department": "primary_care", "kind": "outpatient"},
                )
                sink.add(
                    uid,
                    None,
                    "lab_result",
                    ts + timedelta(hours=2),
                    context={"code": lab, "value": value, "unit": unit, "abnormal": value > mu},
                )
        for sess in s.sessions(catalog, plan, days=DAYS - 10, mean_length=3.0, gap_seconds=120):
            for idx, ts in zip(sess.items, sess.times, strict=True):
                attrs = items[idx]["attributes"]
                iid = items[idx]["item_id"]
                if (
                    attrs["kind"] == "programme"
                    and not set(attrs.get("contraindication_tags", [])) & blocked
                    and s.chance(0.3)
                ):
                    sink.add(uid, iid, "enroll", ts)
                    if s.chance(0.5):
                        sink.add(
                            uid,
                            iid,
                            "outcome",
                            ts + timedelta(days=14),
                            context={"rating": s.integers(3, 5) if adherence > 0.7 else s.integers(1, 4)},
                        )
                else:
                    sink.add(uid, iid, "view", ts)
        for pick in prescribed:
            if s.chance(0.5):
                sink.add(
                    uid,
                    pick,
                    "outcome",
                    ANCHOR - timedelta(days=s.uniform(0, 5)),
                    context={"rating": max(1, min(5, round(s.normal(1 + 4 * adherence, 0.7))))},
                )
    return SampleData(users=users, items=items, events=sink.sorted())

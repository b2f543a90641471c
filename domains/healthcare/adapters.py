"""Real data for healthcare: MIMIC-III Clinical Database Demo v1.4 (100 patients).

Drugs in PRESCRIPTIONS become medication items; admissions become visits,
ICD-9 diagnoses diagnosis events (with a condition tag where the code maps to
one of the tags our care items use), prescriptions prescription events.
MIMIC shifts every patient's dates into 2100–2200 (only intervals within a
patient are real), so each patient's timeline is shifted again to end at
2025-06-01: the API refuses events far in the future.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from domains.base import SampleData
from domains.datasets import DatasetError, csv_rows, dataset_file, optional_file, utc_iso

TIMELINE_END = datetime(2025, 6, 1, tzinfo=UTC)
# ICD-9 prefix → condition tag (the tags the care catalogue uses).
ICD9_CONDITIONS = (
    ("250", "diabetes"),
    ("401", "hypertension"),
    ("402", "hypertension"),
    ("403", "ckd"),
    ("428", "heart_failure"),
    ("585", "ckd"),
    ("493", "asthma"),
    ("491", "copd"),
    ("492", "copd"),
    ("496", "copd"),
    ("311", "depression"),
    ("2962", "depression"),
    ("2963", "depression"),
    ("714", "arthritis"),
    ("715", "arthritis"),
)
VISIT_KIND = {
    "EMERGENCY": "emergency",
    "URGENT": "emergency",
    "ELECTIVE": "inpatient",
    "NEWBORN": "inpatient",
}


def condition_of(icd9: str) -> str | None:
    return next((tag for prefix, tag in ICD9_CONDITIONS if icd9.startswith(prefix)), None)


def _ts(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip()[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "unknown"


def _age_band(years: float) -> str:
    # MIMIC puts patients over 89 at ~300 years old.
    for hi, band in ((17, "0-17"), (39, "18-39"), (64, "40-64"), (79, "65-79")):
        if years <= hi:
            return band
    return "80+"


def mimic3_demo(path: str | Path, *, limit: int | None = None) -> SampleData:
    """The demo's CSV tables (PATIENTS, ADMISSIONS, DIAGNOSES_ICD, PRESCRIPTIONS)."""
    patients_file = dataset_file(path, "PATIENTS.csv")
    base = patients_file.parent
    admissions = list(csv_rows(dataset_file(base, "ADMISSIONS.csv")))
    diagnoses_file = optional_file(base, "DIAGNOSES_ICD.csv")
    rx_file = optional_file(base, "PRESCRIPTIONS.csv")

    raw: dict[str, list[tuple[datetime, str, str | None, dict, str]]] = defaultdict(list)
    admit_time: dict[str, datetime] = {}
    for r in admissions:
        when = _ts(r["admittime"])
        if when is None:
            raise DatasetError(f"ADMISSIONS.csv: bad admittime {r['admittime']!r}")
        admit_time[r["hadm_id"]] = when
        context = {
            "kind": VISIT_KIND.get(r["admission_type"], "inpatient"),
            "department": (r.get("admission_location") or "")[:100],
        }
        raw[r["subject_id"]].append((when, "visit", None, context, f"visit-{r['hadm_id']}"))
    conditions: dict[str, set[str]] = defaultdict(set)
    if diagnoses_file:
        for r in csv_rows(diagnoses_file):
            when, code = admit_time.get(r["hadm_id"]), (r.get("icd9_code") or "").strip()
            if when is None or not code:
                continue
            context = {"code": code, "system": "icd9"}
            if tag := condition_of(code):
                context["condition"] = tag
                conditions[r["subject_id"]].add(tag)
            raw[r["subject_id"]].append(
                (when + timedelta(minutes=30), "diagnosis", None, context, f"dx-{r['row_id']}")
            )
    items: dict[str, dict] = {}
    if rx_file:
        for r in csv_rows(rx_file):
            start, end = _ts(r["startdate"]), _ts(r["enddate"])
            drug = (r.get("drug") or "").strip()
            if start is None or not drug:
                continue
            iid = f"rx-{_slug(drug)}"
            attrs = {"kind": "medication", "title": drug[:300], "condition_tags": []}
            if r.get("formulary_drug_cd"):
                attrs["code"] = r["formulary_drug_cd"][:64]
            items.setdefault(iid, {"item_id": iid, "attributes": attrs})
            context: dict = {}
            if r.get("dose_val_rx"):
                context["dose"] = f"{r['dose_val_rx']} {r.get('dose_unit_rx', '')}".strip()[:100]
            if end is not None:
                context["days"] = max(1, min(3650, (end - start).days))
            raw[r["subject_id"]].append((start, "prescription", iid, context, f"rx-{r['row_id']}"))

    users, events = [], []
    for r in csv_rows(patients_file):
        subject = r["subject_id"]
        timeline = sorted(raw.get(subject, []), key=lambda x: (x[0], x[4]))
        if limit is not None and len(events) >= limit:
            break
        attrs: dict = {"sex": {"F": "female", "M": "male"}.get(r["gender"], "unknown"), "age_band": "80+"}
        born = _ts(r["dob"])
        if born and timeline:
            attrs["age_band"] = _age_band((timeline[0][0] - born).days / 365.25)
        if conditions.get(subject):
            attrs["conditions"] = sorted(conditions[subject])
        users.append({"user_id": f"mimic{subject}", "attributes": attrs})
        if not timeline:
            continue
        shift = TIMELINE_END - timeline[-1][0]
        for when, kind, item, context, eid in timeline:
            events.append(
                {
                    "event_id": f"mimic-{eid}",
                    "user_id": f"mimic{subject}",
                    "item_id": item,
                    "type": kind,
                    "timestamp": utc_iso(when + shift),
                    "value": None,
                    "context": context,
                }
            )
    used = {e["item_id"] for e in events if e["item_id"]}
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return SampleData(users=users, items=[i for k, i in items.items() if k in used], events=events)

"""Real data for education: OULAD (Open University Learning Analytics Dataset).

Module presentations become courses, assessments become exercises (skill =
the module, difficulty: CMA 2, TMA 3, Exam 4), registrations become enrol
events, unregistrations drops, submissions attempts (score/100, correct when
≥ 40, the OU pass mark) and a Pass/Distinction a course completion at the end
of the presentation. OULAD times are day offsets from each presentation's
start; a presentation "2013B" starts on 1 February 2013 and "2013J" on
1 October 2013 (the dataset's documentation), which gives calendar dates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from domains.base import SampleData
from domains.datasets import DatasetError, csv_rows, dataset_file, number, optional_file, utc_iso, whole_users

DIFFICULTY = {"CMA": 2, "TMA": 3, "Exam": 4}
EDUCATION = {
    "No Formal quals": "other",
    "Lower Than A Level": "secondary",
    "A Level or Equivalent": "secondary",
    "HE Qualification": "undergraduate",
    "Post Graduate Qualification": "postgraduate",
}
AGE = {"0-35": None, "35-55": "35-54", "55<=": "55+"}


def _start(presentation: str) -> datetime:
    try:
        year, half = int(presentation[:4]), presentation[4:]
    except ValueError as exc:
        raise DatasetError(f"bad code_presentation {presentation!r}") from exc
    return datetime(year, 2 if half == "B" else 10, 1, 9, tzinfo=UTC)


def oulad(path: str | Path, *, limit: int | None = None) -> SampleData:
    """The OULAD CSV tables (studentRegistration.csv and assessments.csv at least)."""
    reg_file = dataset_file(path, "studentRegistration.csv")
    base = reg_file.parent
    assess_file = dataset_file(base, "assessments.csv")
    courses_file = optional_file(base, "courses.csv")
    info_file = optional_file(base, "studentInfo.csv")
    sub_file = optional_file(base, "studentAssessment.csv")

    lengths = (
        {
            (r["code_module"], r["code_presentation"]): int(r["module_presentation_length"])
            for r in csv_rows(courses_file)
        }
        if courses_file
        else {}
    )
    items: dict[str, dict] = {}
    assessment_of: dict[str, tuple[str, str, str]] = {}
    for r in csv_rows(assess_file):
        course = f"{r['code_module']}-{r['code_presentation']}"
        aid = f"assessment-{r['id_assessment']}"
        assessment_of[r["id_assessment"]] = (r["code_module"], r["code_presentation"], aid)
        items[aid] = {
            "item_id": aid,
            "attributes": {
                "kind": "exercise",
                "title": f"{r['assessment_type']} {r['id_assessment']} ({course})",
                "subject": r["code_module"],
                "skill": r["code_module"],
                "difficulty": DIFFICULTY.get(r["assessment_type"], 3),
                "course_id": course,
                "prerequisites": [],
            },
        }

    def course_item(module: str, presentation: str) -> str:
        cid = f"{module}-{presentation}"
        if cid not in items:
            attrs = {
                "kind": "course",
                "title": f"Module {module} ({presentation})",
                "subject": module,
                "skill": module,
                "difficulty": 1,
                "prerequisites": [],
            }
            if (module, presentation) in lengths:
                attrs["duration_minutes"] = lengths[(module, presentation)] * 24 * 60
            items[cid] = {"item_id": cid, "attributes": attrs}
        return cid

    events: list[dict] = []
    users: dict[str, dict] = {}

    def add(
        eid: str, user: str, item: str, kind: str, when: datetime, context: dict, value: float | None = None
    ) -> None:
        events.append(
            {
                "event_id": eid,
                "user_id": user,
                "item_id": item,
                "type": kind,
                "timestamp": utc_iso(when),
                "value": value,
                "context": context,
            }
        )

    for r in csv_rows(reg_file):
        student = r["id_student"]
        if limit is not None and len(users) >= limit and student not in users:
            continue  # at most one student per event asked for; trimmed to whole users below
        users.setdefault(student, {"user_id": student, "attributes": {}})
        start = _start(r["code_presentation"])
        course = course_item(r["code_module"], r["code_presentation"])
        registered = number(r["date_registration"])
        add(
            f"oulad-enroll-{student}-{course}",
            student,
            course,
            "enroll",
            start + timedelta(days=registered or 0),
            {},
        )
        dropped = number(r["date_unregistration"])
        if dropped is not None:
            add(
                f"oulad-drop-{student}-{course}",
                student,
                course,
                "drop",
                start + timedelta(days=dropped, hours=1),
                {},
            )
    if info_file:
        for r in csv_rows(info_file):
            user = users.get(r["id_student"])
            if user is None:
                continue
            attrs = user["attributes"]
            if r["highest_education"] in EDUCATION:
                attrs["education_level"] = EDUCATION[r["highest_education"]]
            if AGE.get(r["age_band"]):
                attrs["age_band"] = AGE[r["age_band"]]
            if r["final_result"] in ("Pass", "Distinction"):
                course = course_item(r["code_module"], r["code_presentation"])
                days = lengths.get((r["code_module"], r["code_presentation"]), 260)
                add(
                    f"oulad-complete-{r['id_student']}-{course}",
                    r["id_student"],
                    course,
                    "complete",
                    _start(r["code_presentation"]) + timedelta(days=days),
                    {},
                )
    if sub_file:
        for r in csv_rows(sub_file):
            student, known = r["id_student"], assessment_of.get(r["id_assessment"])
            score, day = number(r["score"]), number(r["date_submitted"])
            if student not in users or known is None or score is None or day is None:
                continue
            module, presentation, aid = known
            fraction = max(0.0, min(1.0, score / 100))
            add(
                f"oulad-attempt-{student}-{r['id_assessment']}",
                student,
                aid,
                "attempt",
                _start(presentation) + timedelta(days=day, hours=12),
                {"score": round(fraction, 4), "correct": score >= 40},
                value=fraction,
            )
    events = whole_users(events, limit)
    kept = {e["user_id"] for e in events}
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return SampleData(
        users=[u for k, u in users.items() if k in kept or limit is None],
        items=list(items.values()),
        events=events,
    )

"""Synthetic learners on a curriculum: per-skill ability that grows with practice.

The catalog is a real curriculum: per subject a course, per skill five levels,
each a lesson then an exercise; a lesson needs the previous level's exercise,
an exercise needs its lesson. Learners pick skills by taste (popular subjects
more often, some drift to a new subject), work through the chain in order,
pass an exercise with probability σ(ability − difficulty), gain ability by
practising, and may drop a course after repeated failure.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np

from domains.base import SampleData
from domains.synth import ANCHOR, EventSink, Synth, iso

SUBJECTS: dict[str, tuple[str, ...]] = {
    "mathematics": ("fractions", "algebra", "geometry"),
    "programming": ("python_basics", "data_structures", "sql"),
    "languages": ("spanish_vocabulary", "spanish_grammar", "english_writing"),
    "science": ("physics_motion", "chemistry_bonds", "biology_cells"),
}
DAYS = 70


def _catalog() -> tuple[list[dict], dict[str, list[tuple[str, str]]]]:
    items: list[dict] = []
    chains: dict[str, list[tuple[str, str]]] = {}
    for subject, skills in SUBJECTS.items():
        course = f"course-{subject}"
        items.append(
            {
                "item_id": course,
                "attributes": {
                    "kind": "course",
                    "title": subject.title(),
                    "subject": subject,
                    "skill": skills[0],
                    "difficulty": 1,
                    "duration_minutes": 600,
                    "prerequisites": [],
                },
            }
        )
        for skill in skills:
            chain = []
            for level in range(1, 6):
                lesson, exercise = f"{skill}-L{level}", f"{skill}-E{level}"
                prereq = [f"{skill}-E{level - 1}"] if level > 1 else []
                items.append(
                    {
                        "item_id": lesson,
                        "attributes": {
                            "kind": "lesson",
                            "title": f"{skill.replace('_', ' ')} {level}",
                            "subject": subject,
                            "skill": skill,
                            "difficulty": level,
                            "duration_minutes": 10 + 5 * level,
                            "prerequisites": prereq,
                            "course_id": course,
                        },
                    }
                )
                items.append(
                    {
                        "item_id": exercise,
                        "attributes": {
                            "kind": "exercise",
                            "title": f"{skill.replace('_', ' ')} exercise {level}",
                            "subject": subject,
                            "skill": skill,
                            "difficulty": level,
                            "duration_minutes": 5 + 3 * level,
                            "prerequisites": [lesson],
                            "course_id": course,
                        },
                    }
                )
                chain.append((lesson, exercise))
            chains[skill] = chain
    return items, chains


def sample_data(seed: int, n_users: int) -> SampleData:
    s = Synth(seed, "education")
    items, chains = _catalog()
    skills = [k for v in SUBJECTS.values() for k in v]
    subject_of = {k: subj for subj, ks in SUBJECTS.items() for k in ks}
    users, sink = [], EventSink(f"ed{seed}")
    start = ANCHOR - timedelta(days=DAYS)
    for u in range(n_users):
        uid = f"learner{u:05d}"
        users.append(
            {
                "user_id": uid,
                "attributes": {
                    "education_level": s.choice(
                        ("secondary", "undergraduate", "postgraduate", "other"), p=[0.35, 0.35, 0.15, 0.15]
                    ),
                    "age_band": s.choice(
                        ("<18", "18-24", "25-34", "35-54", "55+"), p=[0.15, 0.35, 0.25, 0.2, 0.05]
                    ),
                    "registered_at": iso(start - timedelta(days=s.integers(0, 300))),
                },
            }
        )
        plan = s.user_plan(len(skills), activity=5.0)
        talent = s.normal(0.0, 0.8)
        ability = {k: talent + s.normal(1.0, 0.5) for k in skills}
        level = dict.fromkeys(skills, 0)  # exercises passed per skill
        fails = dict.fromkeys(skills, 0)
        enrolled: set[str] = set()
        dropped: set[str] = set()
        n_sessions = max(2, int(s.rng.poisson(plan.activity)))
        pace = s.uniform(0.5, 2.0)  # sessions come more often for fast learners
        t = start + timedelta(days=s.uniform(0, 20), hours=plan.peak_hour)
        for k in range(n_sessions):
            frac = k / n_sessions
            prefs = (1 - frac) * plan.prefs_start + frac * plan.prefs_end
            skill = skills[int(s.rng.choice(len(skills), p=prefs / prefs.sum()))]
            course = f"course-{subject_of[skill]}"
            if course in dropped or level[skill] >= 5:
                continue
            if course not in enrolled:
                enrolled.add(course)
                sink.add(uid, course, "enroll", t)
                t += timedelta(minutes=2)
            for _ in range(s.integers(1, 3)):
                if level[skill] >= 5:
                    break
                lesson, exercise = chains[skill][level[skill]]
                difficulty = level[skill] + 1
                sink.add(uid, lesson, "view", t, context={"seconds": round(s.uniform(120, 900), 0)})
                t += timedelta(minutes=10 + 5 * difficulty)
                sink.add(uid, lesson, "complete", t)
                p = 1 / (1 + math.exp(-(ability[skill] - difficulty + 1.5)))
                for _attempt in range(3):
                    t += timedelta(minutes=float(s.rng.exponential(6)) + 2)
                    correct = s.chance(p)
                    score = float(np.clip(s.normal(0.82 if correct else 0.4, 0.1), 0, 1))
                    score = round(score if correct else min(score, 0.59), 2)
                    sink.add(
                        uid,
                        exercise,
                        "attempt",
                        t,
                        value=score,
                        context={"score": score, "correct": correct, "hints": s.integers(0, 2)},
                    )
                    ability[skill] += 0.25 if correct else 0.1  # practice helps either way
                    if correct:
                        sink.add(
                            uid, exercise, "complete", t + timedelta(seconds=30), context={"score": score}
                        )
                        level[skill] += 1
                        fails[skill] = 0
                        break
                    fails[skill] += 1
                if fails[skill] >= 3:
                    break
            if fails[skill] >= 4 and s.chance(0.6):
                dropped.add(course)
                sink.add(uid, course, "drop", t + timedelta(hours=1))
            t += timedelta(
                days=float(s.rng.exponential(DAYS / (n_sessions * pace + 1))), hours=s.normal(0, 1.0)
            )
            if t > ANCHOR:
                break
    return SampleData(users=users, items=items, events=sink.sorted())

"""Real-data adapters on tiny files in each data set's published format."""

from __future__ import annotations

from pathlib import Path

import pytest

from domains.datasets import DatasetError
from domains.ecommerce.plugin import EcommercePlugin
from domains.education.plugin import EducationPlugin
from domains.finance_risk.plugin import FinanceRiskPlugin
from domains.healthcare.plugin import HealthcarePlugin
from domains.social.plugin import SocialPlugin
from domains.transport.plugin import TransportPlugin


def _valid(plugin, data) -> None:  # type: ignore[no-untyped-def]
    assert all(not plugin.validate_user(u["attributes"]) for u in data.users)
    assert all(not plugin.validate_item(i["attributes"]) for i in data.items), [
        plugin.validate_item(i["attributes"]) for i in data.items
    ]
    assert all(not plugin.validate_event(e) for e in data.events), [
        plugin.validate_event(e) for e in data.events
    ]
    items = {i["item_id"] for i in data.items}
    assert all(e["item_id"] is None or e["item_id"] in items for e in data.events)


def test_taobao(tmp_path: Path) -> None:
    (tmp_path / "UserBehavior.csv").write_text(
        "1,10,100,pv,1511848894\n1,10,100,buy,1511848994\n2,11,101,fav,1511848900\n1,10,100,pv,1511848894\n"
    )
    data = EcommercePlugin.dataset_adapters()["taobao-userbehavior"](tmp_path)
    _valid(EcommercePlugin, data)
    assert [(e["user_id"], e["type"], e["timestamp"]) for e in data.events] == [
        ("1", "view", "2017-11-28T06:01:34+00:00"),
        ("1", "purchase", "2017-11-28T06:03:14+00:00"),
        ("2", "favorite", "2017-11-28T06:01:40+00:00"),
    ]
    assert {i["item_id"]: i["attributes"] for i in data.items} == {
        "10": {"category": "100"},
        "11": {"category": "101"},
    }
    (tmp_path / "UserBehavior.csv").write_text("1,10,100,teleport,1511848894\n")
    with pytest.raises(DatasetError, match="unknown behavior_type"):
        EcommercePlugin.dataset_adapters()["taobao-userbehavior"](tmp_path)


def test_lastfm(tmp_path: Path) -> None:
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t51\t10\n3\t51\t1\n")
    (tmp_path / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t51\t1\t1\t4\t2009\n2\t51\t2\t1\t4\t2009\n3\t51\t1\t5\t4\t2009\n"
    )
    (tmp_path / "tags.dat").write_bytes("tagID\ttagValue\n1\tmetal\n2\tcaf\xe9\n".encode("iso-8859-1"))
    (tmp_path / "artists.dat").write_text("id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://x\thttp://y\n")
    (tmp_path / "user_friends.dat").write_text("userID\tfriendID\n2\t3\n3\t2\n")
    data = SocialPlugin.dataset_adapters()["lastfm-hetrec2011"](tmp_path)
    _valid(SocialPlugin, data)
    assert data.items == [
        {
            "item_id": "51",
            "attributes": {
                "author_id": "artist51",
                "topic": "metal",
                "created_at": "2009-04-01T12:00:00+00:00",
                "media_type": "audio",
                "text": "Duran Duran",
            },
        }
    ]
    kinds = sorted((e["user_id"], e["type"]) for e in data.events)
    assert kinds == [
        ("2", "follow"),
        ("2", "like"),
        ("2", "view"),
        ("3", "follow"),
        ("3", "like"),
        ("3", "view"),
    ]
    view = next(e for e in data.events if e["user_id"] == "2" and e["type"] == "view")
    assert view["context"] == {"dwell_seconds": 2100.0}


def test_oulad(tmp_path: Path) -> None:
    (tmp_path / "courses.csv").write_text(
        '"code_module","code_presentation","module_presentation_length"\n"AAA","2013J","268"\n'
    )
    (tmp_path / "assessments.csv").write_text(
        '"code_module","code_presentation","id_assessment","assessment_type","date","weight"\n"AAA","2013J","1752","TMA","19","10"\n'
    )
    (tmp_path / "studentRegistration.csv").write_text(
        '"code_module","code_presentation","id_student","date_registration","date_unregistration"\n"AAA","2013J","11","-10","?"\n"AAA","2013J","12","-5","30"\n'
    )
    (tmp_path / "studentInfo.csv").write_text(
        '"code_module","code_presentation","id_student","gender","region","highest_education","imd_band","age_band","num_of_prev_attempts","studied_credits","disability","final_result"\n'
        '"AAA","2013J","11","M","X","HE Qualification","90-100%","55<=","0","240","N","Pass"\n'
    )
    (tmp_path / "studentAssessment.csv").write_text(
        "id_student,id_assessment,date_submitted,is_banked,score\r\n11,1752,18,0,78\r\n12,1752,20,0,?\r\n"
    )
    data = EducationPlugin.dataset_adapters()["oulad"](tmp_path)
    _valid(EducationPlugin, data)
    got = sorted((e["user_id"], e["type"], e["timestamp"][:10]) for e in data.events)
    # 2013J starts 2013-10-01: −10 days → 09-21; day 18 → 10-19; day 30 → 10-31; Pass at day 268 → 2014-06-26.
    assert got == [
        ("11", "attempt", "2013-10-19"),
        ("11", "complete", "2014-06-26"),
        ("11", "enroll", "2013-09-21"),
        ("12", "drop", "2013-10-31"),
        ("12", "enroll", "2013-09-26"),
    ]
    attempt = next(e for e in data.events if e["type"] == "attempt")
    assert attempt["context"] == {"score": 0.78, "correct": True}
    assert next(u for u in data.users if u["user_id"] == "11")["attributes"] == {
        "education_level": "undergraduate",
        "age_band": "55+",
    }


def test_uci_credit_default(tmp_path: Path) -> None:
    header = "ID,LIMIT_BAL,SEX,EDUCATION,MARRIAGE,AGE,PAY_0,PAY_2,PAY_3,PAY_4,PAY_5,PAY_6,BILL_AMT1,BILL_AMT2,BILL_AMT3,BILL_AMT4,BILL_AMT5,BILL_AMT6,PAY_AMT1,PAY_AMT2,PAY_AMT3,PAY_AMT4,PAY_AMT5,PAY_AMT6,default.payment.next.month"
    (tmp_path / "UCI_Credit_Card.csv").write_text(
        header + "\n1,20000,2,2,1,24,2,-1,-1,-1,-2,-2,3913,0,0,0,0,0,0,689,0,0,0,0,1\n"
    )
    data = FinanceRiskPlugin.dataset_adapters()["uci-credit-default"](tmp_path)
    _valid(FinanceRiskPlugin, data)
    assert data.users == [
        {"user_id": "client1", "attributes": {"country": "TW", "credit_limit": 20000.0, "age_band": "18-24"}}
    ]
    got = [
        (e["type"], e["timestamp"][:10], e["context"].get("amount") or e["context"].get("months_late"))
        for e in data.events
    ]
    # BILL_AMT1 = September bill; PAY_AMT2 = August payment (paid 10 September); PAY_0 = 2 months late in September.
    assert got == [
        ("transfer", "2005-09-10", 689.0),
        ("transaction", "2005-09-25", 3913.0),
        ("late_payment", "2005-09-28", 2),
        ("payment_default", "2005-10-01", None),
    ]


def test_mimic3_demo(tmp_path: Path) -> None:
    (tmp_path / "PATIENTS.csv").write_text(
        "row_id,subject_id,gender,dob,dod,dod_hosp,dod_ssn,expire_flag\n1,10006,F,2094-03-05 00:00:00,,,,0\n"
    )
    (tmp_path / "ADMISSIONS.csv").write_text(
        "row_id,subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admission_location,diagnosis\n"
        "1,10006,142345,2164-10-23 21:09:00,2164-11-01 17:15:00,,EMERGENCY,EMERGENCY ROOM ADMIT,SEPSIS\n"
    )
    (tmp_path / "DIAGNOSES_ICD.csv").write_text(
        "row_id,subject_id,hadm_id,seq_num,icd9_code\n7,10006,142345,1,25000\n8,10006,142345,2,99591\n"
    )
    (tmp_path / "PRESCRIPTIONS.csv").write_text(
        "row_id,subject_id,hadm_id,icustay_id,startdate,enddate,drug_type,drug,drug_name_poe,drug_name_generic,formulary_drug_cd,gsn,ndc,prod_strength,dose_val_rx,dose_unit_rx,form_val_disp,form_unit_disp,route\n"
        "9,10006,142345,,2164-10-24 00:00:00,2164-10-27 00:00:00,MAIN,Insulin,Insulin,Insulin,INSULIN,1,2,x,10,UNIT,1,ML,SC\n"
    )
    data = HealthcarePlugin.dataset_adapters()["mimic3-demo"](tmp_path)
    _valid(HealthcarePlugin, data)
    assert data.users[0]["attributes"] == {"sex": "female", "age_band": "65-79", "conditions": ["diabetes"]}
    events = {e["type"]: e for e in data.events if e["type"] != "diagnosis"}
    # The last event (the prescription, 2164-10-24) is shifted to 2025-06-01; the visit keeps its 2 h 51 m lead.
    assert events["prescription"]["timestamp"] == "2025-06-01T00:00:00+00:00"
    assert events["visit"]["timestamp"] == "2025-05-31T21:09:00+00:00"
    assert events["prescription"]["context"] == {"dose": "10 UNIT", "days": 3}
    dx = sorted(e["context"].get("condition", "-") for e in data.events if e["type"] == "diagnosis")
    assert dx == ["-", "diabetes"]


def test_foursquare_nyc(tmp_path: Path) -> None:
    head = "user_id,POI_id,POI_catid,POI_catname,latitude,longitude,timezone,UTC_time,trajectory_id,time_period\n"
    (tmp_path / "NYC_val.csv").write_text(
        head + "1,abc,c1,Pizza Place,40.73,-73.99,-240,Sat Jul 07 02:12:49 +0000 2012,1_7,0.08\n"
    )
    (tmp_path / "NYC_test.csv").write_text(
        head + "2,abc,c1,Pizza Place,40.73,-73.99,-240,Sun Jul 08 12:00:00 +0000 2012,2_1,0.5\n"
    )
    data = TransportPlugin.dataset_adapters()["foursquare-nyc"](tmp_path)
    _valid(TransportPlugin, data)
    assert [(e["user_id"], e["item_id"], e["timestamp"]) for e in data.events] == [
        ("nyc1", "abc", "2012-07-07T02:12:49+00:00"),
        ("nyc2", "abc", "2012-07-08T12:00:00+00:00"),
    ]
    assert data.items[0]["attributes"] == {
        "kind": "poi",
        "name": "Pizza Place",
        "lat": 40.73,
        "lon": -73.99,
        "category": "Pizza Place",
    }
    with pytest.raises(DatasetError):
        TransportPlugin.dataset_adapters()["foursquare-nyc"](tmp_path / "missing")


def test_lastfm_drops_the_bogus_pre_2002_tag_dates(tmp_path: Path) -> None:
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t51\t10\n")
    (tmp_path / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t51\t1\t1\t1\t1956\n"
    )
    data = SocialPlugin.dataset_adapters()["lastfm-hetrec2011"](tmp_path)
    _valid(SocialPlugin, data)
    # No usable tag date: the play is dated at the end of the collection and there is no like.
    assert [(e["type"], e["timestamp"]) for e in data.events] == [("view", "2011-05-01T12:00:00+00:00")]

"""Real data for finance & risk: UCI "default of credit card clients" (Taiwan, 2005).

Per client and month (April → September 2005): the bill statement becomes a
``transaction`` at the card-statement merchant on the 25th, the repayment a
``transfer`` on the 10th of the next month, a repayment status of 1–9 a
``late_payment`` label (months late), and "default next month" a
``payment_default`` label on 1 October 2005. LIMIT_BAL is the client's credit
limit (a sensitive attribute). There is no risk tolerance in the data, so
suitability treats these clients as the most cautious (tolerance 1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from domains.base import SampleData
from domains.datasets import DatasetError, csv_rows, dataset_file, number, utc_iso

# Column suffix → month: 1 is September 2005, 6 is April 2005.
MONTHS = {1: 9, 2: 8, 3: 7, 4: 6, 5: 5, 6: 4}
STATUS = {1: "PAY_0", 2: "PAY_2", 3: "PAY_3", 4: "PAY_4", 5: "PAY_5", 6: "PAY_6"}


def _age_band(age: float | None) -> str | None:
    if age is None:
        return None
    for hi, band in ((24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"), (64, "55-64")):
        if age <= hi:
            return band
    return "65+"


def uci_credit_default(path: str | Path, *, limit: int | None = None) -> SampleData:
    """``UCI_Credit_Card.csv`` (the Kaggle re-export with a header row)."""
    file = dataset_file(path, "UCI_Credit_Card.csv")
    items = [
        {
            "item_id": "card-statement",
            "attributes": {
                "kind": "merchant",
                "name": "Credit card statement",
                "category": "card_statement",
                "risk_level": 1,
                "country": "TW",
            },
        },
        {
            "item_id": "credit-card",
            "attributes": {
                "kind": "product",
                "name": "Credit card",
                "category": "credit_card",
                "risk_level": 3,
            },
        },
    ]
    users, events = [], []
    for r in csv_rows(file):
        if limit is not None and len(events) >= limit:
            break
        try:
            cid = f"client{int(float(r['ID']))}"
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"{file.name}: bad row {str(r)[:80]}") from exc
        attrs: dict = {"country": "TW"}
        if (limit_bal := number(r.get("LIMIT_BAL"))) is not None:
            attrs["credit_limit"] = limit_bal
        if band := _age_band(number(r.get("AGE"))):
            attrs["age_band"] = band
        users.append({"user_id": cid, "attributes": attrs})
        for k, month in MONTHS.items():
            bill, paid, status = (
                number(r.get(f"BILL_AMT{k}")),
                number(r.get(f"PAY_AMT{k}")),
                number(r.get(STATUS[k])),
            )
            if bill is not None and bill > 0:
                events.append(
                    _event(
                        f"uci-{cid}-bill-{month}",
                        cid,
                        "card-statement",
                        "transaction",
                        datetime(2005, month, 25, tzinfo=UTC),
                        {"amount": bill, "currency": "TWD", "channel": "online"},
                        bill,
                    )
                )
            if paid is not None and paid > 0:
                events.append(
                    _event(
                        f"uci-{cid}-pay-{month}",
                        cid,
                        None,
                        "transfer",
                        datetime(2005, month + 1, 10, tzinfo=UTC),
                        {"amount": paid, "currency": "TWD", "counterparty": "card-account"},
                        paid,
                    )
                )
            if status is not None and 1 <= status <= 9:
                events.append(
                    _event(
                        f"uci-{cid}-late-{month}",
                        cid,
                        None,
                        "late_payment",
                        datetime(2005, month, 28, tzinfo=UTC),
                        {"months_late": int(min(status, 12))},
                        None,
                    )
                )
        if r.get("default.payment.next.month", "0").strip() == "1":
            events.append(
                _event(
                    f"uci-{cid}-default",
                    cid,
                    None,
                    "payment_default",
                    datetime(2005, 10, 1, tzinfo=UTC),
                    {},
                    None,
                )
            )
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return SampleData(users=users, items=items, events=events)


def _event(
    eid: str, user: str, item: str | None, kind: str, when: datetime, context: dict, value: float | None
) -> dict:
    return {
        "event_id": eid,
        "user_id": user,
        "item_id": item,
        "type": kind,
        "timestamp": utc_iso(when),
        "value": value,
        "context": context,
    }

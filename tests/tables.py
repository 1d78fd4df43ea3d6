"""Customer tables in the shapes analysts bring, built in code (never copied from outside).

Each builder writes a file to a folder and returns its path; the shapes follow
well-known public files (a bank's card usage, wholesale spend, a marketing
campaign table, the Mall table under other headers, an online-retail invoice
export) without any of their data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BANK_NUMERIC = [
    "BALANCE",
    "BALANCE_FREQUENCY",
    "PURCHASES",
    "ONEOFF_PURCHASES",
    "INSTALLMENTS_PURCHASES",
    "CASH_ADVANCE",
    "PURCHASES_FREQUENCY",
    "ONEOFF_PURCHASES_FREQUENCY",
    "PURCHASES_INSTALLMENTS_FREQUENCY",
    "CASH_ADVANCE_FREQUENCY",
    "CASH_ADVANCE_TRX",
    "PURCHASES_TRX",
    "CREDIT_LIMIT",
    "PAYMENTS",
    "MINIMUM_PAYMENTS",
    "PRC_FULL_PAYMENT",
    "TENURE",
]
WHOLESALE_SPEND = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]


def bank_card_usage(folder: Path, n: int = 400, seed: int = 1) -> Path:
    """18 columns: a `C10001` id and 17 numeric ones, blanks in two of them."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame({"CUST_ID": [f"C{10001 + i}" for i in range(n)]})
    for position, column in enumerate(BANK_NUMERIC):
        centre = np.array([1.0, 4.0, 9.0])[group] * (1 + position % 5)
        values = np.abs(rng.normal(centre, 1.0))
        if column.endswith("FREQUENCY") or column == "PRC_FULL_PAYMENT":
            values = np.clip(values / values.max(), 0, 1).round(6)
        elif column.endswith("TRX"):
            values = values.round().astype(int)
        frame[column] = values
    frame["TENURE"] = rng.integers(6, 13, n)
    frame["CREDIT_LIMIT"] = frame["CREDIT_LIMIT"].round(0)
    frame.loc[rng.choice(n, 12, replace=False), "MINIMUM_PAYMENTS"] = np.nan
    frame.loc[rng.choice(n, 1, replace=False), "CREDIT_LIMIT"] = np.nan
    path = folder / "bank_card_usage.csv"
    frame.to_csv(path, index=False)
    return path


def wholesale(folder: Path, n: int = 440, seed: int = 2) -> Path:
    """6 integer spend columns and two coded categories (Channel 1/2, Region 1-3), no id."""
    rng = np.random.default_rng(seed)
    channel = rng.integers(1, 3, n)
    frame = pd.DataFrame({"Channel": channel, "Region": rng.integers(1, 4, n)})
    for position, column in enumerate(WHOLESALE_SPEND):
        scale = 3000 * (1 + position) * np.where(channel == 2, 2.5, 1.0)
        frame[column] = rng.gamma(2.0, scale).round().astype(int) + 3
    path = folder / "wholesale.csv"
    frame.to_csv(path, index=False)
    return path


def marketing_campaign(folder: Path, n: int = 300, seed: int = 3) -> Path:
    """Tab-separated: an id, a birth year with an absurd 1893, text categories with odd
    values ('YOLO', 'Absurd'), an income with blanks, day-first dates, spend and campaign
    counts, a 0/1 response and two constant columns."""
    rng = np.random.default_rng(seed)
    statuses = ["Married", "Together", "Single", "Divorced", "Widow"]
    marital = rng.choice(statuses, n)
    marital[:2] = ["YOLO", "Absurd"]
    birth = rng.integers(1945, 2000, n)
    birth[5] = 1893
    income = rng.normal(52000, 20000, n).round(0)
    income[rng.choice(n, 9, replace=False)] = np.nan
    days = pd.Timestamp("2012-07-30") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    frame = pd.DataFrame(
        {
            "ID": rng.permutation(np.arange(1000, 1000 + n * 7, 7)),
            "Year_Birth": birth,
            "Education": rng.choice(["Graduation", "PhD", "Master", "Basic", "2n Cycle"], n),
            "Marital_Status": marital,
            "Income": income,
            "Kidhome": rng.integers(0, 3, n),
            "Dt_Customer": days.strftime("%d-%m-%Y"),
            "Recency": rng.integers(0, 100, n),
            "MntWines": rng.gamma(1.5, 200, n).round().astype(int),
            "MntMeatProducts": rng.gamma(1.2, 120, n).round().astype(int),
            "NumWebPurchases": rng.integers(0, 12, n),
            "Z_CostContact": 3,
            "Z_Revenue": 11,
            "Response": rng.integers(0, 2, n),
        }
    )
    path = folder / "marketing_campaign.csv"
    frame.to_csv(path, index=False, sep="\t")
    return path


def mall_like(folder: Path, header: list[str], n: int = 200, seed: int = 4) -> Path:
    """The Mall table's shape (zero-padded id, gender, age, income, score) under ``header``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            header[0]: [f"{i:04d}" for i in range(1, n + 1)],
            header[1]: rng.choice(["Male", "Female"], n),
            header[2]: rng.integers(18, 70, n),
            header[3]: rng.integers(15, 140, n),
            header[4]: rng.integers(1, 100, n),
        }
    )
    path = folder / "mall_like.csv"
    frame.to_csv(path, index=False)
    return path


SNAKE_CASE_MALL = ["customer_id", "gender", "age", "annual_income_k", "spending_score_1_100"]
SPANISH_MALL = ["ID_Cliente", "Género", "Edad", "Ingreso_Anual", "Puntuación_Gasto"]


def invoice_lines(folder: Path, n_invoices: int = 400, seed: int = 5) -> Path:
    """An online-retail export: invoice lines with returns (C invoices), lines without a
    customer id, US-style dates (12/1/2010 8:26), stock codes, descriptions, a country."""
    rng = np.random.default_rng(seed)
    rows = []
    for invoice in range(1, n_invoices + 1):
        customer = "" if rng.random() < 0.05 else str(12345 + rng.integers(0, 60))
        when = pd.Timestamp("2010-12-01 08:26") + pd.Timedelta(
            days=int(rng.integers(0, 300)), minutes=int(rng.integers(0, 600))
        )
        is_return = rng.random() < 0.05
        for _ in range(int(rng.integers(1, 4))):
            quantity = int(rng.integers(1, 12))
            rows.append(
                {
                    "InvoiceNo": ("C" if is_return else "") + str(536000 + invoice),
                    "StockCode": f"85{rng.integers(100, 999)}",
                    "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
                    "Quantity": -quantity if is_return else quantity,
                    "InvoiceDate": f"{when:%-m/%-d/%Y %-H:%M}",  # 12/1/2010 8:26
                    "UnitPrice": round(float(rng.uniform(0.5, 10)), 2),
                    "CustomerID": customer,
                    "Country": "United Kingdom",
                }
            )
    path = folder / "online_retail.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


SKEWED_MONEY = ["balance", "purchases", "cash_advance", "payments"]


def skewed_money(folder: Path, n: int = 600, seed: int = 6) -> Path:
    """A card-usage shape with money columns skewed as real ones are: log-normal spend, most
    customers with no cash advance, and five extreme customers 20-60x the 99th percentile."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": [f"K{i:05d}" for i in range(n)]})
    frame["balance"] = rng.lognormal(7.0, 1.2, n).round(2)
    frame["purchases"] = np.where(rng.random(n) < 0.25, 0.0, rng.lognormal(6.0, 1.5, n)).round(2)
    frame["cash_advance"] = np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(6.5, 1.3, n)).round(2)
    frame["payments"] = (0.3 * frame["balance"] + rng.lognormal(5.5, 1.0, n)).round(2)
    extreme = rng.choice(n, 5, replace=False)
    for column in SKEWED_MONEY:
        top = frame[column].quantile(0.99)
        frame.loc[extreme, column] = (top * rng.uniform(20, 60, 5)).round(2)
    path = folder / "skewed_money.csv"
    frame.to_csv(path, index=False)
    return path


def bulk_plus_outliers(folder: Path, n: int = 439, seed: int = 7) -> Path:
    """A wholesale shape where k-means k=2 isolates one customer: ``n`` customers in three
    moderate groups (spend centred at 2k, 5k and 9k) and one customer 40x the rest."""
    rng = np.random.default_rng(seed)
    centre = np.array([2000.0, 5000.0, 9000.0])[rng.integers(0, 3, n)]
    frame = pd.DataFrame(
        {
            "customer_id": [f"W{i:04d}" for i in range(n + 1)],
            "fresh": np.r_[rng.normal(centre, 500.0), [360000.0]].round(0),
            "grocery": np.r_[rng.normal(centre * 1.5, 600.0), [400000.0]].round(0),
        }
    )
    path = folder / "bulk_plus_outliers.csv"
    frame.to_csv(path, index=False)
    return path


def wholesale_customers(folder: Path, n: int = 440, seed: int = 8) -> Path:
    """The wholesale shape with what real customer files add: coded Channel (1 Horeca,
    2 Retail) and Region (1-3), a 0/1 campaign Response, a customer-since date
    (Customer_Since, ISO) and a four-digit birth year of the buyer (Year_Birth).

    Retail customers spend more on Grocery/Milk/Detergents_Paper, answer campaigns more
    often (30% vs 5%) and joined earlier; owners' ages are spread as real ones are."""
    rng = np.random.default_rng(seed)
    channel = np.where(rng.random(n) < 0.32, 2, 1)
    retail = channel == 2
    frame = pd.DataFrame(
        {"Channel": channel, "Region": rng.choice([1, 2, 3], n, p=[0.2, 0.1, 0.7])}
    )
    boost = {"Fresh": 0.6, "Milk": 2.5, "Grocery": 3.0, "Frozen": 0.7, "Detergents_Paper": 4.0}
    for position, column in enumerate(WHOLESALE_SPEND):
        scale = 2000 * (1 + position % 3) * np.where(retail, boost.get(column, 1.0), 1.0)
        frame[column] = rng.gamma(2.0, scale).round().astype(int) + 3
    frame["Response"] = (rng.random(n) < np.where(retail, 0.30, 0.05)).astype(int)
    days = np.where(retail, rng.integers(900, 2500, n), rng.integers(0, 1500, n))
    frame["Customer_Since"] = (
        pd.Timestamp("2024-06-30") - pd.to_timedelta(days, unit="D")
    ).strftime("%Y-%m-%d")
    frame["Year_Birth"] = rng.integers(1950, 2000, n)
    path = folder / "wholesale_customers.csv"
    frame.to_csv(path, index=False)
    return path


CARD_JARGON = [
    "BALANCE",
    "BALANCE_FREQUENCY",
    "PURCHASES",
    "CASH_ADVANCE",
    "CASH_ADVANCE_TRX",
    "PRC_FULL_PAYMENT",
    "MntWines",
    "NumWebPurchases",
    "CREDIT_LIMIT",
]


def card_jargon(folder: Path, n_per_group: int = 150, seed: int = 9) -> Path:
    """A card-usage shape under jargon headers (BALANCE_FREQUENCY, PRC_FULL_PAYMENT,
    CASH_ADVANCE_TRX, MntWines, NumWebPurchases) in four groups: revolvers (high balance,
    cash advances), transactors (high purchases, pay in full), wine lovers (high MntWines,
    web purchases) and light users (low everything)."""
    rng = np.random.default_rng(seed)
    design = {  # group -> multipliers of each column's base level
        "revolver": {"BALANCE": 4, "CASH_ADVANCE": 6, "CASH_ADVANCE_TRX": 5, "CREDIT_LIMIT": 1.5},
        "transactor": {"PURCHASES": 5, "PRC_FULL_PAYMENT": 4, "BALANCE_FREQUENCY": 1.5},
        "wine_lover": {"MntWines": 6, "NumWebPurchases": 4, "PURCHASES": 2},
        "light": {"BALANCE": 0.4, "PURCHASES": 0.3, "CREDIT_LIMIT": 0.6, "BALANCE_FREQUENCY": 0.5},
    }
    frames = []
    for boost in design.values():
        block = {
            column: rng.gamma(3.0, boost.get(column, 1.0) * 100.0, n_per_group).round(2)
            for column in CARD_JARGON
        }
        block["BALANCE_FREQUENCY"] = np.clip(block["BALANCE_FREQUENCY"] / 600, 0, 1).round(4)
        block["PRC_FULL_PAYMENT"] = np.clip(block["PRC_FULL_PAYMENT"] / 1600, 0, 1).round(4)
        block["CASH_ADVANCE_TRX"] = (block["CASH_ADVANCE_TRX"] / 50).round().astype(int)
        block["NumWebPurchases"] = (block["NumWebPurchases"] / 40).round().astype(int)
        frames.append(pd.DataFrame(block))
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "CUST_ID", [f"C{10001 + i}" for i in range(len(frame))])
    path = folder / "card_jargon.csv"
    frame.to_csv(path, index=False)
    return path

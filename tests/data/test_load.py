"""Loading customer tables: header variants, delimiters, encodings, quoting, TSV, Parquet."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from conftest import mall_data_cfg

from segexp.data import load_customers
from segexp.data.read import detect_delimiter
from segexp.data.samples import generate_mall_sample

CANONICAL = ["customer_id", "gender", "age", "annual_income", "spending_score"]


def kaggle_lines(mall_csv) -> list[str]:
    return mall_csv.read_bytes().decode("utf-8").splitlines()


def rewrite(path, lines, header=None, sep=",", newline="\n", encoding="utf-8"):
    body = [header if header is not None else lines[0].replace(",", sep)]
    body += [line.replace(",", sep) for line in lines[1:]]
    path.write_bytes(newline.join(body).encode(encoding))
    return path


@pytest.fixture(scope="module")
def kaggle_table(mall_csv):
    return load_customers(mall_data_cfg(path=str(mall_csv)))


def test_kaggle_file_loads_to_canonical_columns_with_its_values(kaggle_table, mall_csv):
    frame = kaggle_table.frame
    assert list(frame.columns) == CANONICAL
    assert kaggle_table.id_column == "customer_id"
    assert kaggle_table.label_column is None  # the real file has no known segments
    assert frame["customer_id"].iloc[0] == "0001"  # zero padding is part of the id
    assert frame["gender"].value_counts().to_dict() == {"Female": 112, "Male": 88}
    raw = pd.read_csv(mall_csv)
    for ours, theirs in zip(CANONICAL[2:], raw.columns[2:], strict=True):
        assert frame[ours].dtype == np.int64
        np.testing.assert_array_equal(frame[ours].to_numpy(), raw[theirs].to_numpy())
    assert kaggle_table.file_rows[:3].tolist() == [2, 3, 4]


@pytest.mark.parametrize(
    "header",
    [
        "customer_id,gender,age,annual_income,spending_score",  # snake_case rename
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)",  # later Kaggle copies
        "Customer ID,Sex,AGE,annual_income_k,Spending Score",
    ],
)
def test_header_variants_load_to_identical_tables(tmp_path, mall_csv, kaggle_table, header):
    path = rewrite(tmp_path / "renamed.csv", kaggle_lines(mall_csv), header=header)
    table = load_customers(mall_data_cfg(path=str(path)))
    pd.testing.assert_frame_equal(table.frame, kaggle_table.frame)
    assert table.fingerprint == kaggle_table.fingerprint


@pytest.mark.parametrize(
    ("name", "sep", "encoding", "newline"),
    [
        ("customers.tsv", "\t", "utf-8", "\n"),
        ("customers.csv", ";", "cp1252", "\r\n"),
        ("customers.txt", "|", "utf-16", "\n"),  # BOM tells the encoding
        ("customers.csv", "\t", "utf-8-sig", "\r\n"),
    ],
)
def test_delimiters_and_encodings_are_detected(
    tmp_path, mall_csv, kaggle_table, name, sep, encoding, newline
):
    path = rewrite(
        tmp_path / name, kaggle_lines(mall_csv), sep=sep, encoding=encoding, newline=newline
    )
    table = load_customers(mall_data_cfg(path=str(path)))
    pd.testing.assert_frame_equal(table.frame, kaggle_table.frame)


def test_configured_delimiter_and_encoding_are_used(tmp_path, mall_csv, kaggle_table):
    path = rewrite(tmp_path / "c.dat", kaggle_lines(mall_csv), sep=";", encoding="latin-1")
    table = load_customers(mall_data_cfg(path=str(path), delimiter=";", encoding="latin-1"))
    pd.testing.assert_frame_equal(table.frame, kaggle_table.frame)


def test_quoted_fields_keep_delimiters_accents_and_newlines(tmp_path):
    text = (
        "customer_id;name;gender;age;annual_income;spending_score\r\n"
        '"0001";"Müller; Anna";"Female";"31";"70";"55"\r\n'
        '"0002";"Dupont, ""Jo""\r\nJr.";"Male";"45";"38";"12"\r\n'
        '"0003";"Ødegård";"Female";"22";"19";"88"\r\n'
    )
    path = tmp_path / "quoted.csv"
    path.write_bytes(text.encode("cp1252"))
    frame = load_customers(mall_data_cfg(path=str(path))).frame
    assert frame["name"].tolist() == ["Müller; Anna", 'Dupont, "Jo"\r\nJr.', "Ødegård"]
    assert frame["age"].tolist() == [31, 45, 22]


def test_parquet_and_gzip_load_like_the_csv(tmp_path, mall_csv, kaggle_table):
    raw = pd.read_csv(mall_csv, dtype={"CustomerID": str})
    raw.to_parquet(tmp_path / "mall.parquet")
    parquet = load_customers(mall_data_cfg(path=str(tmp_path / "mall.parquet")))
    pd.testing.assert_frame_equal(parquet.frame, kaggle_table.frame)
    (tmp_path / "mall.csv.gz").write_bytes(gzip.compress(mall_csv.read_bytes()))
    zipped = load_customers(mall_data_cfg(path=str(tmp_path / "mall.csv.gz")))
    pd.testing.assert_frame_equal(zipped.frame, kaggle_table.frame)


def test_user_aliases_in_yaml_map_new_headers(tmp_path, mall_csv, kaggle_table, make_config):
    header = "Kundennummer,Geschlecht,Alter,Jahreseinkommen,Ausgabenwert"
    path = rewrite(tmp_path / "kunden.csv", kaggle_lines(mall_csv), header=header)
    cfg = make_config(
        [
            f"data.path={path}",
            "data.aliases.customer_id=[Kundennummer]",
            "data.aliases.gender=[Geschlecht]",
            "data.aliases.age=[Alter]",
            "data.aliases.annual_income=[Jahreseinkommen]",
            "data.aliases.spending_score=[Ausgabenwert]",
        ]
    )
    table = load_customers(cfg.data)
    pd.testing.assert_frame_equal(table.frame, kaggle_table.frame)


def test_missing_markers_decimal_commas_and_blank_lines(tmp_path):
    text = (
        "customer_id;gender;age;annual_income;spending_score\n"
        "1;Female;NA;15,5;39\n"
        "\n"
        "2; Male ;21;;81\n"
        "3;Female;n/a;16,25;6\n"
    )
    path = tmp_path / "euro.csv"
    path.write_text(text)
    table = load_customers(mall_data_cfg(path=str(path), decimal=","))
    frame = table.frame
    assert len(frame) == 3  # the blank line is not a customer
    assert table.file_rows.tolist() == [2, 4, 5]  # but it keeps its row number
    assert frame["age"].isna().tolist() == [True, False, True]
    np.testing.assert_allclose(frame["annual_income"], [15.5, np.nan, 16.25])
    assert frame["gender"].tolist() == ["Female", "Male", "Female"]  # cells are stripped


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1;2,5;3\n", ";"),
        ("a\tb\n1\t2\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        ('a;b\n"x, y, z";2\n"p, q";3\n', ";"),
    ],
)
def test_detect_delimiter(text, expected):
    assert detect_delimiter(text) == expected


def test_built_in_sample_is_the_generated_table():
    table = load_customers(mall_data_cfg())
    expected = generate_mall_sample(200, 7)
    assert table.source == "built-in sample"
    assert table.label_column == "true_segment"
    np.testing.assert_array_equal(table.frame["age"], expected["age"])
    assert table.frame["customer_id"].tolist() == expected["customer_id"].tolist()
    assert table.notes == {}

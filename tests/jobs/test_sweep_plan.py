"""A sweep is checked before its first job with Hydra's public API: ``plan_jobs`` expands a
command line as Hydra's basic sweeper does, ``count_jobs`` counts it without building it,
and ``compose_jobs`` gives each job the config Hydra's compose API gives it."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from segexp.jobs.callbacks import compose_jobs, count_jobs, plan_jobs

GROUPS = {"algo", "scaler", "features", "preprocess", "data", "engine", "mlflow"}
GROUPS |= {"evaluation", "naming"}


def test_plan_is_the_product_of_the_swept_values_in_hydra_order():
    jobs = plan_jobs(["algo=kmeans,gmm", "k=3,4,5", "seed=7"])
    assert jobs == [
        [f"algo={a}", f"k={k}", "seed=7"]
        for a, k in itertools.product(("kmeans", "gmm"), (3, 4, 5))
    ]
    assert count_jobs(["algo=kmeans,gmm", "k=3,4,5", "seed=7"]) == 6
    assert plan_jobs(["k=range(3,9,2)"]) == [["k=3"], ["k=5"], ["k=7"]]
    assert plan_jobs(["k=3"], {"algo": "kmeans,gmm"}) == [
        ["algo=kmeans", "k=3"],
        ["algo=gmm", "k=3"],
    ]


def test_a_huge_range_is_counted_without_building_it():
    # 10**12 values could not be listed in memory: a count means none was built
    assert count_jobs(["k=range(1,1000000000000)"]) == 999_999_999_999


JOBS = [
    ["algo=kmeans", "k=3"],
    ["algo=gmm", "k=8", "algo.covariance_type=diag"],
    ["algo=dbscan", "k=5", "algo.eps=0.5"],
    ["scaler=minmax", "features=all_numeric", "k=6", "seed=7"],
    ["+extra=1", "k=2"],
    ["data.path=/tmp/x.csv", "mlflow.experiment=other"],
    ["preprocess.log1p=[annual_income]", "k=4"],
]


@pytest.mark.parametrize("job", JOBS, ids=lambda j: " ".join(j))
def test_each_job_gets_the_config_hydra_composes(job):
    # a sweep's jobs share their keys: the same job at another k first (composed once)
    other_k = [o if not o.startswith("k=") else "k=9" for o in job]
    siblings = [other_k, job]
    with initialize_config_module("segexp.conf", version_base="1.3"):
        got = compose_jobs("config", siblings, GROUPS)[1]
        expected = compose("config", overrides=job, return_hydra_config=True)
    keys = [str(k) for k in expected if k != "hydra"]
    assert sorted(str(k) for k in got if k != "hydra") == sorted(keys)
    assert OmegaConf.to_container(OmegaConf.masked_copy(got, keys)) == OmegaConf.to_container(
        OmegaConf.masked_copy(expected, keys)
    )

"""Thread counts per fit: from the fit's size, the usable cores and the fits beside it."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from threadpoolctl import threadpool_info

from segexp.jobs import threads
from segexp.jobs.threads import ThreadPolicy, launcher_workers, thread_policy


@pytest.mark.parametrize(
    ("policy", "rows", "expected"),
    [
        (ThreadPolicy(cores=16, parallel=1), 1_000, 1),  # small: one thread
        (ThreadPolicy(cores=16, parallel=1), 100_000, 16),
        (ThreadPolicy(cores=16, parallel=2), 100_000, 8),  # two joblib workers
        (ThreadPolicy(cores=16, parallel=3), 100_000, 5),
        (ThreadPolicy(cores=2, parallel=2), 100_000, 1),
        (ThreadPolicy(cores=2, parallel=4), 10**7, 1),  # never 0
        (ThreadPolicy(cores=16, parallel=2, configured=3), 10, 3),  # limits.threads wins
        (ThreadPolicy(cores=8, parallel=1, single_thread_below_rows=0), 10, 8),
    ],
)
def test_threads_come_from_size_cores_and_parallel_fits(policy, rows, expected):
    assert policy.threads(rows) == expected


@pytest.mark.parametrize(
    ("launcher", "expected"),
    [
        ({"_target_": "hydra_plugins.hydra_joblib_launcher.JoblibLauncher", "n_jobs": 2}, 2),
        ({"_target_": "hydra_plugins.hydra_joblib_launcher.JoblibLauncher", "n_jobs": -1}, 8),
        ({"_target_": "hydra_plugins.hydra_joblib_launcher.JoblibLauncher", "n_jobs": -2}, 7),
        ({"_target_": "hydra_plugins.hydra_joblib_launcher.JoblibLauncher", "n_jobs": -20}, 1),
        ({"_target_": "hydra_plugins.hydra_joblib_launcher.JoblibLauncher", "n_jobs": None}, 8),
        ({"_target_": "hydra_plugins.hydra_ray_launcher.RayLauncher"}, None),  # per task
    ],
)
def test_joblib_workers_are_counted_as_joblib_counts_them(launcher, expected):
    assert launcher_workers(OmegaConf.create(launcher), cores=8) == expected


def test_the_policy_reads_the_launchers_worker_count(monkeypatch):
    limits = OmegaConf.create({"threads": None, "single_thread_below_rows": 50000})
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setenv(threads.PARALLEL_ENV, "2")
    assert thread_policy(limits).threads(10**6) == 4
    monkeypatch.delenv(threads.PARALLEL_ENV)
    assert thread_policy(limits).threads(10**6) == 8
    assert thread_policy(limits).threads(10) == 1


def test_the_limit_applies_to_the_loaded_thread_pools():
    import sklearn.cluster  # noqa: F401  (loads scikit-learn's OpenMP and numpy's BLAS)

    with ThreadPolicy(cores=4, parallel=1).limit(10) as count:
        assert count == 1
        assert {p["num_threads"] for p in threadpool_info()} == {1}

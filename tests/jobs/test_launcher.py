"""segexp's sweeper/launcher compose each job's config exactly as Hydra's basic ones do."""

import pytest
from conftest import CONF_DIR
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.plugins import Plugins
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from hydra_plugins.segexp_sweep.launcher import SweepConfigCache


@pytest.fixture(scope="module")
def loader():
    Plugins.instance()  # registers Hydra's and segexp's plugin configs
    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))


def _master(loader, overrides):
    return loader.load_configuration("config", overrides=overrides, run_mode=RunMode.MULTIRUN)


JOBS = [
    ["algo=kmeans", "k=3"],
    ["algo=kmeans", "k=4"],
    ["algo=gmm", "k=3"],
    ["algo=gmm", "k=8", "algo.covariance_type=diag"],
    ["algo=dbscan", "k=5", "algo.eps=0.5"],
    ["scaler=minmax", "features=all_numeric", "k=6", "seed=7"],
    ["+extra=1", "k=2"],
    ["~plots", "k=2"],
    ["++metrics.silhouette_max_rows=50", "hydra.job.name=custom"],
    ["data.path=/tmp/x.csv", "mlflow.experiment=other"],
]


@pytest.mark.parametrize("job", JOBS, ids=lambda j: " ".join(j))
def test_cached_composition_equals_hydra(loader, job):
    master = _master(loader, ["mlflow.tracking_uri=sqlite:///x.db", "hydra.verbose=false"])
    cache = SweepConfigCache(loader)
    cache.load(master, ["algo=kmeans", "k=9"])  # warm the cache with a sibling job
    expected = loader.load_sweep_config(master, list(job))
    got = cache.load(master, list(job))
    assert OmegaConf.to_container(got, resolve=False) == OmegaConf.to_container(
        expected, resolve=False
    )
    assert OmegaConf.is_struct(got) == OmegaConf.is_struct(expected)


def test_cache_composes_once_per_group_choice(loader):
    master = _master(loader, [])
    cache = SweepConfigCache(loader)
    for algo in ("kmeans", "gmm"):
        for k in range(3, 9):
            cache.load(master, [f"algo={algo}", f"k={k}"])
    assert cache.compositions == 2


@pytest.mark.parametrize(
    ("job", "fragment"),
    [
        (["nosuchkey=1"], "Could not override 'nosuchkey'"),
        (["+k=3"], "Could not append to config"),
        (["~nosuchkey"], "Could not delete"),
    ],
)
def test_validation_rejects_what_hydra_rejects(loader, job, fragment):
    master = _master(loader, [])
    with pytest.raises(ConfigCompositionException):
        loader.load_sweep_config(master, list(job))
    with pytest.raises(ConfigCompositionException, match=fragment):
        SweepConfigCache(loader).validate(master, list(job))

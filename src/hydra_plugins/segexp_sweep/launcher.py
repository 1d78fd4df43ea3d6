"""segexp's default sweeper and launcher: Hydra's basic ones, composing each config group once.

Hydra's basic sweeper composes every job's config to validate the batch and
the basic launcher composes it again to run it; composing costs ~0.1 s, more
than fitting a segmentation of a few thousand customers. A sweep's jobs share
their group choices far more often than not (``algo=kmeans,gmm k=3..8`` has
two), so ``SweepConfigCache`` composes once per combination of group choices
with Hydra itself, and applies each job's value overrides (``k=5``,
``algo.eps=0.3``) to a copy exactly as Hydra does after composing. The result
is the config Hydra would have composed (tests/run/test_launcher.py compares
them for a table of override lists). Everything else is Hydra's basic behaviour.

This needs Hydra's private config loader, so it is used only with the Hydra
versions it was written and tested against (1.3.x). With any other version,
``hydra/sweeper=segexp`` and ``hydra/launcher=segexp`` are Hydra's own basic
sweeper and launcher: slower, the same results.
"""

import copy
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict

VERBOSE_ENV = "SEGEXP_VERBOSE"
LOG_LEVEL_RESOLVER = "segexp.log_level"
SUPPORTED_HYDRA = "1.3."
SUPPORTED = hydra.__version__.startswith(SUPPORTED_HYDRA)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"

if SUPPORTED:
    from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override
    from hydra.core.utils import (
        JobReturn,
        configure_log,
        filter_overrides,
        run_job,
        setup_globals,
    )
    from hydra.errors import ConfigCompositionException

if SUPPORTED:
    log = logging.getLogger(__name__)
    _MISSING = object()

    def _input_line(override: Override) -> str:
        assert override.input_line is not None  # parse_overrides sets it on every override
        return override.input_line

    class SweepConfigCache:
        """Job configs of one sweep, composed by Hydra once per combination of group choices."""

        def __init__(self, config_loader) -> None:
            self.loader = config_loader
            self.parser = OverridesParser.create()
            self._composed: dict[tuple[str, ...], DictConfig] = {}
            self.compositions = 0

        def _is_group_override(self, override: Override) -> bool:
            repository = getattr(self.loader, "repository", None)
            if repository is None:
                return True
            return override.key_or_group.startswith("hydra/") or repository.group_exists(
                override.key_or_group
            )

        def _base(self, master: DictConfig, job_overrides: Sequence[str]):
            parsed = self.parser.parse_overrides(list(job_overrides))
            groups = [o for o in parsed if self._is_group_override(o)]
            values = [o for o in parsed if not self._is_group_override(o)]
            key = tuple(_input_line(o) for o in groups)
            if key not in self._composed:
                self._composed[key] = self.loader.load_sweep_config(master, list(key))
                self.compositions += 1
            return self._composed[key], values

        def validate(self, master: DictConfig, job_overrides: Sequence[str]) -> None:
            """Raise as Hydra would if the job's config cannot be composed, without copying it."""
            if not isinstance(self.loader, ConfigLoaderImpl):
                self.loader.load_sweep_config(master, list(job_overrides))
                return
            base, values = self._base(master, job_overrides)
            for override in values:
                key = override.key_or_group
                exists = OmegaConf.select(base, key, default=_MISSING) is not _MISSING
                if override.is_delete() and not exists:
                    raise ConfigCompositionException(
                        f"Could not delete from config. '{key}' does not exist."
                    )
                if override.is_add() and exists:
                    raise ConfigCompositionException(
                        f"Could not append to config. An item is already at '{key}'."
                    )
                if (
                    not (override.is_add() or override.is_force_add() or override.is_delete())
                    and not exists
                ):
                    raise ConfigCompositionException(
                        f"Could not override '{key}'.\n"
                        f"To append to your config use +{override.input_line}"
                    )

        def load(self, master: DictConfig, job_overrides: Sequence[str]) -> DictConfig:
            """The job's composed config, as ``load_sweep_config`` returns it."""
            if not isinstance(self.loader, ConfigLoaderImpl):
                return self.loader.load_sweep_config(master, list(job_overrides))
            base, values = self._base(master, job_overrides)
            cfg = copy.deepcopy(base)
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
            hydra_overrides = OmegaConf.to_container(master.hydra.overrides.hydra)
            assert isinstance(hydra_overrides, list)
            every = self.parser.parse_overrides(hydra_overrides + list(job_overrides))
            app_overrides = [o for o in every if not o.is_hydra_override()]
            with open_dict(cfg.hydra):
                cfg.hydra.overrides.hydra = [o.input_line for o in every if o.is_hydra_override()]
                cfg.hydra.overrides.task = [o.input_line for o in app_overrides]
                dirname = cfg.hydra.job.config.override_dirname
                cfg.hydra.job.override_dirname = get_overrides_dirname(
                    overrides=app_overrides,
                    kv_sep=dirname.kv_sep,
                    item_sep=dirname.item_sep,
                    exclude_keys=dirname.exclude_keys,
                )
            OmegaConf.copy_cache(from_config=master, to_config=cfg)
            return cfg

    class SegexpSweeper(BasicSweeper):
        """Hydra's basic sweeper whose batch validation composes through the shared cache.

        Before anything is written (the sweep folder, ``multirun.yaml``, the parent run,
        which opens at the first job), the whole sweep is checked: its job count against
        ``limits.max_jobs``, then every job's config with ``segexp.jobs.validation``.
        A refusal raises ``ConfigError``: one ``segexp: error:`` line, exit 2.
        """

        def setup(self, *, hydra_context, task_function, config) -> None:
            super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
            self.cache = SweepConfigCache(hydra_context.config_loader)
            if isinstance(self.launcher, SegexpLauncher):
                self.launcher.cache = self.cache

        def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
            assert self.config is not None
            for overrides in batch:
                self.cache.validate(self.config, list(overrides))

        def check_sweep(self, batches: Sequence[Sequence[Sequence[str]]]) -> None:
            """Every job of the sweep, before any is launched; ConfigError on the first."""
            from segexp.errors import ConfigError
            from segexp.jobs import validation

            assert self.config is not None
            total = sum(len(batch) for batch in batches)
            validation.check_sweep_size(total, validation.max_jobs(self.config))
            num = 0
            for batch in batches:
                self.validate_batch_is_legal(batch)
                for overrides in batch:
                    cfg = self.cache.load(self.config, list(overrides))
                    try:
                        validation.check_job_config(cfg)
                    except ConfigError as exc:
                        shown = " ".join(filter_overrides(overrides))
                        raise ConfigError(
                            f"{exc}; in job #{num} of {total} ({shown}), nothing was run"
                        ) from None
                    num += 1

        def sweep(self, arguments: list[str]):
            """Hydra's basic sweep, with ``check_sweep`` before the sweep folder exists, and
            no ``multirun.yaml`` file (the parent run holds it)."""
            assert self.config is not None
            assert self.launcher is not None
            assert self.hydra_context is not None
            params_conf = self._parse_config()
            params_conf.extend(arguments)
            parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
            overrides = parser.parse_overrides(params_conf)
            self.overrides = self.split_arguments(overrides, self.max_batch_size)
            self.check_sweep(self.overrides)
            returns: list[Sequence[JobReturn]] = []
            # No multirun.yaml in the sweep folder: the sweep's config is an artifact of its
            # parent run (segexp.jobs.summary), and the launcher makes the folder.
            initial_job_idx = 0
            while not self.is_done():
                batch = self.get_job_batch()  # its configs were checked by check_sweep
                results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
                for r in results:
                    _ = r.return_value  # raises if the job raised
                initial_job_idx += len(batch)
                returns.append(results)
            return returns

    class SegexpLauncher(BasicLauncher):
        """Hydra's basic launcher (jobs in order, in this process) composing through the cache."""

        cache: "SweepConfigCache | None" = None

        def launch(
            self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
        ) -> Sequence[JobReturn]:
            setup_globals()
            assert self.hydra_context is not None and self.config is not None
            assert self.task_function is not None
            if self.cache is None:
                self.cache = SweepConfigCache(self.hydra_context.config_loader)
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            log.info(f"Launching {len(job_overrides)} jobs locally")
            runs: list[JobReturn] = []
            for idx, overrides in enumerate(job_overrides):
                idx = initial_job_idx + idx
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                sweep_config = self.cache.load(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = idx
                    sweep_config.hydra.job.num = idx
                runs.append(
                    run_job(
                        hydra_context=self.hydra_context,
                        task_function=self.task_function,
                        config=sweep_config,
                        job_dir_key="hydra.sweep.dir",
                        job_subdir_key="hydra.sweep.subdir",
                    )
                )
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            return runs


@dataclass
class SegexpSweeperConf:
    _target_: str = (
        "hydra_plugins.segexp_sweep.launcher.SegexpSweeper" if SUPPORTED else BASIC_SWEEPER
    )
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


@dataclass
class SegexpLauncherConf:
    _target_: str = (
        "hydra_plugins.segexp_sweep.launcher.SegexpLauncher" if SUPPORTED else BASIC_LAUNCHER
    )


def _switched_on(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off", "none", "null")
    return bool(value)


def log_level(verbose: object = False) -> str:
    """Level of Hydra's own log lines in segexp (conf/hydra/hydra_logging/segexp.yaml):
    INFO with ``verbose=true`` or ``SEGEXP_VERBOSE=1``, else WARNING (no launch lines)."""
    return (
        "INFO" if _switched_on(verbose) or _switched_on(os.environ.get(VERBOSE_ENV)) else "WARNING"
    )


if not OmegaConf.has_resolver(LOG_LEVEL_RESOLVER):
    OmegaConf.register_new_resolver(LOG_LEVEL_RESOLVER, log_level)

ConfigStore.instance().store(
    group="hydra/sweeper", name="segexp", node=SegexpSweeperConf, provider="segexp"
)
ConfigStore.instance().store(
    group="hydra/launcher", name="segexp", node=SegexpLauncherConf, provider="segexp"
)

"""One SparkSession per process for engine=spark; pyspark or Java missing is one line.

Importable without pyspark: ``engine_for`` checks here before the Spark engine loads.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import socket
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segexp.errors import ConfigError, first_line

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def java_executable() -> str | None:
    """The java Spark will start: $JAVA_HOME/bin/java when JAVA_HOME is set, else PATH's."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def check_available() -> None:
    """ConfigError (one line) when pyspark or Java is missing."""
    if importlib.util.find_spec("pyspark") is None:
        raise ConfigError(
            'engine=spark: pyspark is not installed; pip install "segexp[spark]" (or use '
            "engine=sklearn)"
        )
    if java_executable() is None:
        where = "JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on PATH"
        raise ConfigError(
            f"engine=spark: Spark needs a Java runtime and there is no {where}; install a Java "
            "runtime 17 or newer (Debian/Ubuntu: apt-get install default-jre-headless) or set "
            "JAVA_HOME (or use engine=sklearn)"
        )


def check_master_answers(master: str, seconds: float = 5.0) -> None:
    """A ``spark://`` master that accepts no connection is a one-line error in seconds
    (Spark itself retries for about 70 s before it gives up)."""
    if not master.startswith("spark://"):
        return
    reasons = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.partition(":")
        try:
            with socket.create_connection((host, int(port or 7077)), timeout=seconds):
                return
        except OSError as exc:
            reasons.append(f"{address}: {exc.strerror or type(exc).__name__}")
    raise ConfigError(
        f"engine.master={master}: no Spark master answers ({'; '.join(reasons)}); start one "
        "(Spark's sbin/start-master.sh) or run on this machine with engine.master='local[*]'"
    )


@functools.lru_cache(maxsize=1)
def get_session(master: str, driver_memory: str, shuffle_partitions: int = 8) -> SparkSession:
    """The process's session for these settings; other settings stop the previous one."""
    stop_session()  # the session of other settings, evicted from this cache
    check_master_answers(master)
    # pyspark warns about pandas 3; the conversions segexp uses work
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark.sql import SparkSession  # optional dependency: engine=spark only

    builder: Any = SparkSession.builder.appName("segexp")
    settings = {
        "spark.driver.memory": driver_memory,
        "spark.sql.shuffle.partitions": str(int(shuffle_partitions)),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
    }
    try:
        session = builder.master(master).config(map=settings).getOrCreate()
    except Exception as exc:  # the JVM refused the master or the memory, or could not start
        raise ConfigError(
            f"engine.master={master} engine.driver_memory={driver_memory}: Spark did not start "
            f"a session ({first_line(exc)}); Java's own reason is on the lines above"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def stop_session() -> None:
    """Stop the process's session, if it started one."""
    if get_session.cache_info().currsize:
        get_session.cache_clear()
        from pyspark.sql import SparkSession  # optional dependency: engine=spark only

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()


atexit.register(stop_session)

"""One SparkSession per process for ``engine=spark``, after checking pyspark and Java.

pyspark is an optional extra (``pip install "segexp[spark]"``) and needs a Java
runtime; either missing is one ``segexp: error:`` line (exit 2) before any run
is created. The session is made once per process (a sweep's jobs share it; a
new ``engine.master`` or ``engine.driver_memory`` replaces it) and stopped at exit.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segexp.errors import ConfigError, first_line

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL_HINT = 'pip install "segexp[spark]"'
JAVA_HINT = (
    "install a Java runtime 17 or newer (Debian/Ubuntu: apt-get install default-jre-headless) "
    "or set JAVA_HOME"
)

_session: tuple[tuple[str, str, str], SparkSession] | None = None


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
            f"engine=spark: pyspark is not installed; {INSTALL_HINT} (or use engine=sklearn)"
        )
    if java_executable() is None:
        where = "JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on PATH"
        raise ConfigError(
            f"engine=spark: Spark needs a Java runtime and there is no {where}; {JAVA_HINT} "
            "(or use engine=sklearn)"
        )


def quiet_pyspark() -> None:
    """pyspark's warning about pandas 3 (its conversions segexp uses work) stays out."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")


def check_master_answers(master: str, seconds: float = 5.0) -> None:
    """A ``spark://`` master that accepts no connection is a one-line error in seconds
    (Spark itself retries for about 70 s before it gives up)."""
    if not master.startswith("spark://"):
        return
    import socket

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


def get_session(master: str, driver_memory: str, shuffle_partitions: int = 8) -> SparkSession:
    """The process's SparkSession for ``master`` (``local[2]``, ``spark://...``)."""
    global _session
    check_available()
    check_master_answers(str(master))
    quiet_pyspark()
    key = (str(master), str(driver_memory), str(int(shuffle_partitions)))
    if _session is not None:
        if _session[0] == key:
            return _session[1]
        _session[1].stop()
        _session = None
    from pyspark.sql import SparkSession

    builder: Any = SparkSession.builder.appName("segexp")
    try:
        session = (
            builder.master(key[0])
            .config("spark.driver.memory", key[1])
            .config("spark.sql.shuffle.partitions", key[2])
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    except Exception as exc:  # the JVM refused the master or the memory, or could not start
        raise ConfigError(
            f"engine.master={key[0]} engine.driver_memory={key[1]}: Spark did not start a "
            f"session ({first_line(exc)}); Java's own reason is on the lines above"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    _session = (key, session)
    return session


def stop_session() -> None:
    global _session
    if _session is not None:
        try:
            _session[1].stop()
        finally:
            _session = None


atexit.register(stop_session)

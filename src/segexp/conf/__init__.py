"""segexp's packaged configs (``pkg://segexp.conf``). Hydra imports this package to read
them, which registers their schemas (``segexp.conf.schema``) in Hydra's ConfigStore."""

from segexp.conf.schema import register

register()

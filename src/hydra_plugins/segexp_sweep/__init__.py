"""Hydra plugins of segexp (Hydra only loads plugins from the ``hydra_plugins`` package)."""

"""segexp: experiment-tracked comparison of customer segmentations.

Public entry points are the command-line tools (``python -m segexp``,
``python -m segexp.compare`` ...) and :func:`segexp.runner.run_segmentation`,
the plain function one sweep job runs.
"""

__version__ = "0.1.0"

"""reasondistill: distil reasoning from teachers into small language models.

Stages (each a function from files to files): problems -> generate -> verify ->
curate -> train -> evaluate -> report. ``reasondistill.pipeline.run`` chains them.
"""

__version__ = "0.1.0"

"""forensics: offline breach forensics for API traffic logs."""

import os

# numpy's OpenBLAS starts a spinning thread per core at import; this tool never multiplies matrices, and
# on a two-core machine those threads take CPU from the ingest workers (who inherit this setting).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

"""xencoder_lab: the finished code of the xencoder-lab course on neural search.

Each module is built step by step in one notebook (its docstring names it); later notebooks import it.

- ``data``: BEIR datasets, the toy set, the ``XLAB_FAST`` subset (notebook 01)
- ``metrics``: MRR@k, Recall@k, nDCG@k (notebook 01)
- ``bm25``: the BM25 baseline (notebook 01)
- ``models``: which base model and which device (notebook 01)
- ``cache``: expensive, deterministic results kept on disk (notebook 01)
"""

__version__ = "0.1.0"

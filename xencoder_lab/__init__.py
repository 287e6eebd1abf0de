"""xencoder_lab: the finished code of the xencoder-lab course on neural search.

Each module is built step by step in one notebook (its docstring names it); later notebooks import it.

- ``data``: BEIR datasets, the toy set, the ``XLAB_FAST`` subset (notebook 01)
- ``download``: where a dataset is found, or fetched and checked for users with the internet (notebook 01)
- ``metrics``: MRR@k, Recall@k, nDCG@k (notebook 01)
- ``bm25``: the BM25 baseline (notebook 01)
- ``models``: which base model and which device (notebook 01); LoRA adapters (notebooks 07, 08)
- ``cache``: expensive, deterministic results kept on disk (notebook 01); an in-memory LRU of scores (notebook 06)
- ``batching``: length-sorted batches with dynamic padding, eval mode for a block (notebook 02)
- ``bi_encoder``: query and document towers, CLS / pooler / mean pooling, cached corpus embeddings (notebook 02)
- ``retrieval``: exact dense top-k search over a FAISS ``IndexFlatIP``; texts in, ids out, like BM25 (notebook 02)
- ``ann``: approximate indexes (HNSW, IVF, PQ) measured against exact search: recall@k, latency, bytes (notebook 06)
- ``losses``: every training loss: in-batch negatives (InfoNCE, temperature = 1 / scale, notebook 03), listwise
  and BCE over groups (notebook 04), MSE / MarginMSE / KL for distillation (notebook 06)
- ``training``: one training loop, the bi-encoder's and the cross-encoder's steps, a sampler without duplicates
  (notebook 03)
- ``negatives``: hard negatives mined by a retriever, with a margin against false negatives (notebook 03)
- ``protocol``: in domain, unseen answers, out of domain; validation carved by document (notebook 03)
- ``checkpoints``: saving and loading: course checkpoints pinned by behaviour, whole models (notebook 03)
- ``settings``: the course recipes' settings, one frozen dataclass each (notebook 03 on)
- ``course_models``: load each course checkpoint and check it against the code; nothing here trains (notebook 03 on)
- ``recipes``: the named recipes that train the course checkpoints, one command each (notebook 03 on)
- ``corpus_embeddings``: SciFact's corpus as the course bi-encoders embed it, shipped and checked (notebook 03)
- ``cross_encoder``: joint encoding of a pair, a logit per pair, batched scoring and reranking (notebook 04); a
  smaller one cut from it (notebook 06)
- ``pipeline``: a first stage (index built once), the top depth reranked or fused, each stage timed (notebook 05)
- ``pair_scores``: the course cross-encoder's logits for the pairs notebook 05 reranks (and 06 mines), shipped
  and checked (notebook 05)
- ``export``: a course model as a folder that sentence-transformers loads, giving the same scores (notebook 05)
- ``runtime``: a course model's forward pass in ONNX Runtime, float32 or int8 (notebook 06)
- ``distill``: a cross-encoder's scores taught to a student (notebook 06)
- ``poly_encoder``: m learned codes read the query, the document attends over their views (notebook 07)
- ``colbert``: a vector a token, MaxSim late interaction, exact and token-index search (notebook 08)
- ``maxsim_scores``: ColBERT's exact MaxSim scores for the test queries, shipped and checked, served as a first
  stage (notebook 09)
- ``token_compression``: a ColBERT index's token vectors stored smaller (PQ, residual PQ, PCA), and what
  comes back (notebook 08)
- ``exercises``: the checks of every notebook's exercises, which say in words what is wrong; ``solutions``: one
  answer per exercise, for a stuck learner
"""

__version__ = "0.1.0"

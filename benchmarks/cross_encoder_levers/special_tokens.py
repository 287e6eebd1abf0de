"""Is the warm-start cosine's length bias the special tokens? A diagnostic, no training.

The cosine term averages each segment's token vectors, ``[CLS]`` and ``[SEP]`` included (``CrossEncoder.parts``).
A bare title has a handful of tokens, so its final ``[SEP]`` weighs more in its mean than in an abstract's. This
scores CACM's BM25 and fine-tuned bi-encoder top 100 with a cross-encoder checkpoint once, keeping the head, the
cosine term as the model computes it, and the same cosine with the special tokens left out of both means; then
prints nDCG@10 at depths 10 / 20 / 50 / 100, the bare titles a query in the reranked top 10, and each score's mean
on bare titles against the other documents.

usage: special_tokens.py [CHECKPOINT]     default: the course cross-encoder (data/checkpoints/cross-encoder)"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from xencoder_lab import metrics
from xencoder_lab.batching import eval_mode, run_sorted
from xencoder_lab.bi_encoder import pool
from xencoder_lab.bm25 import BM25
from xencoder_lab.course_models import load_bi_encoder, load_cross_encoder
from xencoder_lab.cross_encoder import rerank
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.retrieval import dense_run

torch.set_num_threads(2)
model = load_cross_encoder(sys.argv[1] if len(sys.argv) > 1 else None)
special = torch.tensor(sorted(set(model.tokenizer.all_special_ids)))


def three_terms(batch):  # (B, 3): head, cosine term with the special tokens, without them
    h = model.encoder(**batch).last_hidden_state  # (B, L, D)
    mask, segment = batch["attention_mask"], batch["token_type_ids"]  # (B, L)
    plain = mask * ~torch.isin(batch["input_ids"], special.to(h.device))  # (B, L): words only
    cosine = [model.scale * F.cosine_similarity(pool(h, m * (segment == 0), how="mean"),
                                                pool(h, m * (segment == 1), how="mean"), dim=-1) for m in (mask, plain)]
    return torch.stack([model.head(h[:, 0]).squeeze(-1), *cosine], dim=1)


ds = load_beir("cacm", "test")
bm25 = BM25([document_text(d) for d in ds.corpus.values()], list(ds.corpus))
ids, _ = bm25.search([ds.queries[q] for q in ds.queries], k=100)
firsts = {"BM25": dict(zip(ds.queries, ids)), "fine-tuned": dense_run(load_bi_encoder(), ds, k=100)}
pairs = sorted({(q, d) for run in firsts.values() for q in run for d in run[q]})
features = model.features([ds.queries[q] for q, _ in pairs], [document_text(ds.corpus[d]) for _, d in pairs])
with eval_mode(model):
    parts = run_sorted(features, three_terms, model.tokenizer.pad_token_id, 32, True, model.device,
                       desc="scoring pairs")
head, warm, words_only = parts.T  # (P,) each
scores = {"logit (head + cosine)": head + warm, "head alone": head, "cosine term alone": warm,
          "head + cosine without special tokens": head + words_only, "cosine without special tokens": words_only}
bare = {d for d, doc in ds.corpus.items() if not doc.get("text", "").strip()}
is_bare = np.array([d in bare for _, d in pairs])
print(f"CACM, {len(pairs)} pairs; nDCG@10 reranking the top 10 / 20 / 50 / 100; bare titles a query in the top 10")
for name, first in firsts.items():
    print(f"{name} alone: {metrics.evaluate(first, ds.qrels, ['ndcg@10'])['ndcg@10']:.3f}, bare/q "
          f"{np.mean([len(set(first[q][:10]) & bare) for q in ds.queries]):.2f}")
    for label, values in scores.items():
        by_query = {}
        for (q, d), v in zip(pairs, values):
            by_query.setdefault(q, {})[d] = float(v)
        at = [metrics.evaluate(rerank(first, by_query, k), ds.qrels, ["ndcg@10"])["ndcg@10"] for k in (10, 20, 50, 100)]
        top = rerank(first, by_query, 100)
        print(f"  {label:38}" + " / ".join(f"{v:.3f}" for v in at)
              + f"   bare/q {np.mean([len(set(top[q][:10]) & bare) for q in ds.queries]):.2f}"
              + f"   mean on bare titles {values[is_bare].mean():.2f}, others {values[~is_bare].mean():.2f}")

"""The settings of the course recipes: plain data, one dict per checkpoint (read by ``recipes``, which trains
with them, and by ``course_models``, which checks a checkpoint against them).

A checkpoint's manifest stores the settings it was trained with; ``course_models.verify`` reports it stale when
they differ from these. Changing a value here therefore means retraining that checkpoint (or, to try the change
without replacing it, ``python -m xencoder_lab.recipes <recipe> --set KEY=VALUE --record``).

>>> sorted(SETTINGS)
['bi-encoder', 'colbert', 'cross-encoder', 'distilled-bi-encoder', 'poly-encoder', 'query-tower',
 'small-cross-encoder']
>>> SETTINGS["poly-encoder"]["max_length"] == SETTINGS["bi-encoder"]["max_length"]   # built on the bi-encoder's
True
"""

from __future__ import annotations

BI_ENCODER = {
    "dataset": "scifact",
    "validation_queries": 80,
    "seed": 0,
    "pooling": "mean",
    "max_length": 256,
    "train_top_layers": 3,  # embeddings and layers 0-2 frozen: faster steps, a 10 MB checkpoint
    "steps": 104,  # about two passes over the training pairs at batch 16
    "batch_size": 16,
    "lr": 5e-5,
    "warmup": 10,
    "temperature": 0.05,
    "negative_depth": 10,
    "negative_margin": 0.95,
}


POLY_ENCODER = {
    **{k: v for k, v in BI_ENCODER.items() if k != "pooling"},
    "validation": "by document",
    "codes": 16,  # m learned codes
    "scale": 20.0,  # the document's attention over the m views: softmax(20 * cosines)
    "init_std": 1e-3,  # codes start near 0: every view starts as the mean-pooled query (the bi-encoder)
    "lora_rank": 16,  # on the top 3 layers (train_top_layers): a 0.7 MB checkpoint
    "lr": 3e-4,  # LoRA learns at about ten times a full fine-tune's rate
    "codes_lr": 1e-3,
}


COLBERT = {
    **{k: v for k, v in BI_ENCODER.items() if k != "pooling"},
    "validation": "by document",
    "miner": "zero-shot bi-encoder",  # hard negatives as the bi-encoder recipe mines them
    "dim": 128,  # each token vector projected to 128 dimensions
    "query_length": 32,  # queries padded with [MASK] to 32 tokens (query augmentation)
    "augment": True,
    "lora_rank": 16,  # on the top 3 layers (train_top_layers), and the projection: a 0.8 MB checkpoint
    "lr": 3e-4,
    "projection_lr": 1e-3,
    "temperature": 1.0,  # MaxSim sums Lq cosines: scores already span tens of units
}


QUERY_TOWER = {
    "dataset": "scifact",
    "validation_queries": 80,  # held out by document: no validation claim's abstract is a training positive
    "seed": 0,
    "pooling": "mean",
    "max_length": 256,
    "document_tower": "frozen",  # the zero-shot model embeds the corpus: its cached embeddings stay valid
    "train_top_layers": 3,  # of the query tower, as in the bi-encoder recipe: a 10 MB checkpoint
    "steps": 312,  # 12 passes over the training pairs at batch 32
    "batch_size": 32,
    "lr": 1e-5,  # chosen on validation by document among 3-layer runs (sweep.json)
    "warmup": 16,
    "temperature": 0.05,
    "negatives": "the whole corpus, other relevant abstracts masked",
    "evaluate_every": 26,  # once a pass; the best pass by validation nDCG@10 is kept
    "corpus_queries": None,  # or "title", "last sentence" or both in a list: label-free pairs (corpus_queries)
}


CROSS_ENCODER = {
    "dataset": "scifact",
    "validation_queries": 80,
    "seed": 0,
    "init": "bi-encoder",  # the encoder starts from the fine-tuned bi-encoder's weights
    "max_length": 256,  # claim + the first ~230 tokens of the abstract
    "cosine_scale": 20.0,  # warm start: score = 20 * cos(query tokens, document tokens) + head([CLS])
    "train_top_layers": 6,  # all six layers (embeddings frozen): a 21 MB checkpoint
    "negatives": 15,  # per claim: the fine-tuned bi-encoder's best-ranked non-relevant abstracts
    "negative_margin": 0.95,
    "loss": "listwise",
    "steps": 1000,
    "groups_per_step": 4,  # 4 claims x (1 positive + 15 negatives) = 64 pairs a step, about 5 passes
    "lr": 5e-5,
    "head_lr": 1e-3,
    "warmup": 100,
    "rerank_depth": 20,  # validation: rerank the fine-tuned bi-encoder's top 20
    "evaluate_every": 50,
}


DISTILLATION = {  # what both students learn from: groups scored once by the course cross-encoder
    "dataset": "scifact",
    "validation_queries": 80,  # held out by document (``protocol.split_validation_by_document``)
    "seed": 0,
    "teacher": "cross-encoder",
    "miner": "bi-encoder",  # the fine-tuned bi-encoder ranks the candidates negatives are drawn from
    "negatives": 3,  # per group: 1 positive + 3 negatives = 4 teacher logits
    "negative_margin": 0.95,
    "title_queries": 600,  # label-free groups: an uncited abstract's title as the query for its text
}


SMALL_CROSS_ENCODER = {
    **DISTILLATION,
    "layers": 2,  # the teacher's bottom 2 of 6 layers, its head and scale: a 7 MB checkpoint
    "max_length": 128,  # half the teacher's: claim + the first ~100 tokens of the abstract
    "loss": "margin_mse",
    "steps": 600,
    "groups_per_step": 8,
    "lr": 1e-4,
    "head_lr": 1e-3,
    "warmup": 60,
    "rerank_depth": 20,  # validation: rerank the fine-tuned bi-encoder's top 20
    "evaluate_every": 100,
    "test_depth": 100,  # the manifest's test figures: the pipeline's k1
}


DISTILLED_BI_ENCODER = {
    **DISTILLATION,
    "pooling": "mean",
    "max_length": 256,
    "document_tower": "frozen",  # as in the query tower: the zero-shot model's corpus embeddings stay valid
    "train_top_layers": 3,  # of the query tower: a 10 MB checkpoint
    "loss": "kl",  # the teacher's softmax over each group (MarginMSE and MSE: variants.json)
    "scale": 20.0,  # student score = 20 * cos(q, d), the bi-encoder's 1 / temperature
    "steps": 120,  # two thirds of a pass over the groups: about 8 minutes on 2 cores
    "groups_per_step": 8,
    "lr": 5e-5,
    "warmup": 12,
    "evaluate_every": 12,  # validation by document; the best evaluation is kept
}


SETTINGS = {
    "bi-encoder": BI_ENCODER,
    "cross-encoder": CROSS_ENCODER,
    "query-tower": QUERY_TOWER,
    "small-cross-encoder": SMALL_CROSS_ENCODER,
    "distilled-bi-encoder": DISTILLED_BI_ENCODER,
    "poly-encoder": POLY_ENCODER,
    "colbert": COLBERT,
}
CROSS_ENCODERS = ("cross-encoder", "small-cross-encoder")  # the recipes whose model scores pairs

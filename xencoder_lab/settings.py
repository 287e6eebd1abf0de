"""The settings of the course recipes: one frozen dataclass per checkpoint (read by ``recipes``, which trains
with them, and by ``course_models``, which checks a checkpoint against them).

Every recipe is a ``Recipe``: the data it trains on (``dataset``), the claims it holds out (``validation_queries``)
and its ``seed``; each kind of recipe adds its own typed fields, their defaults the course's values. Recipes that
share a base share its fields and values: the poly-encoder and ColBERT train on the bi-encoder recipe's pairs
(``PairRecipe``), the two distilled students on the same teacher-scored groups (``Distillation``).

A checkpoint's manifest stores the settings it was trained with (``Recipe.asdict``); ``course_models.verify``
reports it stale when they differ from these. Changing a value here therefore means retraining that checkpoint
(or, to try the change without replacing it, ``python -m xencoder_lab.recipes <recipe> --set KEY=VALUE --record``,
which calls ``Recipe.replace``: the command line's text converted to each field's type, unknown keys refused).

>>> sorted(SETTINGS)
['bi-encoder', 'colbert', 'cross-encoder', 'distilled-bi-encoder', 'poly-encoder', 'query-tower',
 'small-cross-encoder']
>>> SETTINGS["poly-encoder"].max_length == SETTINGS["bi-encoder"].max_length   # built on the bi-encoder's
True
>>> "pooling" in POLY_ENCODER.asdict()
False
>>> changed = BI_ENCODER.replace(lr="1e-4", negative_depth="null")     # as ``--set`` passes them: text
>>> changed.lr, changed.negative_depth, BI_ENCODER.lr
(0.0001, None, 5e-05)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

_NO = object()  # "does not fit the type"
_PYTHON_WORDS = {"None": None, "True": True, "False": False}


@dataclass(frozen=True)
class Recipe:
    """What every recipe has; its methods are the interface ``recipes`` and ``course_models`` use."""

    dataset: str = "scifact"  # a BEIR dataset: the recipe trains on its train split, measures on test
    validation_queries: int = 80  # training claims held out to choose on (best step, settings)
    seed: int = 0  # the split, the mined negatives, the batches and the initial weights

    def __post_init__(self):
        """Convert each field to its type (``5e-5`` from text to a float, 20 to 20.0 for a float field)."""
        for name, kind in _field_types(type(self)).items():
            object.__setattr__(self, name, _typed(getattr(self, name), kind, f"{type(self).__name__}.{name}"))

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The recipe's setting names, in order.

        Returns:
            the field names, e.g. ``("dataset", "validation_queries", "seed", ...)``.
        """
        return tuple(f.name for f in dataclasses.fields(cls))

    def asdict(self) -> dict[str, Any]:
        """The settings as a manifest stores them: a plain dict of JSON values (lists stay lists).

        Returns:
            ``{setting: value}``, a new dict.
        """
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Recipe:
        """A copy with ``changes``, each converted to its field's type; text is read as the command line writes
        values: JSON (``5e-5``, ``null``, ``true``, ``["title", "last sentence"]``), Python's ``None``, ``True``
        and ``False``, or the text itself for a text field; an int given for a float field becomes a float.

        Args:
            **changes: ``setting=value``; the settings must be the recipe's own (``keys()``).

        Returns:
            a new recipe of the same class; this one is left as it is (recipes are frozen).

        Raises:
            ValueError: a setting the recipe does not have (the message lists those it has), or a value that
                does not convert to the field's type.
        """
        for key in changes:
            if key not in self.keys():
                raise ValueError(f"{type(self).__name__} has no setting {key!r}; its settings: "
                                 f"{', '.join(self.keys())}.")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Recipe:
        """The settings a checkpoint's manifest stores, as this kind of recipe, to build its model: the stored
        values over the course's. A setting the recipe no longer has is left out (the model built cannot depend
        on it); ``course_models.verify`` reports any difference from the course's settings.

        Args:
            values: ``{setting: value}``, e.g. ``manifest["settings"]``.

        Returns:
            an instance of ``cls``, each value converted to its field's type.
        """
        return cls().replace(**{key: value for key, value in values.items() if key in cls.keys()})


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """``{field: type}`` of a recipe class, the annotations evaluated (``int | None``, ``list[str]``)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _typed(value: Any, kind: Any, where: str) -> Any:
    """``value`` as type ``kind``; text that is not of the kind is read as JSON, as a Python word (``None``) or
    as a number, the first reading that fits wins. Raises ValueError when none does."""
    readings = [value]
    if isinstance(value, str):
        text = value.strip()
        readings = []
        try:
            readings.append(json.loads(text))
        except json.JSONDecodeError:
            pass
        readings += [_PYTHON_WORDS[text]] if text in _PYTHON_WORDS else []
        readings.append(value)
        for number in (int, float):
            try:
                readings.append(number(text))
            except ValueError:
                pass
    for reading in readings:
        converted = _as(reading, kind)
        if converted is not _NO:
            return converted
    raise ValueError(f"{where} takes {_name(kind)}, not {value!r}.")


def _as(value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` without reading text (an int for a float field becomes a float), or ``_NO``."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(kind):
            converted = _as(value, option)
            if converted is not _NO:
                return converted
        return _NO
    if kind is type(None):
        return value if value is None else _NO
    if origin is list:
        (item,) = typing.get_args(kind)
        items = [_as(v, item) for v in value] if isinstance(value, (list, tuple)) else [_NO]
        return _NO if any(v is _NO for v in items) else items
    if isinstance(value, bool) and kind is not bool:  # True is an int in Python, not a count
        return _NO
    if kind is float and isinstance(value, (int, float)):
        return float(value)
    return value if isinstance(value, kind) else _NO


def _name(kind: Any) -> str:
    """How a type reads in an error message: ``float``, ``int | None``, ``str | list[str] | None``."""
    return kind.__name__ if isinstance(kind, type) else str(kind).replace("NoneType", "None")


@dataclass(frozen=True)
class PairRecipe(Recipe):
    """A model trained on the bi-encoder recipe's (claim, abstract) pairs and mined hard negatives, batch by
    batch with in-batch negatives (``training.train_bi_encoder``); the bi-encoder, poly-encoder and ColBERT."""

    max_length: int = 256  # tokens
    train_top_layers: int = 3  # embeddings and layers 0-2 frozen: faster steps, a 10 MB checkpoint
    steps: int = 104  # about two passes over the training pairs at batch 16
    batch_size: int = 16
    lr: float = 5e-5
    warmup: int = 10  # steps
    temperature: float = 0.05
    negative_depth: int | None = 10  # one negative drawn from the miner's first 10 kept; None: in-batch only
    negative_margin: float = 0.95  # a negative scores below 0.95 x the positive: likely false negatives skipped


@dataclass(frozen=True)
class BiEncoderRecipe(PairRecipe):
    """The fine-tuned bi-encoder (notebook 03): one shared tower, mean pooling."""

    pooling: str = "mean"


@dataclass(frozen=True)
class PolyEncoderRecipe(PairRecipe):
    """The poly-encoder (notebook 07): the bi-encoder recipe with LoRA and ``codes`` learned query views."""

    lr: float = 3e-4  # LoRA learns at about ten times a full fine-tune's rate
    validation: str = "by document"
    codes: int = 16  # m learned codes
    scale: float = 20.0  # the document's attention over the m views: softmax(20 * cosines)
    init_std: float = 1e-3  # codes start near 0: every view starts as the mean-pooled query (the bi-encoder)
    lora_rank: int = 16  # on the top 3 layers (train_top_layers): a 0.7 MB checkpoint
    codes_lr: float = 1e-3


@dataclass(frozen=True)
class ColBERTRecipe(PairRecipe):
    """ColBERT (notebook 08): the bi-encoder recipe's pairs, token vectors scored by MaxSim, LoRA."""

    lr: float = 3e-4
    temperature: float = 1.0  # MaxSim sums Lq cosines: scores already span tens of units
    validation: str = "by document"
    miner: str = "zero-shot bi-encoder"  # hard negatives as the bi-encoder recipe mines them
    dim: int = 128  # each token vector projected to 128 dimensions
    query_length: int = 32  # queries padded with [MASK] to 32 tokens (query augmentation)
    augment: bool = True
    lora_rank: int = 16  # on the top 3 layers (train_top_layers), and the projection: a 0.8 MB checkpoint
    projection_lr: float = 1e-3


@dataclass(frozen=True)
class QueryTowerRecipe(Recipe):
    """The query tower (notebook 03): the queries' tower fine-tuned against the zero-shot corpus embeddings.
    Validation claims are held out by document: no validation claim's abstract is a training positive."""

    pooling: str = "mean"
    max_length: int = 256  # tokens
    document_tower: str = "frozen"  # the zero-shot model embeds the corpus: its cached embeddings stay valid
    train_top_layers: int = 3  # of the query tower, as in the bi-encoder recipe: a 10 MB checkpoint
    steps: int = 312  # 12 passes over the training pairs at batch 32
    batch_size: int = 32
    lr: float = 1e-5  # chosen on validation by document among 3-layer runs (sweep.json)
    warmup: int = 16  # steps
    temperature: float = 0.05
    negatives: str = "the whole corpus, other relevant abstracts masked"
    evaluate_every: int = 26  # steps: once a pass; the best pass by validation nDCG@10 is kept
    corpus_queries: str | list[str] | None = None  # or "title", "last sentence" or both: label-free pairs


@dataclass(frozen=True)
class CrossEncoderRecipe(Recipe):
    """The course cross-encoder's first stage (notebook 04): a new ``[CLS]`` head over the fine-tuned bi-encoder's
    encoder, trained on listwise groups that bi-encoder mined (on a GPU: hours on 2 cores; ``EveryLengthRecipe``
    trains on from it)."""

    init: str = "bi-encoder"  # the encoder starts from the fine-tuned bi-encoder's weights
    max_length: int = 256  # claim + the first ~230 tokens of the abstract
    cosine_scale: float = 20.0  # warm start: score = 20 * cos(query tokens, document tokens) + head([CLS])
    train_top_layers: int = 6  # all six layers (embeddings frozen): a 21 MB checkpoint
    negatives: int = 15  # per claim: the fine-tuned bi-encoder's best-ranked non-relevant abstracts
    negative_margin: float | None = 0.95  # as in the bi-encoder recipe; None: no margin (``mine_groups``)
    loss: str = "listwise"
    steps: int = 1000
    groups_per_step: int = 4  # 4 claims x (1 positive + 15 negatives) = 64 pairs a step, about 5 passes
    lr: float = 5e-5
    head_lr: float = 1e-3
    warmup: int = 100  # steps
    rerank_depth: int = 20  # validation: rerank the fine-tuned bi-encoder's top 20
    evaluate_every: int = 50  # steps


@dataclass(frozen=True)
class EveryLengthRecipe(CrossEncoderRecipe):
    """The course cross-encoder (notebooks 04 and 05), its second stage, on a CPU: the first stage's model
    (``CROSS_ENCODER_FIRST_STAGE``, trained on a GPU) trained on with documents of every length (bare titles, first
    sentences, whole abstracts) among each claim's negatives and positives, and as many label-free groups (an
    uncited abstract's title -> its text, a MedQuAD question -> its answer). The first stage's warm-start cosine
    stays; its length bias is what the short documents teach away.

    The 60 MB budget holds one cross-encoder: only this stage's weights are committed. The first stage's manifest
    and settings sweep are (``data/checkpoints/cross-encoder-first-stage``); its weights are in the repository's
    history (``recipe_training.cross_encoder_start`` says where)."""

    init: str = "cross-encoder-first-stage"  # the whole first-stage model: encoder, [CLS] head, warm-start scale
    steps: int = 600  # 2 groups a step: about one pass over the 1,648 groups
    groups_per_step: int = 2
    lr: float = 3e-5
    warmup: int = 10  # steps
    bare_negatives: int = 4  # of a claim group's 15 mined negatives, this many cut to their bare title
    first_sentence_negatives: int = 2  # ... and this many to their title and first sentence
    first_sentence_positives: float = 0.2  # the share of claim groups whose positive is cut the same way
    title_queries: int = 412  # label-free groups: uncited abstracts' titles -> their texts (a quarter of all)
    medquad_queries: int = 412  # ... and MedQuAD questions -> their answers, BM25's answers from other documents
    spread_negatives: int = 0  # per group, after the hardest: drawn at random from the miner's top spread_depth
    spread_depth: int = 100
    rerank_depth: int = 100  # validation: rerank the fine-tuned bi-encoder's top 100, the pipeline's depth
    evaluate_every: int = 600  # steps: before training and at its end (80 claims x 100 pairs, 5 minutes each)


@dataclass(frozen=True)
class Distillation(Recipe):
    """What both students of notebook 06 learn from: groups scored once by the course cross-encoder. Validation
    claims are held out by document (``protocol.split_validation_by_document``)."""

    teacher: str = "cross-encoder"
    miner: str = "bi-encoder"  # the fine-tuned bi-encoder ranks the candidates negatives are drawn from
    negatives: int = 3  # per group: 1 positive + 3 negatives = 4 teacher logits
    negative_margin: float | None = 0.95  # None: no margin (``negatives.mine_groups``)
    title_queries: int = 600  # label-free groups: an uncited abstract's title as the query for its text
    spread_negatives: int = 0  # per group, after the hardest: drawn at random from the miner's top spread_depth
    spread_depth: int = 100


@dataclass(frozen=True)
class SmallCrossEncoderRecipe(Distillation):
    """The small cross-encoder (notebook 06): the teacher's bottom layers, distilled with MarginMSE."""

    layers: int = 2  # the teacher's bottom 2 of 6 layers, its head and scale: a 7 MB checkpoint
    max_length: int = 128  # half the teacher's: claim + the first ~100 tokens of the abstract
    loss: str = "margin_mse"
    steps: int = 600
    groups_per_step: int = 8
    lr: float = 1e-4
    head_lr: float = 1e-3
    warmup: int = 60  # steps
    rerank_depth: int = 100  # validation: rerank the fine-tuned bi-encoder's top 100, the depth it serves at
    evaluate_every: int = 100  # steps
    test_depth: int = 100  # the manifest's test figures: the pipeline's rerank depth


@dataclass(frozen=True)
class DistilledBiEncoderRecipe(Distillation):
    """The distilled bi-encoder (notebook 06): a query tower taught by the cross-encoder's scores."""

    pooling: str = "mean"
    max_length: int = 256  # tokens
    document_tower: str = "frozen"  # as in the query tower: the zero-shot model's corpus embeddings stay valid
    train_top_layers: int = 3  # of the query tower: a 10 MB checkpoint
    loss: str = "kl"  # the teacher's softmax over each group (MarginMSE and MSE: variants.json)
    scale: float = 20.0  # student score = 20 * cos(q, d), the bi-encoder's 1 / temperature
    steps: int = 120  # two thirds of a pass over the groups: about 8 minutes on 2 cores
    groups_per_step: int = 8
    lr: float = 5e-5
    warmup: int = 12  # steps
    evaluate_every: int = 12  # steps: validation by document; the best evaluation is kept


BI_ENCODER = BiEncoderRecipe()
POLY_ENCODER = PolyEncoderRecipe()
COLBERT = ColBERTRecipe()
QUERY_TOWER = QueryTowerRecipe()
CROSS_ENCODER_FIRST_STAGE = CrossEncoderRecipe()
CROSS_ENCODER = EveryLengthRecipe()
DISTILLATION = Distillation()  # the students' shared part, not a recipe of its own
SMALL_CROSS_ENCODER = SmallCrossEncoderRecipe()
DISTILLED_BI_ENCODER = DistilledBiEncoderRecipe()

SETTINGS: dict[str, Recipe] = {
    "bi-encoder": BI_ENCODER,
    "cross-encoder": CROSS_ENCODER,
    "query-tower": QUERY_TOWER,
    "small-cross-encoder": SMALL_CROSS_ENCODER,
    "distilled-bi-encoder": DISTILLED_BI_ENCODER,
    "poly-encoder": POLY_ENCODER,
    "colbert": COLBERT,
}
CROSS_ENCODERS = ("cross-encoder", "small-cross-encoder")  # the recipes whose model scores pairs

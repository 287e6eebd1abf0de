"""Checks for notebook 04's exercises: a pair's token ids cut to ``max_length`` (against ``CrossEncoder.features``),
the cost of reading 128 tokens instead of 256 (a read-off), the listwise loss (``losses.listwise_loss``) and
binary cross-entropy on the logits of groups (``losses.group_bce_loss``)."""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

import torch

from xencoder_lab import losses, metrics
from xencoder_lab.cross_encoder import CrossEncoder, rerank, score_candidates
from xencoder_lab.exercises import Case, check, check_answer, screen

CLS, SEP = 101, 102  # BERT's ids for [CLS] and [SEP], as in all-MiniLM-L6-v2's vocabulary
SHORT = 128  # exercise 2's max_length


@cache
def _number_tokenizer():
    """A BERT-style fast tokenizer whose words are numbers: the word "2001" is token id 2001, [CLS] 101 and
    [SEP] 102, pairs laid out as ``[CLS] A [SEP] B [SEP]`` with token types 0 then 1. It lets lists of token ids
    go through the package's own ``CrossEncoder.features`` without loading a model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 100, "[CLS]": CLS, "[SEP]": SEP} | {str(i): i for i in range(1000, 10_000)}
    words = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)])
    return PreTrainedTokenizerFast(
        tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def package_pair_input(query_ids: list[int], doc_ids: list[int], max_length: int) -> dict[str, list[int]]:
    """The package's pair for two lists of token ids (1000 to 9999): ``CrossEncoder.features`` (``truncation=
    True``, longest first) with the ids written as words of ``_number_tokenizer``.

    >>> package_pair_input([2001, 2002], [3001, 3002, 3003], max_length=7)
    {'input_ids': [101, 2001, 2002, 102, 3001, 3002, 102], 'token_type_ids': [0, 0, 0, 0, 1, 1, 1]}
    """
    model = SimpleNamespace(tokenizer=_number_tokenizer(), max_length=max_length)
    features = CrossEncoder.features(model, [" ".join(map(str, query_ids))], [" ".join(map(str, doc_ids))])
    return {"input_ids": features["input_ids"][0], "token_type_ids": features["token_type_ids"][0]}


def ids(start: int, n: int) -> list[int]:
    """``n`` token ids from ``start`` on: a text of ``n`` tokens."""
    return list(range(start, start + n))


def check_pair_input(pair_input) -> bool | None:
    """Exercise 1: ``pair_input(query_ids, doc_ids, max_length)``, ``[CLS] q [SEP] d [SEP]`` and its token types,
    at most ``max_length`` tokens (the longer text cut from its end, a token at a time)."""
    claim, abstract = ids(2001, 4), ids(3001, 40)
    cases = [
        Case("a pair that fits", (claim, abstract[:6], 16),
             hint="lay the pair out as [CLS] query [SEP] document [SEP]; token type 0 for [CLS], the query and the "
                  "first [SEP], 1 for the document and the last [SEP]"),
        Case("a pair of exactly max_length tokens", (claim, abstract[:9], 16),
             hint="max_length counts every token, [CLS] and both [SEP]s included: this pair fits as it is, nothing "
                  "is cut"),
        Case("a document one token too long", (claim, abstract[:10], 16),
             hint="the pair must end up exactly max_length tokens long, [CLS] and both [SEP]s included: keep the whole "
                  "query and drop the document's last token"),
        Case("a long document", (claim, abstract, 24),
             hint="keep cutting the document from its end until the pair fits, however many tokens that takes: its "
                  "first tokens (the title) stay"),
        # 16 tokens of room, an even number: whichever text the tokenizer cuts on a tie, each keeps 8
        Case("a query longer than half the room", (ids(2001, 12), abstract, 19),
             hint="cut the longer text a token at a time until the pair fits: a long query is cut too, and here the "
                  "query and the document end with 8 tokens each"),
    ]
    return check("Exercise 1 (the pair, cut to fit)", pair_input, package_pair_input, cases)


def check_short_pairs(answer: float | None, test, first_stage: dict[str, list[str]], depth: int) -> bool | None:
    """Exercise 2: nDCG@10 of ``first_stage``'s top ``depth`` on ``test`` (the notebook's section 7) reranked by
    the course checkpoint reading at most 128 tokens per pair. A value that cannot be an nDCG@10 is turned away
    before the model is loaded; the reranking takes minutes on a first run (then the logits are cached)."""
    title = "Exercise 2 (what the cut costs)"
    verdict = screen(title, answer)
    if verdict is not True:
        return verdict
    from xencoder_lab import course_models

    short = course_models.load_cross_encoder()
    short.max_length = SHORT
    scores = score_candidates(short, test, [first_stage], depth=depth, show_progress=False)
    expected = metrics.evaluate(rerank(first_stage, scores, depth), test.qrels, ["ndcg@10"])["ndcg@10"]
    return check_answer(title, answer, expected, 1e-3,
                        f"Set the checkpoint's .max_length = {SHORT}, rerank the bi-encoder's top {depth} "
                        "(score_candidates, then rerank) and evaluate nDCG@10 on test.qrels")


def check_listwise_cross_entropy(listwise_cross_entropy) -> bool | None:
    """Exercise 3: ``listwise_cross_entropy(logits)``, logits (G, 1 + negatives) with the positive in column 0."""
    cases = [
        Case("one group of equal logits", (torch.zeros(1, 4),),
             hint="each row is one group: the softmax runs along the row (dim=1), so four equal logits cost log 4"),
        Case("a negative above the positive", (torch.tensor([[1.0, 3.0, 0.0]]),),
             hint="the positive is column 0 of each row, whatever its logit: the loss is -log softmax(row)[0]"),
        Case("two groups", (torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]]),),
             hint="average the groups' losses: the mean over groups, not their sum"),
        Case("large logits", (torch.tensor([[100.0, 0.0, -50.0], [0.0, 120.0, 0.0]]),),
             hint="in float32 exp(100) is inf and a softmax share of e^-120 rounds to 0: use torch.log_softmax (or "
                  "logsumexp), never the log of a softmax computed by hand"),
    ]
    return check("Exercise 3 (the listwise loss)", listwise_cross_entropy, losses.listwise_loss, cases)


def check_group_bce(group_bce) -> bool | None:
    """Exercise 4: ``group_bce(logits, pos_weight=None)``, binary cross-entropy on logits (G, 1 + negatives),
    label 1 for column 0, averaged over all pairs."""
    cases = [
        Case("two groups at logit 0", (torch.zeros(2, 3),),
             hint="take the mean over every pair of every group: at logit 0 each pair costs log 2, and so does the "
                  "mean"),
        Case("a group with distinct logits", (torch.tensor([[2.0, -1.0, 0.5]]),),
             hint="label 1 for column 0 (the positive) and 0 for every other column: a pair costs "
                  "-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]"),
        Case("pos_weight = 3", (torch.tensor([[2.0, -1.0, 0.5], [-0.5, 1.0, -2.0]]),),
             kwargs={"pos_weight": 3.0},
             hint="pos_weight multiplies the positive's term only, and the mean still divides by the number of "
                  "pairs, not by the sum of the weights"),
        Case("confident logits", (torch.tensor([[30.0, 20.0, -25.0], [-100.0, 0.0, 0.0]]),),
             hint="work on the logits, max(z, 0) - z y + log(1 + exp(-|z|)): in float32 sigmoid(20) is exactly 1.0, "
                  "so the route through sigmoid caps the loss at 100 or makes it inf"),
    ]
    return check("Exercise 4 (BCE on logits)", group_bce, losses.group_bce_loss, cases)

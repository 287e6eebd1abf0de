"""The BM25 baseline: lexical retrieval on ``rank_bm25`` with a documented tokenizer (built in notebook 01).

For a query q with terms t and a document d of length |d| (average length avgdl over the corpus, N documents):

    score(q, d) = sum_t IDF(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    IDF(t)      = log((N - n(t) + 0.5) / (n(t) + 0.5))                n(t): documents that contain t

rank_bm25's ``BM25Okapi`` floors a negative IDF (a term in more than half the documents) at 0.25 times the
mean IDF; Lucene instead adds 1 inside the log. Either way, very common terms count for little.

k1 = 0.9 and b = 0.4 are Pyserini's defaults, the setting behind its published BEIR figures.

The tokenizer decides more than the formula does. ``tokenize`` does what Lucene's English analyzer does:
casefold, split on anything but letters and digits, drop Lucene's 33 English stopwords, Porter-stem
(Snowball's ``porter``). On SciFact test that moves nDCG@10 from 0.649 (lowercase words only) to 0.677, next
to Pyserini's 0.679 (notebook 01 measures each step).

>>> tokenize("Vitamin D supplements are not improving bone density.")
['vitamin', 'd', 'supplement', 'improv', 'bone', 'densiti']

Letters and digits are Unicode ones, as in Lucene's standard tokenizer: the text is NFKC-normalised (a
full-width digit becomes an ASCII one, the ligature "ﬁ" becomes "fi", "m²" becomes "m2", the micro sign the Greek
mu) and casefolded, and a word is a run of letters and digits (with any combining marks that follow them); the
underscore and every other symbol split. Only words of Latin letters (and digits) are English words: they alone
are stemmed, while a Greek letter stays a word of its own, as it is. ASCII text tokenizes exactly as it did when
only ``[a-z0-9]`` counted. In SciFact, 582 of the 5,183 abstracts and 6 of the 300 test claims hold other
letters (mostly Greek: β, α, γ, κ; a few accents); keeping them moved nDCG@10 on the test claims from 0.6780 to
0.6771 (two claims' nDCG@10 changed). CACM is all ASCII: nothing changes there.

>>> tokenize("Café crème and α-synuclein in ＩＬ-６ ﬁbroblasts")
['café', 'crème', 'α', 'synuclein', 'il', '6', 'fibroblast']

Scripts written without spaces between words (Chinese, Japanese, Thai; Lao, Khmer, Myanmar) have no word
boundaries a regular expression can find: a whole run would be one token, which a query matches only when it
holds the same run whole. Like Lucene's ``CJKBigramFilter`` (which treats Korean Hangul the same way, and so
does this), each such run becomes its overlapping pairs of characters instead (a run of one character stays one
token), so a query shares the document's bigrams wherever it shares two adjacent characters. (A Thai
vowel sign or tone mark is a character of its own here; Lucene's Thai analyzer finds words with a dictionary.)

>>> tokenize("维生素D缺乏 和 肺结核")
['维生', '生素', 'd', '缺乏', '和', '肺结', '结核']

>>> texts = ["the cat sat", "a dog barked", "cats and dogs", "birds sing", "fish swim", "cows moo"]
>>> bm25 = BM25(texts, ids=["c", "d", "cd", "b", "f", "m"])
>>> ids, scores = bm25.search(["cat"], k=2)
>>> ids
[['c', 'cd']]
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import snowballstemmer
from rank_bm25 import BM25Okapi

# Lucene's EnglishAnalyzer stopwords (org.apache.lucene.analysis.en.EnglishAnalyzer.ENGLISH_STOP_WORDS_SET).
LUCENE_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
_ASCII_WORD = re.compile(r"[a-z0-9]+")  # ASCII text: Unicode's letters and digits reduce to these
# Scripts written without spaces between words, split into character bigrams: Han (with CJK radicals, iteration
# marks and the supplementary planes' ideographs), Hiragana, Katakana, Hangul, Thai, Lao, Khmer, Myanmar (their
# letters and vowel signs; their digits stay digits).
_NO_SPACE = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003ffff"  # Han
    "\u3041-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"  # Hiragana, Katakana
    "\u1100-\u11ff\u3131-\u318e\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"  # Hangul
    "\u0e01-\u0e3a\u0e40-\u0e4e\u0e81-\u0ece\u0edc-\u0edf"  # Thai, Lao
    "\u1780-\u17d3\u17d7\u17dc\u17dd\u1000-\u103f\u1050-\u108f"  # Khmer, Myanmar
)
_porter = snowballstemmer.stemmer("porter")


@lru_cache(maxsize=1)
def _unicode_word():
    """The pattern of a token in non-ASCII text, built on first use (listing the combining marks takes 20-30 ms):
    a run of characters of a script without spaces, or a letter or digit followed by letters, digits and
    combining marks (a mark that NFKC cannot fold into its letter, e.g. a Devanagari vowel sign)."""
    marks = [c for c in [*range(0x20000), *range(0xE0100, 0xE01F0)] if unicodedata.category(chr(c))[0] == "M"]
    spans, start = [], 0
    for i in range(1, len(marks) + 1):
        if i == len(marks) or marks[i] != marks[i - 1] + 1:
            spans.append(f"{chr(marks[start])}-{chr(marks[i - 1])}")
            start = i
    mark = "".join(spans)  # ranges of raw characters: no mark is special inside [...]
    return re.compile(rf"([{_NO_SPACE}]+)|[^\W_{_NO_SPACE}](?:[^\W_{_NO_SPACE}]|[{mark}])*")


def _latin(word: str) -> bool:
    """Whether every letter of ``word`` is a Latin one (digits and marks may come with them)."""
    return all(not c.isalpha() or unicodedata.name(c, "").startswith("LATIN") for c in word)


@lru_cache(maxsize=None)
def _stem(word: str) -> str:
    """Porter's stem of an English word (one of Latin letters); any other word as it is."""
    if word.isascii() or _latin(word):
        return _porter.stemWord(word)  # cached: a corpus repeats its vocabulary many times over
    return word


def _words(text: str) -> list[str]:
    """Casefolded words of NFKC-normalised text, runs of the scripts without spaces as overlapping bigrams."""
    if text.isascii():  # NFKC leaves ASCII as it is, and casefolding it is lowercasing it
        return _ASCII_WORD.findall(text.lower())
    words = []
    for match in _unicode_word().finditer(unicodedata.normalize("NFKC", text).casefold()):
        run = match.group(1)
        if run is None:
            words.append(match.group())
        elif len(run) == 1:
            words.append(run)
        else:
            words.extend(run[i : i + 2] for i in range(len(run) - 1))
    return words


def tokenize(text: str, stopwords: bool = True, stem: bool = True) -> list[str]:
    """Casefolded Unicode words (letters and digits), optionally without Lucene's stopwords and with English words
    Porter-stemmed; Chinese, Japanese, Korean and Thai as character bigrams (see the module docstring).

    Args:
        text: any text.
        stopwords: drop Lucene's 33 English stopwords.
        stem: Porter-stem English (Latin-letter) words.

    Returns:
        the terms, in text order.

    >>> tokenize("Cells were dividing rapidly", stem=False)
    ['cells', 'were', 'dividing', 'rapidly']
    >>> tokenize("Cells were dividing rapidly")
    ['cell', 'were', 'divid', 'rapidli']
    """
    words = _words(text)
    if stopwords:
        words = [w for w in words if w not in LUCENE_STOPWORDS]
    if stem:
        words = [_stem(w) for w in words]
    return words


class BM25:
    """BM25 over a list of document texts; ``search`` returns document ids and scores, best first.

    Args:
        texts: the N documents' texts.
        ids: one id per text (default: ``"0"``, ``"1"``, ...).
        k1: term-frequency saturation (see the formula above).
        b: length normalisation, 0 (none) to 1 (full).
        tokenizer: text -> terms, for documents and queries alike.

    Raises:
        ValueError: no texts, or not one id per text.
    """

    def __init__(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        k1: float = 0.9,
        b: float = 0.4,
        tokenizer: Callable[[str], list[str]] = tokenize,
    ):
        if len(texts) == 0:
            raise ValueError("the corpus is empty: BM25 needs at least one document to index.")
        self.ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
        if len(self.ids) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(self.ids)} ids; give one id per text.")
        self.tokenizer = tokenizer
        self.index = BM25Okapi([tokenizer(t) for t in texts], k1=k1, b=b)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for one query, in corpus order: shape (N,).

        Args:
            query: one query text.

        Returns:
            (N,) float array; all 0 (with a warning) when the query has no terms after tokenizing.

        Raises:
            ValueError: an empty query.
        """
        if not query or not query.strip():
            raise ValueError("the query is empty: give a query with at least one word.")
        terms = self.tokenizer(query)
        if not terms:
            if self.tokenizer is not tokenize:
                why = "the tokenizer returned none"
            elif _words(query):
                why = "its words are all English stopwords"
            else:
                why = "it holds no letter or digit"
            warnings.warn(f"the query {query[:60]!r} has no terms left after tokenizing ({why}): every document "
                          "scores 0.", stacklevel=3)
        return self.index.get_scores(terms)

    def search(self, queries: Sequence[str], k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query: (ids, one list per query; scores, shape (Q, k)).

        Ties keep corpus order, so results repeat run to run (a query with no terms, e.g. of stopwords only,
        gets the first ``k`` documents, all scored 0, and a warning).

        Args:
            queries: Q query texts.
            k: documents per query, 1 to N.

        Returns:
            ``(ids, scores)``: Q lists of k document ids, best first, and scores (Q, k) float32.

        Raises:
            ValueError: ``k`` outside 1..N, or an empty query.
        """
        if not 1 <= k <= len(self):
            raise ValueError(f"k={k} but the corpus has {len(self)} documents: use 1 <= k <= {len(self)}.")
        ids, scores = [], np.zeros((len(queries), k), dtype=np.float32)
        for row, query in enumerate(queries):
            s = self.scores(query)  # (N,)
            top = np.argsort(-s, kind="stable")[:k]  # (k,)
            ids.append([self.ids[i] for i in top])
            scores[row] = s[top]
        return ids, scores

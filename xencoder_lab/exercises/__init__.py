"""Checks for the notebooks' exercises: a learner's function against the package's, on inputs chosen so that the
usual mistakes show, with what is wrong said in words.

Each notebook's checks live in ``exercises.nbNN``; a stuck learner finds one solution per exercise in
``xencoder_lab.solutions.nbNN`` (a check never prints or contains the answer's code). An exercise whose body
still raises ``NotImplementedError`` (or is ``...``) is reported as not done: a notebook runs top to bottom
before anything is filled in.

A check is a list of cases, run in order; the first case where the learner's output differs from the package's
prints that case's hint, so the cases go from the plain input to the one where a named mistake shows:

>>> cases = [Case("one query", (3,), hint="square the number"), Case("a negative", (-2,), hint="keep the sign")]
>>> check("Exercise 0 (cube)", lambda x: x ** 3, lambda x: x ** 3, cases)
Exercise 0 (cube): correct, on 2 cases (one query, a negative).
True
>>> check("Exercise 0 (cube)", lambda x: abs(x) ** 3, lambda x: x ** 3, cases)
Exercise 0 (cube): not yet. On a negative: keep the sign. Expected -8, got 8.
False
>>> def cube(x):
...     raise NotImplementedError
>>> check("Exercise 0 (cube)", cube, lambda x: x ** 3, cases) is None
Exercise 0 (cube): not done yet. Write the function's body in the cell above, run it, then run this cell again.
True
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

NOT_DONE = "not done yet. Write the function's body in the cell above, run it, then run this cell again."


@dataclass
class Case:
    """One input of a check: ``args`` and ``kwargs`` for both functions, a short ``name`` printed with the verdict
    and the ``hint`` printed when the learner's output differs on this input (the mistake this case exposes)."""

    name: str
    args: tuple
    hint: str
    kwargs: dict = field(default_factory=dict)


def _show(value: Any) -> str:
    """A short, readable form of a value for a verdict (floats to 4 decimals, tensors by shape when large)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = float(value)
    if isinstance(value, np.ndarray):
        if value.size > 8:
            return f"an array of shape {tuple(value.shape)}"
        return np.array2string(value, precision=4, suppress_small=True)
    if isinstance(value, float):
        return f"{value:.4f}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def difference(got: Any, want: Any, atol: float = 1e-4) -> str | None:
    """Why ``got`` is not ``want`` (shapes, types, values up to ``atol``), or None when they agree.

    >>> difference([0.5, 1.0], (0.5, 1.0)) is None
    True
    >>> difference(torch.zeros(2, 3), torch.zeros(3))
    'the shape is (2, 3), expected (3,)'
    >>> difference(0.3, 0.30001) is None
    True
    """
    if isinstance(want, (torch.Tensor, np.ndarray)) or isinstance(got, (torch.Tensor, np.ndarray)):
        try:
            g = got.detach().cpu().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got, float)
        except (TypeError, ValueError):
            return f"expected an array, got {type(got).__name__}"
        w = want.detach().cpu().double().numpy() if isinstance(want, torch.Tensor) else np.asarray(want, float)
        if g.shape != w.shape:
            return f"the shape is {tuple(g.shape)}, expected {tuple(w.shape)}"
        if not np.isfinite(g).all() and np.isfinite(w).all():
            return "it has NaN or infinite values"
        return None if np.allclose(g, w, atol=atol, rtol=1e-4) else "the values differ"
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping):
            return f"expected a dict, got {type(got).__name__}"
        if set(got) != set(want):
            return f"the keys differ: expected {sorted(want)[:6]}, got {sorted(got)[:6]}"
        for key in want:
            if difference(got[key], want[key], atol) is not None:
                return f"the value for {key!r} differs"
        return None
    if isinstance(want, (list, tuple)) and not isinstance(got, str):
        if not isinstance(got, (list, tuple, np.ndarray, torch.Tensor)):
            return f"expected a list, got {type(got).__name__}"
        if len(got) != len(want):
            return f"the length is {len(got)}, expected {len(want)}"
        return None if all(difference(g, w, atol) is None for g, w in zip(got, want)) else "the values differ"
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return None if got == want else "the values differ"
    if isinstance(want, (int, float)):
        try:
            value = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {type(got).__name__}"
        return None if math.isclose(value, want, abs_tol=atol, rel_tol=1e-6) else "the values differ"
    return None if got == want else "the values differ"


def check(title: str, learner: Callable, reference: Callable, cases: Sequence[Case], atol: float = 1e-4) -> bool | None:
    """Run ``learner`` and ``reference`` on each case in order; print one verdict.

    Args:
        title: how the verdict starts, e.g. ``"Exercise 1 (recall@k)"``.
        learner: the learner's function.
        reference: the package's finished function (same signature).
        cases: inputs, plain first, each with the hint for the mistake it exposes.
        atol: absolute tolerance for numbers and arrays.

    Returns:
        True when every case agrees, False at the first that does not (its hint printed), None when the learner's
        function is not written yet (it raises ``NotImplementedError`` or returns None).
    """
    for case in cases:
        want = reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        try:
            got = learner(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except NotImplementedError:
            print(f"{title}: {NOT_DONE}")
            return None
        except Exception as error:  # the learner's bug, reported in words
            print(f"{title}: not yet. On {case.name} your function raised {type(error).__name__}: {error}. "
                  f"{case.hint}")
            return False
        if got is None and want is not None:
            print(f"{title}: {NOT_DONE}" if case is cases[0] else
                  f"{title}: not yet. On {case.name} your function returned None.")
            return None if case is cases[0] else False
        why = difference(got, want, atol)
        if why is not None:
            if why == "the values differ":
                shown = f"Expected {_show(want)}, got {_show(got)}."
            else:
                shown = why[0].upper() + why[1:] + "."
            print(f"{title}: not yet. On {case.name}: {case.hint}. {shown}")
            return False
    names = ", ".join(case.name for case in cases)
    print(f"{title}: correct, on {len(cases)} cases ({names}).")
    return True


def check_answer(title: str, answer: Any, expected: float, tolerance: float, hint: str) -> bool | None:
    """A read-off question: ``answer`` against ``expected`` (computed by the course's code, never typed in).

    >>> check_answer("Exercise 3", None, 0.5, 0.01, "read the table")
    Exercise 3: not answered yet. Put your answer in the variable above and run this cell again.
    >>> check_answer("Exercise 3", 0.497, 0.5, 0.005, "read the table")
    Exercise 3: correct.
    True
    """
    if answer is None:
        print(f"{title}: not answered yet. Put your answer in the variable above and run this cell again.")
        return None
    try:
        ok = abs(float(answer) - expected) <= tolerance
    except (TypeError, ValueError):
        print(f"{title}: not yet. The answer should be a number, got {answer!r}.")
        return False
    print(f"{title}: correct." if ok else f"{title}: not yet. {hint}.")
    return ok


def screen(title: str, answer: Any, what: str = "an nDCG@10", closed: bool = False) -> bool | None:
    """A read-off's answer, looked at before its check computes anything: None when not answered yet, False when
    it cannot be ``what`` (a number between 0 and 1, ends included when ``closed``; a boolean is no number),
    True to go on. Each verdict but True is printed.

    >>> screen("Exercise 3", True)
    Exercise 3: not yet. The answer is an nDCG@10, a number between 0 and 1; got True.
    False
    >>> screen("Exercise 3", 0.7)
    True
    """
    if answer is None:
        return check_answer(title, None, 0.0, 0.0, "")
    inside = isinstance(answer, numbers.Real) and (0 <= answer <= 1 if closed else 0 < answer < 1)
    if isinstance(answer, bool) or not inside:
        print(f"{title}: not yet. The answer is {what}, a number between 0 and 1; got {answer!r}.")
        return False
    return True

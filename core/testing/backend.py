"""Conformance checks of a backend (DESIGN.md, "Backend contract"; :class:`hotmess.core.backend.Backend`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hotmess.core.types import FINISH_REASONS, DrawResult, SampleRequest, SamplingParams
from hotmess.testing._common import check_provenance, fail

#: A prompt that invites a long chain of thought, so that a small budget is hit.
DEFAULT_PROMPT = (
    "Question: A farmer has 17 sheep. All but 9 run away. How many sheep are left?\n"
    "A. 8\nB. 9\nC. 17\nD. 26\n"
    "Think step by step, then write 'Answer:' followed by the letter.\nReasoning:"
)
LABELS = ("A", "B", "C", "D")


def conformance_requests(
    *, chat: bool = False, budget: int = 8, max_tokens: int = 4, prompt: str | None = None,
    temperature: float = 1.0,
) -> list[SampleRequest]:
    """The requests :func:`check_backend` sends: three requests of 1, 3 and 2 draws with
    distinct seeds (the last asks for option log-probs), all with reasoning budget
    ``budget`` (tokens), and one request of 3 draws with a budget of 1 token (at least one of
    its draws must be capped)."""
    text = prompt or DEFAULT_PROMPT
    body = {"messages": ({"role": "user", "content": text},)} if chat else {"prompt": text}
    sampling = SamplingParams(temperature=temperature, top_p=1.0, top_k=0, max_tokens=max_tokens)
    common = dict(answer_prefix="Answer:", option_labels=LABELS, sampling=sampling, **body)
    return [
        SampleRequest(question_id="conformance-1", seeds=(101,), budget=budget, **common),
        SampleRequest(question_id="conformance-3", seeds=(201, 202, 203), budget=budget, **common),
        SampleRequest(question_id="conformance-2", seeds=(301, 302), budget=budget, want_logprobs=True, **common),
        SampleRequest(question_id="conformance-capped", seeds=(401, 402, 403), budget=1, **common),
    ]


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def check_results(
    requests: Sequence[SampleRequest], results: Any, *, what: str = "backend",
    allow_errors: bool = False, seeded: bool = True, strict_budget: bool = True,
) -> None:
    """Check what ``backend.sample(requests)`` returned against the contract.

    Checks: one list per request, exactly ``request.n_draws`` :class:`DrawResult` per list;
    ``finish_reason`` in ``FINISH_REASONS`` and ``error`` set iff it is ``"error"``; ``text``
    and ``reasoning`` strings; token counts non-negative ints or ``None`` (unknown: the
    documented representation, NaN in the cube) with ``reasoning_tokens <= output_tokens``
    and ``reasoning_tokens <= budget`` where both are known, and ``== budget`` where the
    finish reason is ``"budget"`` (``strict_budget``); the seed of draw ``j``
    echoed as ``seed`` (``None`` allowed if not ``seeded``); log-probs, where returned, a
    dict of option label -> finite or ``-inf`` log-probability ``<= 0``.

    Raises
    ------
    AssertionError
        The first violation, naming the request and draw.
    """
    if not isinstance(results, list | tuple):
        fail(what, f"sample() must return a list (one per request), got {type(results).__name__}")
    if len(results) != len(requests):
        fail(what, f"sample() returned {len(results)} results for {len(requests)} requests")
    for req, row in zip(requests, results, strict=True):
        where = f"{what}, request {req.question_id!r}"
        if not isinstance(row, list | tuple):
            fail(where, f"each result must be a list of DrawResult, got {type(row).__name__}")
        if len(row) != req.n_draws:
            fail(where, f"returned {len(row)} draws for {req.n_draws} seeds {req.seeds} "
                        "(exactly one DrawResult per draw, a failed draw included)")
        for j, (seed, r) in enumerate(zip(req.seeds, row, strict=True)):
            w = f"{where}, draw {j}"
            if not isinstance(r, DrawResult):
                fail(w, f"not a DrawResult but {type(r).__name__}")
            if r.finish_reason not in FINISH_REASONS:
                fail(w, f"finish_reason {r.finish_reason!r} is not one of {FINISH_REASONS}")
            if r.finish_reason == "error":
                if not r.error:
                    fail(w, "finish_reason 'error' without an error message")
                if not allow_errors:
                    fail(w, f"the draw failed on a valid request: {r.error}")
            elif r.error:
                fail(w, f"error {r.error!r} set but finish_reason is {r.finish_reason!r}")
            if not isinstance(r.text, str) or not isinstance(r.reasoning, str):
                fail(w, f"text and reasoning must be str, got {type(r.text).__name__} and {type(r.reasoning).__name__}")
            counts = (r.output_tokens, r.reasoning_tokens)
            if not all(c is None or _is_count(c) for c in counts):
                fail(w, f"token counts must be non-negative ints, or None where unknown; got "
                        f"output_tokens={r.output_tokens!r}, reasoning_tokens={r.reasoning_tokens!r}")
            if None not in counts and r.reasoning_tokens > r.output_tokens:
                fail(w, f"reasoning_tokens={r.reasoning_tokens} > output_tokens={r.output_tokens} "
                        "(output_tokens counts all generated tokens, reasoning included)")
            if req.budget is not None and r.finish_reason != "error" and r.reasoning_tokens is not None:
                if r.reasoning_tokens > req.budget:
                    fail(w, f"reasoning_tokens={r.reasoning_tokens} exceeds the budget of {req.budget} tokens")
                if strict_budget and r.finish_reason == "budget" and r.reasoning_tokens != req.budget:
                    fail(w, f"finish_reason 'budget' but reasoning_tokens={r.reasoning_tokens}, not the "
                            f"budget {req.budget} (a capped draw used the whole budget)")
            if r.seed is None:
                if seeded:
                    fail(w, f"seed not echoed (None); expected {seed}")
            elif r.seed != seed:
                fail(w, f"seed {r.seed!r} echoed for draw seed {seed} (draw order must follow request.seeds)")
            if r.logprobs is not None:
                if not isinstance(r.logprobs, dict):
                    fail(w, f"logprobs must be a dict label -> log-probability, got {type(r.logprobs).__name__}")
                for k, v in r.logprobs.items():
                    if k not in req.option_labels:
                        fail(w, f"logprobs has label {k!r}, not one of the request's option_labels {req.option_labels}")
                    if not isinstance(v, int | float) or math.isnan(v) or v > 1e-6:
                        fail(w, f"logprobs[{k!r}] = {v!r} is not a log-probability (<= 0, not NaN)")
            if not isinstance(r.latency_s, int | float):
                fail(w, f"latency_s must be a float (seconds), got {type(r.latency_s).__name__}")


def _signature(r: DrawResult) -> tuple:
    return (r.text, r.reasoning, r.output_tokens, r.reasoning_tokens, r.finish_reason)


def check_backend(
    backend: Any, *, chat: bool = False, budget: int = 8, max_tokens: int = 4,
    prompt: str | None = None, deterministic: bool | None = None, seeded: bool = True,
    strict_budget: bool = True, allow_errors: bool = False, close: bool = True,
) -> list[list[DrawResult]]:
    """Run a backend through the backend contract.

    Sends :func:`conformance_requests` (draw counts 1, 3, 2 and 3; budgets ``budget`` and
    1 token) in one ``sample`` call and checks every draw with :func:`check_results`; then

    * at least one draw of the 1-token-budget request ends with finish reason ``"budget"``
      (the cap is enforced and reported);
    * where the backend is deterministic (``deterministic``, default the backend's
      ``deterministic`` attribute, else False), the same requests again give the same text,
      reasoning, token counts and finish reasons draw by draw;
    * ``sample([])`` returns an empty list;
    * ``info()`` is a dict of str -> str without credentials or home-directory paths;
    * ``close()`` can be called twice (if ``close``; the backend is unusable afterwards).

    Parameters
    ----------
    backend : hotmess.core.backend.Backend
        A built backend (e.g. ``plugins.create("backends", name, model_spec, **options)``).
    chat : bool
        Send chat messages instead of a raw prompt (chat models).
    budget : int
        Reasoning budget of the main requests (tokens); keep it small, the kit samples
        12 draws (24 if deterministic).
    max_tokens : int
        ``SamplingParams.max_tokens`` (answer tokens after the reasoning).
    prompt : str, optional
        Replaces the default multiple-choice prompt (raw text, or the user turn if ``chat``).
    seeded : bool
        The backend honours per-draw seeds; if False, ``DrawResult.seed`` may be None.
    strict_budget : bool
        A draw with finish reason ``"budget"`` reports exactly ``budget`` reasoning tokens,
        and the 1-token request must be capped (False for vendor APIs whose thinking budget
        is advisory).
    allow_errors : bool
        Accept draws that failed (``finish_reason="error"``) on the valid conformance requests.

    Returns
    -------
    list of list of DrawResult
        The first ``sample`` call's results, for further checks of your own.

    Raises
    ------
    AssertionError
        A contract violation (the message names the request, draw and rule).
    """
    what = f"backend {getattr(backend, 'name', type(backend).__name__)!r}"
    if not callable(getattr(backend, "sample", None)):
        fail(what, "has no sample(requests) method")
    requests = conformance_requests(chat=chat, budget=budget, max_tokens=max_tokens, prompt=prompt)
    results = backend.sample(requests)
    check_results(requests, results, what=what, allow_errors=allow_errors, seeded=seeded,
                  strict_budget=strict_budget)
    capped = results[-1]
    if strict_budget and not any(r.finish_reason == "budget" for r in capped):
        fail(what, f"request {requests[-1].question_id!r} has a budget of 1 token, but none of its "
                   f"draws finished with 'budget' (finish reasons "
                   f"{[r.finish_reason for r in capped]}, reasoning tokens {[r.reasoning_tokens for r in capped]})")
    if deterministic is None:
        deterministic = bool(getattr(backend, "deterministic", False))
    if deterministic:
        again = backend.sample(requests)
        check_results(requests, again, what=what, allow_errors=allow_errors, seeded=seeded,
                      strict_budget=strict_budget)
        for req, a, b in zip(requests, results, again, strict=True):
            for j, (ra, rb) in enumerate(zip(a, b, strict=True)):
                if _signature(ra) != _signature(rb):
                    fail(what, f"declared deterministic, but request {req.question_id!r} draw {j} "
                               f"(seed {req.seeds[j]}) differs between two identical calls: "
                               f"{_signature(ra)!r} vs {_signature(rb)!r}")
    empty = backend.sample([])
    if list(empty) != []:
        fail(what, f"sample([]) must return [], got {empty!r}")
    check_provenance(what, backend.info(), strings_only=True)
    if close:
        for attempt in ("first", "second"):
            try:
                backend.close()
            except Exception as exc:  # noqa: BLE001 - the message is the point
                fail(what, f"close() must be idempotent; the {attempt} call raised {type(exc).__name__}: {exc}")
    return [list(row) for row in results]

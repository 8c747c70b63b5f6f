"""The ``calculator`` backend: adds the last "What is a + b?" of a prompt column by column.

One word of reasoning is one token. Each written digit is wrong with probability ``slip``
(a random error: variance); on a fraction ``forget_carry`` of the questions (chosen by the
operands, the same in every draw) the calculator drops every carry (a systematic error:
bias). When the reasoning budget runs out, the answer is forced: the digits not yet written
are unknown: the answer is a random option among those that end in the digits written so
far. A finished sum picks the option closest to it. Deterministic: a draw is
a pure function of the prompt, its seed and the settings.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence

from hotmess.core.backend import Backend, ModelSpec
from hotmess.core.types import DrawResult, SampleRequest

QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?\n((?:[A-Z]\. -?\d+\n)+)")
OPTION = re.compile(r"([A-Z])\. (-?\d+)")


class CalculatorBackend(Backend):
    """Options (backend config or model size entry): ``slip`` (probability that a written
    digit is wrong) and ``forget_carry`` (fraction of questions on which carries are dropped);
    ``seconds_per_request`` (default 0) makes it as slow as a real model, for tests of
    interrupted and concurrent runs."""

    name = "calculator"
    deterministic = True

    def __init__(self, model: ModelSpec, slip: float = 0.05, forget_carry: float = 0.0,
                 seconds_per_request: float = 0.0) -> None:
        opts = {"slip": slip, "forget_carry": forget_carry, **{k: v for k, v in model.options.items()
                                                               if k in ("slip", "forget_carry")}}
        super().__init__(model, **opts)
        self.slip, self.forget_carry = float(opts["slip"]), float(opts["forget_carry"])
        self.seconds_per_request = float(seconds_per_request)
        for k in ("slip", "forget_carry"):
            if not 0.0 <= opts[k] <= 1.0:
                raise ValueError(f"calculator backend: {k} must be in [0, 1], got {opts[k]}")

    def sample(self, requests: Sequence[SampleRequest]) -> list[list[DrawResult]]:
        out = []
        for req in requests:
            t0 = time.perf_counter()
            time.sleep(self.seconds_per_request)
            row = [self._draw(req, seed) for seed in req.seeds]
            for r in row:
                r.latency_s = (time.perf_counter() - t0) / len(row)
            out.append(row)
        return out

    def _draw(self, req: SampleRequest, seed: int) -> DrawResult:
        text = req.prompt if req.prompt is not None else req.messages[-1]["content"]
        rng = random.Random(seed)
        found = QUESTION.findall(text)
        if not found:  # nothing to add: say so, then guess among the options
            words = "I see no sum to compute in this question, so I will guess.".split()
            guess = lambda: rng.choice(req.option_labels) if req.option_labels else "?"  # noqa: E731
            return self._finish(req, seed, words, None, guess)
        a, b, block = found[-1]
        options = [(lab, int(v)) for lab, v in OPTION.findall(block)]
        forgets = random.Random(f"{a}+{b}").random() < self.forget_carry
        xs, ys, carry, words, digits = a[::-1], b[::-1], 0, [], []
        for i in range(max(len(xs), len(ys))):
            x, y = int(xs[i]) if i < len(xs) else 0, int(ys[i]) if i < len(ys) else 0
            t = x + y + carry
            d = t % 10 if rng.random() >= self.slip else (t + rng.randint(1, 9)) % 10
            step = f"{x} + {y} + {carry} = {t}, write {d} carry"
            carry = 0 if forgets else t // 10
            digits.append(d)
            words += f"{step} {carry}.".split()
        if carry:
            digits.append(carry)
            words += f"write {carry}.".split()
        n_steps = len(words)
        words += f"So the sum is {int(''.join(map(str, reversed(digits))))}.".split()

        def answer(n_reasoned: int) -> str:
            if n_reasoned >= n_steps:  # finished: the option closest to the computed sum
                total = int("".join(map(str, reversed(digits))))
                return min(options, key=lambda o: (abs(o[1] - total), o[0]))[0]
            # forced early: a random option among those that end in the digits written so far
            k = n_reasoned * len(digits) // max(n_steps, 1)
            low = sum(d * 10**i for i, d in enumerate(digits[:k]))
            fits = [lab for lab, v in options if v % 10**k == low] or [lab for lab, _ in options]
            return rng.choice(fits)

        return self._finish(req, seed, words, answer, None)

    def _finish(self, req, seed, words, answer, guess) -> DrawResult:
        cap = len(words) if req.budget is None else min(len(words), req.budget)
        capped = cap < len(words)
        label = answer(cap) if answer is not None else guess()
        ans_words = f"{req.answer_prefix} {label}".split()
        cut = len(ans_words) > req.sampling.max_tokens
        ans_words = ans_words[: max(req.sampling.max_tokens, 0)]
        finish = "budget" if capped else ("length" if cut else "stop")
        return DrawResult(text=" ".join(ans_words), reasoning=" ".join(words[:cap]),
                          output_tokens=cap + len(ans_words), reasoning_tokens=cap,
                          finish_reason=finish, seed=seed)

    def info(self) -> dict[str, str]:
        return {"backend": self.name, "model_source": self.model.source, "slip": repr(self.slip),
                "forget_carry": repr(self.forget_carry), "tokens": "whitespace-separated words"}

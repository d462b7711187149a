"""Instruction generators: the interface, an offline template one, and an OpenAI-compatible endpoint one.

`OpenAIGenerator` talks to any chat-completions endpoint (vLLM, Ollama, DashScope serving Qwen, or the embedded
local server). It retries transient failures itself (429, 5xx, timeouts, dropped connections) with exponential
backoff and jitter, asks once for a repair when an answer is unusable, and then falls back to the template
generator, marking those instructions `fallback=True` with the reason. It never raises for a bad answer or an
unavailable endpoint; it raises `EndpointConfigError` when the endpoint refuses the credentials or the model
(401/403/404), because every other key would fail the same way.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import openai
from pydantic import SecretStr

from schemas.affordance import normalise_affordance
from schemas.text import bounded_reason
from tasks.instruct import prompts

if TYPE_CHECKING:
    from schemas.settings import AffordSettings

TEMPLATE_VERSION = "template-v1"
# Fallback reasons starting with this are transient (the endpoint, not the answer): such keys are not cached.
ENDPOINT_FAILURE = "endpoint unavailable"
_RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx
_NAME = re.compile(r"[^\W_][\w .'\-]{0,63}")  # an object class or part name


class EndpointConfigError(RuntimeError):
    """The endpoint rejected the key, the permissions or the model name: retrying or falling back cannot help."""


@dataclass(frozen=True)
class InstructionKey:
    """What an instruction is generated for. `variant` selects one of the key's k instructions for a sample;
    generation ignores it (`base` drops it), so all variants of a key come from one request."""

    object_class: str
    affordance: str
    part: str | None = None
    variant: int = 0

    def __post_init__(self) -> None:
        object_class = " ".join(self.object_class.strip().lower().split())
        if not object_class:
            raise ValueError("object_class is empty")
        part = " ".join(self.part.strip().lower().split()) if self.part else None
        if self.variant < 0:
            raise ValueError(f"variant must be >= 0, got {self.variant}")
        for field, value in (("object_class", object_class), ("part", part)):
            if value and not _NAME.fullmatch(value):
                # The name is written into prompts and template instructions: markup or escapes would ride along.
                raise ValueError(f"{field} {bounded_reason(value, 80)!r} holds characters other than letters, "
                                 f"digits, spaces, . ' _ - (at most 64)")
        object.__setattr__(self, "object_class", object_class)
        object.__setattr__(self, "affordance", normalise_affordance(self.affordance))
        object.__setattr__(self, "part", part or None)

    @property
    def base(self) -> InstructionKey:
        return replace(self, variant=0)


@dataclass(frozen=True)
class Instruction:
    text: str
    variant: int
    generator: str
    model: str
    prompt_version: str
    fallback: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class GenerationStats:
    """Endpoint work done so far. calls = first requests + repairs + retries; every transient failure is
    followed by a retry unless it exhausted its attempts (gave_up)."""

    calls: int = 0
    retries: int = 0
    repairs: int = 0
    gave_up: int = 0
    transient_failures: int = 0

    def __sub__(self, other: GenerationStats) -> GenerationStats:
        return GenerationStats(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})


class _StatsCounter:
    """Thread-safe counters behind `GenerationStats` (generators are shared by a thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = {f.name: 0 for f in fields(GenerationStats)}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def snapshot(self) -> GenerationStats:
        with self._lock:
            return GenerationStats(**self._values)


@runtime_checkable
class InstructionGenerator(Protocol):
    name: str
    model: str
    prompt_version: str

    def generate(self, key: InstructionKey, k: int) -> list[Instruction]:
        """k instructions (variants 0..k-1) for the key; never fewer."""
        ...

    def stats(self) -> GenerationStats:
        """Endpoint work done by this generator so far (all zeros for offline generators)."""
        ...


# {target}: "the mug" or "the handle of the mug". Several per affordance, so variants differ.
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "no_affordance": ("Pick up {target} with a stable grasp", "Grasp {target} firmly",
                      "Hold {target} steadily in your hand", "Take {target} in a secure grip"),
    "handle-grasp": ("Grip {handle} securely", "Hold {handle} firmly",
                     "Grasp {handle} and keep it steady", "Take hold of {handle}"),
    "press": ("Press {target} with your fingertips", "Push down on {target} firmly",
              "Press {target} gently with one finger", "Apply pressure to {target}"),
    "lift": ("Lift {target} off the table", "Raise {target} carefully",
             "Pick up {target} and lift it", "Lift {target} with a steady grip"),
    "wrap-grasp": ("Wrap your hand around {target}", "Grasp {target} with your whole hand",
                   "Hold {target} by wrapping your fingers around it", "Enclose {target} in your palm"),
    "twist": ("Twist {target} to turn it", "Turn {target} with your fingers",
              "Grip {target} and rotate it", "Twist {target} firmly"),
    "support": ("Support {target} from below", "Hold {target} up on your palm",
                "Rest {target} on your open hand", "Cradle {target} in your palm"),
    "pull": ("Pull {target} towards you", "Grip {target} and pull it",
             "Draw {target} towards your body", "Pull {target} firmly"),
    "lever": ("Push {target} like a lever", "Press {target} down to pivot it",
              "Lever {target} with your fingers", "Rotate {target} around its hinge"),
}
_SUFFIXES = ("", " with care", " in one smooth motion", " without rushing", " using a steady hand")


class TemplateGenerator:
    """Deterministic, offline instructions from fixed templates: the default without an endpoint, and the
    fallback when an LLM answer is unusable. Same key, same k -> same texts, on any machine."""

    name = "template"
    model = "template"
    prompt_version = TEMPLATE_VERSION

    def generate(self, key: InstructionKey, k: int) -> list[Instruction]:
        return [Instruction(self.text(key, variant), variant, self.name, self.model, self.prompt_version)
                for variant in range(k)]

    def text(self, key: InstructionKey, variant: int) -> str:
        templates = _TEMPLATES[key.affordance]
        target = prompts.target_phrase(key.object_class, key.part)
        handle = target if key.part else f"the handle of the {prompts.readable(key.object_class)}"
        sentence = templates[variant % len(templates)].format(target=target, handle=handle)
        return sentence + _SUFFIXES[(variant // len(templates)) % len(_SUFFIXES)]

    def stats(self) -> GenerationStats:
        return GenerationStats()


class _Transient(Exception):
    """A failure worth retrying; retry_after_s is the server's Retry-After, when it sent one."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class _Rejected(Exception):
    """The endpoint refused this one request (4xx other than auth/model/rate): retrying it cannot help."""


class OpenAIGenerator:
    """Instructions from an OpenAI-compatible chat-completions endpoint.

    max_retries: retries after a transient failure (attempts = 1 + max_retries). Backoff before retry n (1-based)
    is min(max_backoff_s, backoff_s * 2**(n-1)) scaled by a random factor in [0.5, 1) (jitter, so a pool of
    threads does not retry in lockstep; max_backoff_s stays a true bound); a 429's Retry-After, when given,
    replaces it (capped at max_backoff_s).
    repairs: follow-up requests after an invalid or too short answer, before the missing instructions come from
    templates: the first asks the task afresh in the prompt version's repair words (when it has them); a later one
    shows the model its latest answer and the reason it was refused.
    prompt_version: which registered wording (`prompts.WORDINGS`) to ask in; the default is the current one.
    seed: every request carries a seed derived from it and the prompt (request_seed), so an endpoint that honours
    the OpenAI `seed` field (the embedded `transformers serve` does) answers the same prompt the same way on every
    run, whatever order a thread pool sends the prompts in; it also seeds the backoff jitter.
    The API key is held as a SecretStr and never logged, repr'd or stored.
    """

    name = "openai"
    prompt_version = prompts.PROMPT_VERSION

    def __init__(self, base_url: str, model: str, api_key: str | SecretStr | None = None, *,
                 timeout_s: float = 60.0, max_retries: int = 4, backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 temperature: float = 0.7, max_tokens: int = 300, seed: int = 0, record_as: str | None = None,
                 repairs: int = 1, prompt_version: str = prompts.PROMPT_VERSION,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or max_backoff_s < 0 or repairs < 0:
            raise ValueError("timeout_s must be > 0; max_retries, backoff_s, max_backoff_s and repairs must be >= 0")
        prompts.wording_for(prompt_version)  # an unregistered version is refused here, by name
        self.repairs = repairs
        self.prompt_version = prompt_version  # rows and the cache record it
        self.base_url = base_url
        self.served_model = model  # what each request names
        # What rows and the cache record: `record_as` when the served name is a local path (the embedded
        # endpoint's), which would make two data roots' tables differ in every row for no reason.
        self.model = record_as or model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.fallback = TemplateGenerator()
        self._sleep = sleep
        self.seed = seed
        self._rng = random.Random(seed)
        self._counter = _StatsCounter()
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key or "EMPTY")  # local servers need none
        # max_retries=0: the client's own retries would hide attempts from our counters and backoff policy.
        self._client = openai.OpenAI(base_url=base_url, api_key=key.get_secret_value(), max_retries=0,
                                     timeout=timeout_s)

    @classmethod
    def from_settings(cls, settings: AffordSettings, **overrides: Any) -> OpenAIGenerator:
        """From AffordSettings: llm_base_url, llm_model, llm_api_key, llm_timeout_s (both URL and model needed)."""
        if not settings.llm_base_url or not settings.llm_model:
            raise ValueError("AFFORD_LLM_BASE_URL and AFFORD_LLM_MODEL must both be set for the OpenAI generator")
        return cls(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                   timeout_s=settings.llm_timeout_s, **{"seed": settings.seed, **overrides})

    def __repr__(self) -> str:
        return f"OpenAIGenerator(base_url={self.base_url!r}, model={self.served_model!r})"

    def check(self) -> None:
        """One models-list request before a run: EndpointConfigError when the endpoint refuses the key or does
        not answer. An endpoint without a models list (another 4xx/5xx) passes: the run's own requests will tell."""
        try:
            self._client.models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise EndpointConfigError(f"AFFORD_LLM_BASE_URL={self.base_url} refused the key (HTTP "
                                      f"{error.status_code}): check AFFORD_LLM_API_KEY") from None
        except openai.APIConnectionError as error:
            raise EndpointConfigError(f"AFFORD_LLM_BASE_URL={self.base_url}: no answer "
                                      f"({type(error.__cause__ or error).__name__}); is the server running?") from None
        except openai.APIStatusError:
            return

    def stats(self) -> GenerationStats:
        return self._counter.snapshot()

    def generate(self, key: InstructionKey, k: int) -> list[Instruction]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        conversation = prompts.build_messages(key.object_class, key.affordance, key.part, k, self.prompt_version)
        texts: list[str] = []
        try:
            answer = self._complete(conversation)
            texts, reason = self._usable(answer, key, k)
            for attempt in range(self.repairs):
                if len(texts) >= k:
                    break
                self._counter.add("repairs")
                conversation = prompts.build_repair_messages(
                    conversation, answer or "", reason or "too few instructions", key.object_class, key.affordance,
                    key.part, k, attempt, self.prompt_version)
                answer = self._complete(conversation)
                more, reason = self._usable(answer, key, k)
                texts = _unique([*texts, *more])[:k]
                if len(texts) < k and reason is None:
                    reason = f"{len(texts)} distinct valid instructions, {k} asked"
            reason = f"invalid answer after repair: {reason}"
        except _Transient as failure:  # keeps what the first answer gave; the reason marks the key as uncacheable
            reason = f"{ENDPOINT_FAILURE}: {failure}"
        except _Rejected as failure:
            reason = str(failure)
        made = [Instruction(text, i, self.name, self.model, self.prompt_version) for i, text in enumerate(texts)]
        return self._fallback(key, k, made, reason)

    def _fallback(self, key: InstructionKey, k: int, made: list[Instruction], reason: str) -> list[Instruction]:
        """`made`, completed to k instructions with template ones flagged as fallbacks."""
        template = self.fallback.generate(key, k)
        reason = bounded_reason(reason)  # it may quote the answer: cut, with control characters escaped
        return made + [replace(t, fallback=True, reason=reason) for t in template[len(made):]]

    def _usable(self, answer: str | None, key: InstructionKey, k: int) -> tuple[list[str], str | None]:
        """The valid, distinct instructions in an answer, and the reason for the first problem (None: none)."""
        try:
            items = prompts.parse_answer(answer, k)
        except ValueError as error:
            return [], str(error)
        valid, reasons = [], []
        for item in items:
            why = prompts.validate_instruction(item, key.object_class, key.part)
            (reasons.append(f"{item[:60]!r}: {why}") if why else valid.append(item))
        valid = _unique(valid)
        if not reasons and len(valid) < k:
            reasons.append(f"{len(valid)} distinct valid instructions, {k} asked")
        return valid, (reasons[0] if reasons else None)

    def _complete(self, messages: list[dict[str, str]]) -> str | None:
        """The answer's text; retries transient failures, raises _Transient once attempts are exhausted."""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._counter.add("retries")
            self._counter.add("calls")
            try:
                return self._request(messages)
            except _Transient as failure:
                self._counter.add("transient_failures")
                if attempt == self.max_retries:
                    self._counter.add("gave_up")
                    raise _Transient(f"{failure} (after {attempt + 1} attempts)") from None
                self._sleep(self._delay(attempt, failure.retry_after_s))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        # backoff_n = min(cap, base * 2^n) * U[0.5, 1)   (exponential backoff with jitter)
        if retry_after_s is not None:
            return min(self.max_backoff_s, retry_after_s)
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.5 + 0.5 * self._rng.random())

    def _request(self, messages: list[dict[str, str]]) -> str | None:
        try:
            response = self._client.chat.completions.create(
                model=self.served_model, messages=messages, temperature=self.temperature, max_tokens=self.max_tokens,
                seed=request_seed(self.seed, messages))
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as error:
            raise EndpointConfigError(f"{self.base_url} refused the request ({error.status_code}): "
                                      f"check AFFORD_LLM_API_KEY and AFFORD_LLM_MODEL={self.served_model!r}") from None
        except openai.APITimeoutError:
            raise _Transient(f"timeout after {self.timeout_s:g} s") from None
        except openai.APIConnectionError as error:
            raise _Transient(f"connection error ({type(error.__cause__ or error).__name__})") from None
        except openai.APIStatusError as error:
            if error.status_code in _RETRYABLE_STATUS or error.status_code >= 500:
                raise _Transient(f"HTTP {error.status_code}", _retry_after(error.response.headers)) from None
            raise _Rejected(f"request rejected: HTTP {error.status_code}") from None  # e.g. 400: prompt too long
        except (openai.APIResponseValidationError, json.JSONDecodeError):  # the client parses the body lazily
            raise _Transient("malformed response body") from None
        if isinstance(response, str) or not getattr(response, "choices", None):
            raise _Transient("malformed response body")  # a 200 whose body is not a chat completion
        return response.choices[0].message.content


def request_seed(seed: int, messages: list[dict[str, str]]) -> int:
    """sha256(seed, messages) as a 31-bit int: the same prompt gets the same seed on every run and machine (unlike
    Python's salted hash()), and the prompts of one run get different ones."""
    digest = hashlib.sha256(json.dumps([seed, messages], sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _retry_after(headers: object) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _unique(texts: list[str]) -> list[str]:
    """Texts without case-insensitive repeats, first occurrence kept."""
    kept: dict[str, str] = {}
    for text in texts:
        kept.setdefault(text.lower(), text)
    return list(kept.values())

"""Versioned prompts for the instruct stage, and the checks an LLM answer must pass.

The idea follows the AffordGrasp data engine: give the model the object class and the affordance (and the part
when it is known) and ask for k short imperative instructions; the answer may be a numbered or bulleted list, a
JSON list of strings, or one plain sentence, and every item is validated before use. Any change
to the wording below changes what the model writes, so it must bump PROMPT_VERSION: the cache and every row
record it, and a new version re-generates instead of reusing old answers.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

MIN_WORDS, MAX_WORDS = 3, 25


@dataclass(frozen=True)
class Wording:
    """One prompt version's words: what each affordance asks the hand to do (`hints`, "the object" standing for
    the object's name), and the other words a repair asks the same task in (`repair_hints`; None: the repair shows
    the model its answer and the reason it was refused)."""

    hints: dict[str, str]
    repair_hints: dict[str, str] | None = None


# instruct-v2: the first version that states the task in words. SmolLM2-135M copied its hints nearly word for word,
# and dropped the object from "press a button or surface of the object": the copy named no object and was refused.
# It also answered a repair that showed its own answer with the same answer again.
_V2 = Wording(hints={
    "no_affordance": "pick the object up with an ordinary stable grasp",
    "handle-grasp": "hold the object by its handle",
    "press": "press a button or surface of the object with the fingers",
    "lift": "lift the object up",
    "wrap-grasp": "wrap the whole hand around the object's body",
    "twist": "twist or turn a part of the object, like a cap or knob",
    "support": "hold the object from below so it rests on the palm",
    "pull": "pull the object or one of its parts towards the hand",
    "lever": "push a lever or rotate a part of the object around its hinge",
})
# instruct-v3: every hint names the object where a copy keeps it, and a repair asks the task afresh in other words
# (a new conversation), which the small model answers anew. On the demo's 36 keys the share of rows with model
# text rose from about 45 % to about 79 %, in less time (BENCHMARKS.md, "Prompt versions").
_V3 = Wording(hints={
    "no_affordance": "pick the object up with an ordinary stable grasp",
    "handle-grasp": "hold the object by its handle",
    "press": "press the object's button or surface with the fingers",
    "lift": "lift the object up",
    "wrap-grasp": "wrap the whole hand around the object",
    "twist": "twist the object's cap or knob",
    "support": "hold the object from below so it rests on the palm",
    "pull": "pull the object towards the hand",
    "lever": "push the object's lever or rotate it around its hinge",
}, repair_hints={
    "no_affordance": "grasp the object firmly",
    "handle-grasp": "grip the object's handle firmly",
    "press": "push down on the object with a fingertip",
    "lift": "raise the object off the table",
    "wrap-grasp": "grasp the object with the fingers wrapped around it",
    "twist": "turn the cap of the object",
    "support": "carry the object on the open palm",
    "pull": "drag the object closer",
    "lever": "push down the lever of the object",
})
# Every version a cache or row may name; a new wording is a new entry, never an edit of an old one.
WORDINGS: dict[str, Wording] = {"instruct-v2": _V2, "instruct-v3": _V3}
PROMPT_VERSION = "instruct-v3"

# A plain task sentence and a plain request: SmolLM2-135M copied the worked example of a JSON-list prompt
# (instruct-v1) into nearly every answer, whatever the object. Larger models answer it as a numbered list.
SYSTEM_PROMPT = "You are a helpful assistant."

_USER_TEMPLATE = """Task: {task}.
Write {k} different short commands a person would give for this task. Each command mentions {target}."""

_REPAIR_TEMPLATE = """That answer could not be used: {reason}.
Write {k} different short commands for the same task, one per line. Each command starts with a verb, \
is one sentence of 5 to 15 words and mentions {target}."""

# Imperative openers an instruction may start with (after an optional "please" or -ly adverb).
IMPERATIVE_VERBS = frozenset((
    "adjust", "align", "apply", "balance", "bring", "carry", "catch", "clamp", "clasp", "clench", "close", "cradle",
    "cup", "depress", "draw", "drag", "elevate", "embrace", "encircle", "enclose", "engage", "extend", "flip",
    "fold", "gather", "get", "give", "grab", "grasp", "grip", "guide", "hand", "handle", "hold", "hook", "hug",
    "keep", "lay", "lean", "lever", "lift", "lock", "loosen", "lower", "move", "nudge", "open", "pick", "pinch",
    "pivot", "place", "position", "press", "pry", "pull", "push", "put", "raise", "reach", "release", "remove",
    "rest", "rotate", "screw", "secure", "seize", "set", "shift", "slide", "snatch", "squeeze", "steady", "support",
    "swing", "swivel", "take", "tap", "tighten", "tilt", "tip", "tug", "turn", "twist", "unscrew", "use", "wield",
    "wrap", "yank",
))

_REFUSALS = (
    "i'm sorry", "i am sorry", "sorry,", "i can't", "i cannot", "i can not", "i won't", "i am unable",
    "i'm unable", "unable to help", "as an ai", "language model", "i apologize", "cannot assist", "can't assist",
    "not able to help",
)
# An instruction is read by a person and embedded for training: plain words and sentence punctuation only.
# Anything else (markup, code, links, escapes) is refused by name rather than stored.
_UNSAFE_MARKUP = (
    (re.compile(r"</?[a-z!/?][^>]*>|<|>", re.IGNORECASE), "markup (< or >, an HTML tag)"),
    (re.compile(r"!?\[[^\]]*\]\([^)]*\)"), "a markdown link or image"),
    (re.compile(r"`"), "markup (a backtick)"),
    (re.compile(r"(?:[a-z][a-z0-9+.\-]*://|\bwww\.|\b[a-z0-9\-]+\.(?:com|org|net|io|ai|ly|dev|xyz|info)\b)",
                re.IGNORECASE), "a URL"),
)
_ALLOWED_CHARS = re.compile(r"""[^\W_]|[ .,;:?!'"\u2019()\-]""")  # letters and digits of any script, no underscore
# Words that address the model or its prompt, not the hand: an answer holding them is a prompt injection or
# meta talk ("ignore all previous rules", "as an assistant ..."), never an instruction for a grasp.
META_WORDS = frozenset((
    "ignore", "ignores", "ignored", "ignoring", "disregard", "disregarding", "previous", "previously", "system",
    "prompt", "prompts", "assistant", "assistants", "instruction", "instructions", "ai", "chatbot", "jailbreak",
    "override", "rule", "rules", "forget", "pretend", "roleplay", "developer", "llm", "gpt", "model's",
))
_NOT_IMPERATIVE_OPENERS = ("i ", "i'", "as an", "sure", "here", "certainly", "of course", "okay", "ok,")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+")
_WORD = re.compile(r"[a-z0-9']+")


def target_phrase(object_class: str, part: str | None) -> str:
    """What an instruction must name: "the handle of the mug", or "the mug" when the part is unknown."""
    obj = readable(object_class)
    return f"the {readable(part)} of the {obj}" if part else f"the {obj}"


def readable(name: str) -> str:
    """Class, part or affordance id as words: "wine_glass" -> "wine glass", "Handle-grasp" -> "handle grasp"."""
    return " ".join(re.split(r"[\s_\-]+", name.strip().lower()))


def task_sentence(object_class: str, affordance: str, version: str = PROMPT_VERSION, repair: bool = False) -> str:
    """The affordance as a task on this object, in `version`'s words (its repair words when `repair`):
    ("mug", "lift") -> "lift the mug up"; ("headphones", "press") -> "press the headphones' button or ..."."""
    wording = wording_for(version)
    hints = wording.repair_hints if repair and wording.repair_hints else wording.hints
    hint = hints.get(affordance, f"{readable(affordance)} the object")
    name = readable(object_class)
    owner = f"the {name}'" if name.endswith("s") and not name.endswith("ss") else f"the {name}'s"  # headphones'
    return hint.replace("the object's", owner).replace("the object", f"the {name}")


def wording_for(version: str) -> Wording:
    """The registered wording of a prompt version; ValueError naming the registered ones otherwise."""
    if version not in WORDINGS:
        raise ValueError(f"prompt version {version!r} is not registered; registered: {', '.join(sorted(WORDINGS))}")
    return WORDINGS[version]


def build_messages(object_class: str, affordance: str, part: str | None, k: int,
                   version: str = PROMPT_VERSION) -> list[dict[str, str]]:
    """Chat messages asking for k instructions for one (object class, affordance, part) key."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    user = _USER_TEMPLATE.format(task=task_sentence(object_class, affordance, version), k=k,
                                 target=target_phrase(object_class, part))
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def build_repair_messages(messages: list[dict[str, str]], answer: str, reason: str, object_class: str,
                          affordance: str, part: str | None, k: int, attempt: int = 0,
                          version: str = PROMPT_VERSION) -> list[dict[str, str]]:
    """The request after an unusable or too short answer to `messages`.

    The first repair of a version with repair words asks the same task afresh in those words, in a new
    conversation. Otherwise (a later repair, or a version without them): the conversation so far, the unusable
    answer, and one request to answer again in the right form."""
    if attempt == 0 and wording_for(version).repair_hints:
        user = _USER_TEMPLATE.format(task=task_sentence(object_class, affordance, version, repair=True), k=k,
                                     target=target_phrase(object_class, part))
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    repair = _REPAIR_TEMPLATE.format(reason=reason, k=k, target=target_phrase(object_class, part))
    return [*messages, {"role": "assistant", "content": answer[:2000]}, {"role": "user", "content": repair}]


def refusal(text: str) -> str | None:
    """The refusal phrase found in text, or None."""
    lowered = text.lower().replace("\u2019", "'")
    return next((phrase for phrase in _REFUSALS if phrase in lowered), None)


def parse_answer(content: str | None, k: int) -> list[str]:
    """The instructions in an answer: a JSON list of strings, bare or inside a ```json fence; also a JSON object
    holding exactly one such list, a numbered / bulleted list of lines (what small models often write), or an
    answer of one line, taken as one instruction.

    Returns at most k stripped, non-empty strings (list markers such as "1. " and wrapping quotes removed);
    raises ValueError saying what was wrong when the answer holds no such list.
    """
    if content is None or not content.strip():
        raise ValueError("empty answer")
    if phrase := refusal(content):
        raise ValueError(f"refusal ({phrase!r})")
    text = content.strip()
    if fenced := _FENCE.search(text):
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        # Small models often answer with a numbered or bulleted list instead of JSON: take its items.
        listed = [match.group(1) for match in _LISTED_LINE.finditer(text)]
        if not listed and "\n" not in text and not text.startswith(("[", "{")):
            listed = [text]
        if not listed:
            raise ValueError(f"not a JSON list ({error.msg} at char {error.pos}): {content[:80]!r}") from None
        value = listed
    if isinstance(value, dict):  # {"instructions": [...]}: the one list of strings inside
        lists = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(i, str) for i in v)]
        value = lists[0] if len(lists) == 1 else value
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON list of strings, got a JSON {type(value).__name__}")
    if not all(isinstance(item, str) for item in value):
        raise ValueError("expected a JSON list of strings, found a non-string item")
    items = [_clean(item) for item in value]
    items = [item for item in items if item]
    if not items:
        raise ValueError("the JSON list holds no non-empty string")
    return items[:k]


_LISTED_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+(\S.*?)\s*$", re.MULTILINE)


def _clean(item: str) -> str:
    return _LIST_MARKER.sub("", item.strip()).strip().strip("\"'").strip()


def validate_instruction(text: str, object_class: str, part: str | None) -> str | None:
    """Why `text` is not a usable instruction for the object (and part), or None when it is.

    Usable: no refusal; no control character, markup, link, URL or meta text (see `unsafe_text`); 3-25 words,
    not a question, no colon or unpaired double quote, starts with an imperative
    verb (after an optional "please" or -ly adverb), and names the object class or the part (case-insensitive;
    hyphens, underscores and simple plurals tolerated; a multi-word class may be named by its last word: "glass"
    for "wine glass").
    """
    text = text.strip()
    if not text:
        return "empty instruction"
    if phrase := refusal(text):
        return f"refusal ({phrase!r})"
    if unsafe := unsafe_text(text, object_class, part):
        return unsafe
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return f"{len(words)} words; expected {MIN_WORDS} to {MAX_WORDS}"
    if text.rstrip().endswith("?"):
        return "a question, not an instruction"
    if ":" in text or text.count('"') % 2:
        return "a colon or an unpaired quote: a label or a fragment, not one sentence"
    if text.lower().startswith(_NOT_IMPERATIVE_OPENERS):
        return f"not imperative (starts with {text.split()[0]!r})"
    verb = _first_verb(words)
    if verb not in IMPERATIVE_VERBS:
        return f"not imperative (starts with {verb!r}, not a known verb)"
    if not _names(words, object_class) and not (part and _names(words, part)):
        return f"does not name the {readable(object_class)}" + (f" or its {readable(part)}" if part else "")
    return None


def unsafe_text(text: str, object_class: str = "", part: str | None = None) -> str | None:
    """Why `text` must not be stored as an instruction whatever its wording, or None: a control character,
    markup (tags, markdown links and images, backticks), a URL, a character outside plain words and sentence
    punctuation, or a word addressing the model rather than the hand ("ignore", "previous", "system",
    "prompt", "assistant", "instructions", "as an AI", ...). A meta word that is part of the object's or the
    part's own name is allowed."""
    control = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")), None)
    if control is not None:
        return f"a control character (U+{ord(control):04X})"
    for pattern, what in _UNSAFE_MARKUP:
        if pattern.search(text):
            return what
    other = next((c for c in text if not _ALLOWED_CHARS.fullmatch(c)), None)
    if other is not None:
        return f"the character {other!r}: only words and sentence punctuation belong in an instruction"
    named = set(_WORD.findall(readable(object_class))) | set(_WORD.findall(readable(part or "")))
    meta = [w for w in _WORD.findall(text.lower().replace("\u2019", "'")) if w in META_WORDS and w not in named]
    if meta:
        return f"meta text ({meta[0]!r}): it addresses the model, not the hand"
    return None


def _first_verb(words: list[str]) -> str:
    rest = words[1:] if words[0] == "please" else words
    # "Carefully grip ...", "Firmly hold ...", but "Apply ..." is a verb.
    while len(rest) > 1 and rest[0].endswith("ly") and rest[0] not in IMPERATIVE_VERBS:
        rest = rest[1:]
    return rest[0]


def _names(words: list[str], name: str) -> bool:
    """Whether the word sequence contains `name` (or, for a multi-word name, its last word), plural or not."""
    tokens = _WORD.findall(readable(name))
    if not tokens:
        return False
    candidates = [tokens] if len(tokens) == 1 else [tokens, tokens[-1:]]
    singular = [_singular(w) for w in words]
    for candidate in candidates:
        wanted = [_singular(w) for w in candidate]
        n = len(wanted)
        if any(singular[i:i + n] == wanted for i in range(len(singular) - n + 1)):
            return True
    return False


def _singular(word: str) -> str:
    word = word.removesuffix("'s").removesuffix("'")  # possessives: "mug's", "headphones'"
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word

"""Action labels -> English: the phrases captions use and the short answer a question gets.

Labels come from three vocabularies (the procedural generator, Human3.6M, CMU mocap clips) with
different spellings of the same action ("Walking", "walk", "WalkDog 1", "WalkingDog"), so a
label is looked up by a normalised key: lower-case letters only, with a trailing take number
removed. A label outside the table is never an error: its words are split out (camelCase,
underscores) and used verbatim, and it is marked unknown so that the closed answer vocabulary
of the "what action" question stays fixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class ActionText:
    """``answer``: short canonical phrase (the QA answer); ``phrases``: verb phrases that fit
    "The person is ...", canonical first; ``known``: the label is in the table."""

    answer: str
    phrases: tuple[str, ...]
    known: bool


# key -> (answer, other phrases). The answer is also the first caption phrase.
_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    # procedural generator
    "standing": ("standing", ("standing still",)),
    "walking": ("walking", ("walking along", "taking a step")),
    "running": ("running", ("running along",)),
    "sitting": ("sitting", ("seated",)),
    "squatting": ("squatting", ("crouching down",)),
    "kneeling": ("kneeling", ("kneeling down", "down on their knees")),
    "lying": ("lying down", ("lying",)),
    "jumping": ("jumping", ("jumping up",)),
    "reachingup": ("reaching up", ("reaching upwards",)),
    "waving": ("waving", ("waving a hand",)),
    "pointing": ("pointing", ("pointing at something",)),
    "bendingforward": ("bending forward", ("bending over",)),
    "lunging": ("lunging", ("doing a lunge",)),
    "armscrossed": ("crossing the arms", ("holding the arms crossed",)),
    "phoning": ("talking on the phone", ("making a phone call",)),
    "takingphoto": ("taking a photo", ("taking a picture",)),
    "kicking": ("kicking", ("doing a kick",)),
    "balancing": ("balancing", ("keeping their balance",)),
    # Human3.6M (Phoning, Sitting, Walking, TakingPhoto share keys above)
    "directions": ("giving directions", ("showing someone the way",)),
    "discussion": ("having a discussion", ("talking with someone",)),
    "eating": ("eating", ("having something to eat",)),
    "greeting": ("greeting someone", ("greeting",)),
    "photo": ("taking a photo", ("taking a picture",)),
    "posing": ("posing", ("striking a pose",)),
    "purchases": ("making a purchase", ("buying something",)),
    "sittingdown": ("sitting down", ("taking a seat",)),
    "smoking": ("smoking", ("having a smoke",)),
    "waiting": ("waiting", ("waiting around",)),
    # A dog walk and a walk together are walks: their answer is the generator's, so that a
    # model trained on it can be right (the captions keep the detail).
    "walkdog": ("walking", ("walking a dog", "walking the dog")),
    "walkingdog": ("walking", ("walking a dog", "walking the dog")),
    "walktogether": ("walking", ("walking together with someone",
                                 "walking side by side with someone")),
    "walkingtogether": ("walking", ("walking together with someone",
                                    "walking side by side with someone")),
    # CMU mocap clip labels
    "walk": ("walking", ("walking along",)),
    "run": ("running", ("running along",)),
    "hop": ("jumping", ("hopping", "hopping on one spot")),  # a hop is a jump on one leg
    "jump": ("jumping", ("jumping up",)),
    "dance": ("dancing", ("dancing around",)),
    "kick": ("kicking", ("doing a kick",)),
    "sit": ("sitting", ("seated",)),
    "stand": ("standing", ("standing still",)),
}

ACTION_ANSWERS: tuple[str, ...] = tuple(sorted({answer for answer, _ in _TABLE.values()}))
"""Closed answer vocabulary of the "what action" question."""

_TAKE_SUFFIX = re.compile(r"[\s._-]*\d+(\.\d+)*$")  # "Walking 1", "WalkDog.54138969"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def known_labels() -> tuple[str, ...]:
    """The lookup keys of every known label (each has an answer and caption phrases)."""
    return tuple(_TABLE)


def label_key(label: str) -> str:
    """Lookup key of a label: take number removed, lower-case letters only."""
    return re.sub(r"[^a-z]", "", _TAKE_SUFFIX.sub("", label.strip()).lower())


def derived_phrase(label: str) -> str:
    """Words of an unknown label: "PickUpBox_2" -> "pick up box"."""
    base = _CAMEL.sub(" ", _TAKE_SUFFIX.sub("", label.strip()))
    return " ".join(re.sub(r"[^A-Za-z]+", " ", base).lower().split())


@lru_cache(maxsize=4096)
def action_text(label: str) -> ActionText:
    """English for an action label; unknown labels get their own words, empty ones nothing."""
    entry = _TABLE.get(label_key(label or ""))
    if entry is not None:
        answer, others = entry
        return ActionText(answer, (answer, *others), True)
    phrase = derived_phrase(label or "")
    return ActionText(phrase, (phrase,) if phrase else (), False)


def action_sentences(text: ActionText) -> tuple[str, ...]:
    """Full sentences for an action, canonical first. An unknown label that does not read as a
    verb phrase is quoted rather than forced into "The person is ..."."""
    if not text.phrases:
        return ()
    if text.known or text.phrases[0].split()[0].endswith("ing"):
        out = []
        for phrase in text.phrases:
            out += [f"The person is {phrase}.", f"Someone is {phrase}.",
                    f"This person is {phrase}."]
        return tuple(out)
    return (f'The action is "{text.phrases[0]}".', f'The action shown is "{text.phrases[0]}".')

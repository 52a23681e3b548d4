"""How a command is worded: the way people speak to robots, never changing what it means.

An expression (``expressions.py``) is worded in one of three styles, drawn per sample with the
weights of ``SceneConfig.phrasing``:

- ``template``: the embedded model's templates ("find the red circle", "where is the star?",
  "all green shapes"): the default, draw for draw;
- ``spoken``: requests and questions around the plain noun phrase ("can you find the red circle
  please", "I am looking for all the stars", "where's the blue square");
- ``reordered``: the same meaning in another order ("the circle that is red", "the red one",
  "the largest of the red circles", "the star to the left of the square that is blue"), alone
  or in a request. An expression with nothing to reorder ("the circle") keeps its order.

Then, each with its probability, loose typing: letter case, stray spaces, trailing punctuation.
None of these touch the words that carry meaning: colour, shape, relation, extreme, "all".

``evaluation_variants`` gives the fixed variants a model is measured on, one per way of saying
the same thing, so each can be compared with the plain phrasing.
"""

from __future__ import annotations

import numpy as np

from pgpt_ros.data.shapesref import vocabulary
from pgpt_ros.data.shapesref.config import SceneConfig
from pgpt_ros.data.shapesref.expressions import Description, Expression, bare_text, plain_command

SINGULAR_TEMPLATES = ("{}", "the {}", "find the {}", "where is the {}?", "locate the {}",
                      "show me the {}", "point to the {}")  # fmt: skip
PLURAL_TEMPLATES = ("all {}", "find all {}", "all the {}", "where are all the {}?",
                    "show me all the {}")  # fmt: skip
# Spoken wrappers take a whole noun phrase ("the red circle", "all the stars").
SPOKEN_SINGULAR = ("find {}", "where is {}?", "where's {}", "show me {}", "locate {}",
                   "point to {}", "point at {}", "look for {}", "can you find {} please",
                   "could you find {}", "can you show me {}", "please find {}",
                   "please show me {}", "I am looking for {}", "I'm looking for {}",
                   "help me find {}", "do you see {}?")  # fmt: skip
SPOKEN_PLURAL = ("find {}", "where are {}?", "show me {}", "locate {}", "point to {}",
                 "can you find {} please", "could you show me {}", "please find {}",
                 "I am looking for {}", "highlight {}")  # fmt: skip
TRAILING = ("?", "!", "!!", ".", " ?", " !", "?!")
SIDES = {"left of": "left", "right of": "right"}  # "to the left of" says the same

EVALUATION_VARIANTS: tuple[str, ...] = ("plain", "upper", "spaces", "polite", "reordered",
                                        "exclaim", "question")  # fmt: skip


def phrase(rng: np.random.Generator, expression: Expression, config: SceneConfig) -> Expression:
    """``expression`` (worded bare) as a command in a style drawn by ``config.phrasing``
    (``vocabulary.PHRASINGS``)."""
    styles = [s for s, w in config.phrasing.items() if w > 0]
    style = styles[0]
    if len(styles) > 1:
        weights = np.array([config.phrasing[s] for s in styles])
        style = styles[int(rng.choice(len(styles), p=weights / weights.sum()))]
    plural = expression.plural
    if style == "template":
        templates = PLURAL_TEMPLATES if plural else SINGULAR_TEMPLATES
        command = templates[int(rng.integers(len(templates)))].format(bare_text(expression))
    else:
        noun_phrase = plain_command(expression)
        if plural and rng.random() < 0.5:
            noun_phrase = "all the " + noun_phrase.removeprefix("all ")
        elif (expression.kind in ("attribute", "absent") and expression.word is None
              and not plural and rng.random() < 0.2):  # fmt: skip
            noun_phrase = _indefinite(bare_text(expression))  # "find a red circle"
        wrappers = SPOKEN_PLURAL if plural else SPOKEN_SINGULAR
        if style == "reordered":
            noun_phrase = _pick(rng, reorderings(expression)) or noun_phrase
            wrappers = ("{}", *wrappers)
        command = _pick(rng, wrappers).format(noun_phrase)
    return expression.worded(_loosen(rng, command, config))


def _indefinite(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str | None:
    return options[int(rng.integers(len(options)))] if options else None


def _loosen(rng: np.random.Generator, command: str, config: SceneConfig) -> str:
    """Letter case, stray spaces and trailing punctuation, each with its probability (no random
    number is taken for one whose probability is 0)."""
    if config.punctuation and rng.random() < config.punctuation:
        command = command.rstrip("?.!") + _pick(rng, TRAILING)
    if config.case and rng.random() < config.case:
        command = (str.upper, _title, _first_capital)[int(rng.integers(3))](command)
    if config.spaces and rng.random() < config.spaces:
        words = command.split(" ")
        stray = rng.integers(0, 2, size=len(words) + 1)  # extra spaces before, between, after
        stray[int(rng.integers(len(stray)))] = 1  # at least one
        gaps = [" " * int(n) for n in stray[1:-1] + 1]
        command = " " * int(stray[0]) + "".join(
            w + g for w, g in zip(words, [*gaps, ""], strict=True)
        )
        command += " " * int(stray[-1])
    return command


def _title(command: str) -> str:
    """ "Where's The Red Circle" (``str.title`` would write "Where'S")."""
    return " ".join(word[:1].upper() + word[1:] for word in command.split(" "))


def _first_capital(command: str) -> str:
    return command[:1].upper() + command[1:]


def reorderings(expression: Expression) -> list[str]:
    """Noun phrases that say what ``expression`` says in another order (empty: none applies)."""
    subject, plural, word = expression.subject, expression.plural, expression.word
    found = []
    # by the parts, not the kind: an absent command may be worded as a relation or an extreme
    if expression.reference is not None:
        found.append(f"the {subject.text()} that is {word} the {expression.reference.text()}")
        if word in SIDES:
            found.append(f"the {subject.text()} to the {SIDES[word]} of the "
                         f"{expression.reference.text()}")  # fmt: skip
        clause = _that_is(expression.reference, plural=False)
        if clause:
            found.append(f"the {subject.text()} {word} {clause}")
    elif word is not None:
        found.append(f"the {word} of the {subject.text(plural=True)}")
        clause = _that_is(subject, plural=False)
        if clause:
            found.append(clause.replace("the ", f"the {word} ", 1))
    else:
        clause = _that_is(subject, plural)
        if clause:
            found.append(clause)
        if subject.colour and not subject.shape and not subject.thing:
            found.append(f"all the {subject.colour} ones" if plural else f"the {subject.colour} one")  # fmt: skip
    return found


def _that_is(description: Description, plural: bool) -> str | None:
    """ "the circle that is red", "all circles that are red"; None without a colour."""
    if description.colour is None:
        return None
    noun = description.text(plural).removeprefix(description.colour + " ")
    return f"all {noun} that are {description.colour}" if plural else f"the {noun} that is {description.colour}"  # fmt: skip


def evaluation_variants(expression: Expression) -> dict[str, Expression]:
    """The standard ways of saying ``expression`` (``EVALUATION_VARIANTS``), same targets.

    plain "the red circle"; upper "THE RED CIRCLE"; spaces " the  red  circle "; polite "can you
    find the red circle please"; reordered "the circle that is red" (only where the expression
    names a colour to move: attribute, multi and absent subjects, extreme subjects, relation
    references); exclaim "the red circle!!"; question "the red circle ?".
    """
    plain = plain_command(expression)
    variants = {
        "plain": plain,
        "upper": plain.upper(),
        "spaces": " " + plain.replace(" ", "  ") + " ",
        "polite": f"can you find {plain} please",
        "reordered": _reordered_variant(expression),
        "exclaim": plain + "!!",
        "question": plain + " ?",
    }
    return {name: expression.worded(text) for name, text in variants.items() if text}


def _reordered_variant(expression: Expression) -> str | None:
    """The "that is <colour>" form, the one the evaluation measures."""
    if expression.reference is not None:
        clause = _that_is(expression.reference, plural=False)
        return clause and f"the {expression.subject.text()} {expression.word} {clause}"
    clause = _that_is(expression.subject, expression.plural)
    if expression.word is not None:
        return clause and clause.replace("the ", f"the {expression.word} ", 1)
    return clause


def command_words() -> list[str]:
    """Every word a command can contain, lower case and sorted (for a tokenizer's corpus)."""
    v = vocabulary
    text = " ".join([*SINGULAR_TEMPLATES, *PLURAL_TEMPLATES, *SPOKEN_SINGULAR, *SPOKEN_PLURAL,
                     *v.COLOURS, *v.SHAPES, *v.RELATIONS, *v.EXTREMES, *v.UNKNOWN_THINGS,
                     *v.UNKNOWN_THINGS.values(), *(s + "s" for s in v.SHAPES),
                     "shape shapes one ones all the a an that is are of to left right"])  # fmt: skip
    return sorted(set(text.lower().replace("{}", " ").replace("?", " ").split()))

"""Which referring expressions are true of a scene, kind by kind.

An expression is built from its parts (a ``Description`` of what it names, a relation or extreme
word, the reference of a relation), so ``phrasing.py`` can word it in other ways without changing
what it means. Every expression is true of the picture by construction:

- ``attribute``: the one object a description fits;
- ``relation``: the reference has a unique description; the target's description fits two or
  more objects and the relation singles one out, by a margin, while every other object so named
  clearly fails it;
- ``extreme``: the clear winner among two or more matching objects (position by a margin, size by
  an area ratio);
- ``multi``: every matching object, two or more;
- ``absent``: a description nothing fits, or (``SceneConfig.unknown_absent``) a thing ShapesRef
  never draws: no target; ``SceneConfig.restated_absent`` words a share of them as a relation or
  an extreme about what is not there.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pgpt_ros.data.shapesref.config import SceneConfig
from pgpt_ros.data.shapesref.scene import Scene, ShapeObject
from pgpt_ros.data.shapesref.vocabulary import EXTREMES, KINDS, RELATIONS, UNKNOWN_THINGS

# A relation or position extreme must hold by this much (fraction of the short side), and a
# size extreme by this area ratio, so that no expression hinges on a pixel.
POSITION_MARGIN = 0.08
AREA_RATIO = 1.4


@dataclass(frozen=True)
class Description:
    """What a phrase names: a colour and/or a shape (None: any), or a thing outside the
    vocabulary ("cat", optionally with a colour)."""

    colour: str | None = None
    shape: str | None = None
    thing: str | None = None

    def text(self, plural: bool = False) -> str:
        """ "red circle", "circles", "red shape", "shape", "red cars"."""
        if self.thing is not None:
            noun = UNKNOWN_THINGS[self.thing] if plural else self.thing
        else:
            noun = (self.shape or "shape") + ("s" if plural else "")
        return " ".join(filter(None, [self.colour, noun]))

    def fits(self, obj: ShapeObject) -> bool:
        return (
            self.thing is None
            and (self.colour is None or obj.colour == self.colour)
            and (self.shape is None or obj.shape == self.shape)
        )


@dataclass(frozen=True)
class Expression:
    """A referring command about a scene and the indices of the objects it refers to.

    ``subject`` is what it names, ``word`` its relation ("left of") or extreme ("largest") and
    ``reference`` the object a relation is judged against; ``command`` is its wording.
    """

    command: str
    kind: str
    targets: tuple[int, ...]
    plural: bool = False  # "all ..." commands
    meta: dict = field(default_factory=dict, compare=False)
    subject: Description | None = field(default=None, compare=False)
    word: str | None = field(default=None, compare=False)
    reference: Description | None = field(default=None, compare=False)

    def worded(self, command: str) -> Expression:
        """The same expression (same targets) with another wording."""
        return dataclasses.replace(self, command=command)


def bare_text(expression: Expression) -> str:
    """The expression without article or verb: "red circle", "largest circle", "circle left of
    the blue triangle", "red circles"."""
    e = expression
    if e.subject is None:
        raise ValueError(f"{e.command!r} has no parts to word; take expressions from "
                         "commands_for() or expressions(), which fill them")  # fmt: skip
    return _text(e.subject, e.plural, e.word, e.reference)


def _text(subject: Description, plural: bool, word: str | None,
          reference: Description | None) -> str:  # fmt: skip
    """By the expression's parts, not its kind: an absent command may be worded as a relation
    or an extreme (``restate_absent``)."""
    if reference is not None:
        return f"{subject.text()} {word} the {reference.text()}"
    if word is not None:
        return f"{word} {subject.text()}"
    return subject.text(plural)


def plain_command(expression: Expression) -> str:
    """ "the red circle", "all red circles": the plain phrasing every other one is judged by."""
    return ("all " if expression.plural else "the ") + bare_text(expression)


def _make(kind: str, targets: Sequence[int], subject: Description, plural: bool = False,
          word: str | None = None, reference: Description | None = None,
          meta: dict | None = None) -> Expression:  # fmt: skip
    text = _text(subject, plural, word, reference)
    return Expression(text, kind, tuple(targets), plural, meta or {}, subject, word, reference)


def _descriptions(objects: Sequence[ShapeObject]) -> list[Description]:
    """Every (colour, shape) description that fits at least one object; None is "any"."""
    found = {(None, None)}
    for o in objects:
        found |= {(o.colour, o.shape), (None, o.shape), (o.colour, None)}
    ordered = sorted(found, key=lambda d: (d[0] or "", d[1] or ""))
    return [Description(colour, shape) for colour, shape in ordered]


def _fits(objects: Sequence[ShapeObject]) -> dict[Description, list[int]]:
    """Each description of the scene and the objects it fits, in drawing order."""
    return {d: [i for i, o in enumerate(objects) if d.fits(o)] for d in _descriptions(objects)}


def relation_holds(relation: str, target: tuple[float, float], reference: tuple[float, float],
                   margin: float = POSITION_MARGIN, dominance: float = 1.0) -> bool:  # fmt: skip
    """Whether ``target`` is ``relation`` the reference; centres in the same (isotropic) units.

    The relation's axis must dominate: "left of" means mostly left (the leftward offset at least
    ``dominance`` times the vertical one) and by at least ``margin``.
    """
    dx, dy = target[0] - reference[0], target[1] - reference[1]
    along, across = {"left of": (-dx, dy), "right of": (dx, dy),
                     "above": (-dy, dx), "below": (dy, dx)}[relation]  # fmt: skip
    return along >= margin and along >= dominance * abs(across)


def relation_nearly_holds(relation: str, target: tuple[float, float],
                          reference: tuple[float, float]) -> bool:  # fmt: skip
    """A looser test: an object a person might still call ``relation`` the reference.

    A relation expression's target passes ``relation_holds``; every other object of the named kind
    must fail this one, so no expression hinges on a few pixels or a 45-degree judgement call.
    """
    return relation_holds(relation, target, reference, POSITION_MARGIN / 2, dominance=0.7)


def _attribute(objects: Sequence[ShapeObject]) -> list[Expression]:
    return [_make("attribute", hits, d) for d, hits in _fits(objects).items()
            if (d.colour or d.shape) and len(hits) == 1]  # fmt: skip


def _multi(objects: Sequence[ShapeObject]) -> list[Expression]:
    return [_make("multi", hits, d, plural=True) for d, hits in _fits(objects).items()
            if len(hits) >= 2]  # fmt: skip


def _absent(objects: Sequence[ShapeObject], config: SceneConfig) -> list[Expression]:
    candidates = [Description(c, s) for c in config.colours for s in config.shapes]
    candidates += [Description(None, s) for s in config.shapes]
    candidates += [Description(c, None) for c in config.colours]
    found = [_make("absent", (), d, plural) for d in candidates
             if not any(d.fits(o) for o in objects)
             for plural in (False, True)]  # "the purple star", "all purple stars"  # fmt: skip
    if config.unknown_absent > 0:
        found += _unknown(config.colours)
    return found


@functools.cache
def _unknown(colours: tuple[str, ...]) -> list[Expression]:
    """ "the cat", "the red car", "all bottles": true of no ShapesRef scene (shared, immutable)."""
    return [_make("absent", (), Description(colour, None, thing), plural, meta={"absent": "unknown"})
            for thing in UNKNOWN_THINGS for colour in (None, *colours)
            for plural in (False, True)]  # fmt: skip


def restate_absent(rng: np.random.Generator, expression: Expression,
                   objects: Sequence[ShapeObject], config: SceneConfig) -> Expression:  # fmt: skip
    """A singular absent expression worded as an extreme ("the largest purple star") or as a
    relation whose subject ("the purple star left of the red circle") or reference ("the red
    circle left of the purple star") is what is not there: still true of nothing.

    Without them every relation and extreme a model sees has a target, and it learns that such
    a command always does: in real photographs it boxed something for every relation command.
    The other part of a relation is one of the scene's objects, as a person would name it (on
    a frame without shapes, any colour and shape of ``config``).
    """
    if expression.kind != "absent" or expression.plural or expression.word is not None:
        raise ValueError(f"only a singular absent expression is restated, got {expression!r}")
    missing = expression.subject
    if rng.random() < 1 / 3:
        word = EXTREMES[int(rng.integers(len(EXTREMES)))]
        return _make(
            "absent", (), missing, word=word, meta={**expression.meta, "worded": "extreme"}
        )
    relation = RELATIONS[int(rng.integers(len(RELATIONS)))]
    if objects:
        there = objects[int(rng.integers(len(objects)))]
        other = Description(there.colour, there.shape)
    else:
        colours, shapes = config.colours, config.shapes
        other = Description(colours[int(rng.integers(len(colours)))],
                            shapes[int(rng.integers(len(shapes)))])  # fmt: skip
    subject, reference = (missing, other) if rng.random() < 0.5 else (other, missing)
    return _make("absent", (), subject, word=relation, reference=reference,
                 meta={**expression.meta, "worded": "relation"})  # fmt: skip


def _extreme(objects: Sequence[ShapeObject]) -> list[Expression]:
    keys = {
        "leftmost": lambda o: -o.ref_centre[0], "rightmost": lambda o: o.ref_centre[0],
        "topmost": lambda o: -o.ref_centre[1], "bottommost": lambda o: o.ref_centre[1],
    }  # fmt: skip
    found = []
    for description, group in _fits(objects).items():
        if len(group) < 2:
            continue
        for word in EXTREMES:
            if word in keys:
                ranked = sorted(group, key=lambda i: keys[word](objects[i]), reverse=True)
                first, second = (keys[word](objects[i]) for i in ranked[:2])
                clear = first - second >= POSITION_MARGIN
            else:  # the winner's area differs from the runner-up's by AREA_RATIO
                largest = word == "largest"
                ranked = sorted(group, key=lambda i: objects[i].ref_area, reverse=largest)
                first, second = (objects[i].ref_area for i in ranked[:2])
                clear = max(first, second) >= AREA_RATIO * min(first, second)
            if clear:
                found.append(_make("extreme", (ranked[0],), description, word=word))
    return found


def _relation(objects: Sequence[ShapeObject]) -> list[Expression]:
    """ "the <target> <relation> the <reference>": the reference has a unique description, and the
    target description alone is ambiguous but the relation singles out one object."""
    found = []
    fits = _fits(objects)
    centres = [o.ref_centre for o in objects]
    for ref_index in range(len(objects)):
        unique = [d for d, hits in fits.items() if (d.colour or d.shape) and hits == [ref_index]]
        if not unique:
            continue
        ref_desc = max(unique, key=lambda d: (d.colour is not None) + (d.shape is not None))
        others = [i for i in range(len(objects)) if i != ref_index]
        for relation in RELATIONS:
            holds = {i: relation_holds(relation, centres[i], centres[ref_index]) for i in others}
            near = {i: relation_nearly_holds(relation, centres[i], centres[ref_index])
                    for i in others}  # fmt: skip
            for description, hits_all in fits.items():
                named = [i for i in hits_all if i != ref_index]
                if len(named) < 2:
                    continue
                hits = [i for i in named if holds[i]]
                if len(hits) == 1 and [i for i in named if near[i]] == hits:
                    meta = {"relation": relation, "reference": ref_index}
                    found.append(_make("relation", hits, description, word=relation,
                                       reference=ref_desc, meta=meta))  # fmt: skip
    return found


def expressions(scene: Scene, kind: str, config: SceneConfig) -> list[Expression]:
    """Every expression of ``kind`` that is true of ``scene``, worded bare ("red circle")."""
    objects = scene.objects
    if kind == "attribute":
        return _attribute(objects)
    if kind == "relation":
        return _relation(objects)
    if kind == "extreme":
        return _extreme(objects)
    if kind == "multi":
        return _multi(objects)
    if kind == "absent":
        return _absent(objects, config)
    raise ValueError(f"unknown expression kind {kind!r}; choose from {KINDS}")


def left_to_right(scene: Scene, targets: tuple[int, ...]) -> tuple[int, ...]:
    """Targets in answer order: by the centre of their visible box, left to right."""
    return tuple(sorted(targets, key=lambda i: (scene.objects[i].ref_centre, i)))


def commands_for(scene: Scene, config: SceneConfig | None = None,
                 kinds: Sequence[str] = KINDS) -> list[Expression]:  # fmt: skip
    """Every expression of the given kinds that is true of ``scene``, as "the ..." commands.

    Multi-object targets are listed left to right, the order answers use.
    """
    config = config or SceneConfig()
    found = []
    for kind in kinds:
        for e in expressions(scene, kind, config):
            found.append(dataclasses.replace(e, command=plain_command(e),
                                             targets=left_to_right(scene, e.targets)))  # fmt: skip
    return found

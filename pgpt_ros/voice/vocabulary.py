"""The words a perception model understands, and the command grammar they form.

Speech recognition is biased toward these words (Whisper: a prompt of example commands that use
them; pocketsphinx: the command grammar as JSGF), and the normaliser snaps transcripts onto the
same grammar (``grammar.Snapper``). The default is ShapesRef's vocabulary and wordings, the
embedded model's training data (``pgpt_ros.data.shapesref.phrasing``); a model trained on other
data brings a YAML file with the same fields (``Vocabulary.from_file``):

    attributes: [red, blue, white]            # words that describe an object
    nouns: [mug, laptop, bottle, object]      # singular; plurals add "s" unless listed
    plurals: {glass: glasses}                 # optional irregular plurals
    relations: [left of, right of, next to, on]
    extremes: [largest, leftmost]
    singular_templates: ["find the {}", "the {}", "where is the {}"]
    plural_templates: ["all {}", "find all {}"]
    spoken_singular: ["{}", "could you find {}", "i'm looking for {}"]   # optional
    spoken_plural: ["{}", "show me {}"]                                   # optional
    sides: {left of: left}                    # optional: "to the left of" says "left of"

A template's ``{}`` holds a bare description: "red mug", "largest red mug", "mug next to the
glass", "mug that is red"; plural: "red mugs", "mugs that are red". A spoken wrapper's ``{}``
holds a whole noun phrase, in every form the model is trained on: "the red mug" (and the bare
descriptions' other forms after "the"), "a red mug", "the red one", "the largest of the red mugs",
"the mug that is next to the glass", "the mug to the left of the glass" (``sides``); plural: "all
red mugs", "all the red mugs", "all mugs that are red", "all the red ones". Without spoken
wrappers the grammar is the templates alone. "one" and "ones" stand for the noun: like a colour
or a shape, a snap never adds them ("find the red" stays no command), nor repairs a heard word
into them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pgpt_ros.data import shapesref
from pgpt_ros.data.shapesref import phrasing
from pgpt_ros.voice.grammar import Alt, Expr, Grammar, Opt, Ref, Seq, around

# "the red one", "all the red ones": the noun, unsaid. Snapping takes them only as heard ("on" is a
# spelling away from "one": "find the blue on the shapes" must not become "find the blue one").
PRONOUNS = frozenset({"one", "ones"})
# Spoken either way ("I'm looking for all the stars" is "I am looking for {}"): a template or
# wrapper with one of these also matches with the other.
CONTRACTIONS = (("i am", "i'm"), ("where is", "where's"))
MAPPINGS = ("plurals", "sides")  # the fields that are mappings; the others are word lists
TEMPLATES = ("singular_templates", "plural_templates", "spoken_singular", "spoken_plural")


@dataclass(frozen=True)
class Vocabulary:
    """A command vocabulary. Templates hold one ``{}`` where the object description goes, spoken
    wrappers one ``{}`` where the noun phrase goes (the module docstring has the forms)."""

    attributes: tuple[str, ...]
    nouns: tuple[str, ...]
    relations: tuple[str, ...]
    extremes: tuple[str, ...]
    singular_templates: tuple[str, ...]
    plural_templates: tuple[str, ...]
    plurals: dict[str, str] = field(default_factory=dict)
    spoken_singular: tuple[str, ...] = ()
    spoken_plural: tuple[str, ...] = ()
    sides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.nouns:
            raise ValueError("a vocabulary needs at least one noun")
        for template in (*self.templates, *self.spoken_singular, *self.spoken_plural):
            if template.count("{}") != 1:
                raise ValueError(f"template {template!r} must contain exactly one {{}}")
        unknown = sorted(set(self.sides) - set(self.relations))
        if unknown:
            raise ValueError(f"sides {unknown} are no relations; relations: {list(self.relations)}")

    @classmethod
    def shapesref(cls) -> Vocabulary:
        """The embedded model's vocabulary: ShapesRef's words, templates and spoken wrappers (a
        noun phrase alone, as the reordered wordings are trained, is the wrapper "{}")."""
        return cls(
            attributes=tuple(shapesref.COLOURS),
            nouns=(*shapesref.SHAPES, "shape"),
            relations=shapesref.RELATIONS,
            extremes=shapesref.EXTREMES,
            singular_templates=_spoken(phrasing.SINGULAR_TEMPLATES),
            plural_templates=_spoken(phrasing.PLURAL_TEMPLATES),
            spoken_singular=_spoken(("{}", *phrasing.SPOKEN_SINGULAR)),
            spoken_plural=_spoken(("{}", *phrasing.SPOKEN_PLURAL)),
            sides=dict(phrasing.SIDES),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Vocabulary:
        """A vocabulary from a YAML file with the fields of this class (see the module doc)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary file {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(
                f"{path}: unknown vocabulary fields {unknown}; known: {sorted(fields)}"
            )
        lists = {k: tuple(str(w).lower() for w in data.get(k) or ()) for k in fields - {*MAPPINGS}}
        lists.update({k: _spoken(lists[k]) for k in TEMPLATES})
        mappings = {k: {str(a).lower(): str(b).lower() for a, b in (data.get(k) or {}).items()}
                    for k in MAPPINGS}  # fmt: skip
        return cls(**lists, **mappings)

    @classmethod
    def load(cls, path: str | Path | None) -> Vocabulary:
        """``from_file(path)``, or the ShapesRef vocabulary when ``path`` is empty."""
        return cls.from_file(path) if path else cls.shapesref()

    def plural(self, noun: str) -> str:
        return self.plurals.get(noun, noun + "s")

    @property
    def content_words(self) -> frozenset[str]:
        """Words that carry the meaning of a command: a wrong one changes what is found."""
        words = {*self.attributes, *self.nouns, *map(self.plural, self.nouns), *self.extremes}
        words |= {w for relation in self.relations for w in relation.split() if w != "of"}
        return frozenset(words | {*self.sides.values(), *PRONOUNS, "all"})

    @property
    def words(self) -> tuple[str, ...]:
        """Every word a command can contain, content words first."""
        content = [*self.attributes, *self.nouns, *map(self.plural, self.nouns), *self.extremes]
        return _unique([*content, *self.grammar().words()])

    @property
    def templates(self) -> tuple[str, ...]:
        return (*self.singular_templates, *self.plural_templates)

    def examples(self) -> list[str]:
        """Commands that together use every attribute, noun, extreme, relation and template,
        then each noun-phrase form of the spoken wrappers once (what Whisper's prompt shows it;
        every wrapper would make the prompt too long to help)."""
        attributes, nouns = self.attributes or ("",), self.nouns
        count = max(len(self.singular_templates), len(attributes), len(nouns),
                    2 * len(self.extremes), 2 * len(self.relations))  # fmt: skip
        commands = []
        for i in range(count):
            description = f"{attributes[i % len(attributes)]} {nouns[i % len(nouns)]}"
            if i % 2 == 0 and self.extremes:
                description = f"{self.extremes[i // 2 % len(self.extremes)]} {description}"
            elif self.relations:
                other = f"{attributes[(i + 1) % len(attributes)]} {nouns[(i + 1) % len(nouns)]}"
                description += f" {self.relations[i // 2 % len(self.relations)]} the {other}"
            template = self.singular_templates[i % len(self.singular_templates)]
            commands.append(template.format(description))
        if self.attributes:
            commands.append(f"the {nouns[-1]} that is {attributes[-1]}")
        for i, template in enumerate(self.plural_templates):
            noun = self.plural(nouns[(i + 2) % len(nouns)])
            commands.append(template.format(f"{attributes[(i + 3) % len(attributes)]} {noun}"))
        commands += self._spoken_examples()
        return [" ".join(c.split()) for c in commands]

    def _spoken_examples(self) -> list[str]:
        """One command per noun-phrase form, each in the next spoken wrapper."""
        if not self.attributes:
            return []
        a, n = self.attributes, self.nouns
        singular = [f"the {a[1 % len(a)]} one", f"{_article(a[2 % len(a)])} {n[-1]}"]
        if self.extremes:
            singular.append(f"the {self.extremes[-1]} of the {a[3 % len(a)]} {self.plural(n[0])}")
        for side in list(self.sides.values())[:1]:
            singular.append(f"the {n[1 % len(n)]} to the {side} of the {a[4 % len(a)]} {n[0]}")
        if self.relations:
            singular.append(f"the {n[0]} that is {self.relations[-1]} the {a[0]} {n[-1]}")
        plural = [f"all the {a[-1]} ones", f"all {self.plural(n[1 % len(n)])} that are {a[0]}"]
        return [*_wrapped(self.spoken_singular, singular), *_wrapped(self.spoken_plural, plural)]

    def prompt(self) -> str:
        """The text Whisper is conditioned on to favour these words: the example commands
        written as a transcript would be ("Find the red circle. The ...")."""
        return " ".join(c[0].upper() + c[1:] + "." for c in self.examples())

    def grammar(self) -> Grammar:
        """Every command: a template around a bare description, or a spoken wrapper around a
        noun phrase (the forms are in the module docstring)."""
        attribute, extreme = Alt(self.attributes), Alt(self.extremes)
        plurals = Alt(tuple(map(self.plural, self.nouns)))
        extremes = [Opt(extreme)] if self.extremes else []
        described: Expr = Ref("object")
        if self.relations:
            described = Seq((Ref("object"), Opt(Seq((Ref("relation"), "the", Ref("object"))))))
        sides = tuple(f"to the {side} of" for side in self.sides.values())
        noun_phrase = [Seq(("the", Ref("described"))),
                       Seq((Alt(("a", "an")), Opt(attribute), Ref("noun"))),
                       Seq(("the", attribute, "one"))]  # fmt: skip
        if self.extremes:
            noun_phrase.append(Seq(("the", extreme, "of the", Ref("plural_described"))))
        forms = {  # rule -> (templates, the rule their {} holds) for templates and wrappers
            "singular": ((self.singular_templates, "described"),
                         (self.spoken_singular, "noun_phrase")),
            "plural": ((self.plural_templates, "plural_described"),
                       (self.spoken_plural, "plural_phrase")),
        }  # fmt: skip
        rules: dict[str, Expr] = {
            "command": Alt(tuple(Ref(name) for name, said in forms.items()
                                 if any(templates for templates, _ in said))),
            **{name: Alt(tuple(around(_contracted(templates), Ref(part)) for templates, part in said
                               if templates)) for name, said in forms.items()},
            "noun_phrase": Alt(tuple(noun_phrase)),
            "plural_phrase": Alt((Seq(("all", Opt("the"), Ref("plural_described"))),
                                  Seq(("all the", attribute, "ones")))),
            "described": described,
            "plural_described": Alt((Seq((Opt(attribute), plurals)),
                                     Seq((plurals, "that are", attribute)))),
            "object": Alt((Seq((*extremes, Opt(attribute), Ref("noun"))),
                           Seq((*extremes, Ref("noun"), "that is", attribute)))),
            "noun": Alt(self.nouns),
            "relation": Seq((Opt("that is"), Alt((*self.relations, *sides)))),
        }  # fmt: skip
        return Grammar(rules).reachable()  # no spoken wrappers: no noun phrases

    def jsgf(self) -> str:
        """The command grammar in JSGF, for pocketsphinx."""
        return self.grammar().jsgf()


def _spoken(templates: tuple[str, ...]) -> tuple[str, ...]:
    """Templates as transcripts are cleaned: lower case, no punctuation ("Where is {}?")."""
    return _unique(" ".join(re.sub(r"[^a-z'{} ]", " ", t.lower()).split()) for t in templates)


def _contracted(templates: tuple[str, ...]) -> tuple[str, ...]:
    """The templates, and each with a ``CONTRACTIONS`` pair said the other way."""
    found = []
    for template in templates:
        found.append(template)
        for pair in CONTRACTIONS:
            for said, other in (pair, pair[::-1]):
                if f" {said} " in f" {template} ":
                    found.append(f" {template} ".replace(f" {said} ", f" {other} ").strip())
    return _unique(found)


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _wrapped(wrappers: tuple[str, ...], noun_phrases: list[str]) -> list[str]:
    """Each noun phrase in the next wrapper (none without wrappers)."""
    return [wrappers[i % len(wrappers)].format(p) for i, p in enumerate(noun_phrases)] if wrappers else []  # fmt: skip


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))

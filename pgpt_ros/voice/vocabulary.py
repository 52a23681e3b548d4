"""The words a perception model understands, and the command grammar they form.

Speech recognition is biased toward these words (Whisper: a prompt of example commands that use
all of them; pocketsphinx: the command grammar as JSGF), and the normaliser snaps transcripts onto
the same grammar (``grammar.Snapper``). The default is ShapesRef's vocabulary, the embedded
model's training data; a model trained on other data brings a YAML file with the same fields
(``Vocabulary.from_file``):

    attributes: [red, blue, white]            # words that describe an object
    nouns: [mug, laptop, bottle, object]      # singular; plurals add "s" unless listed
    plurals: {glass: glasses}                 # optional irregular plurals
    relations: [left of, right of, next to, on]
    extremes: [largest, leftmost]
    singular_templates: ["find the {}", "the {}", "where is the {}"]
    plural_templates: ["all {}", "find all {}"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pgpt_ros.data import shapesref
from pgpt_ros.data.shapesref import phrasing
from pgpt_ros.voice.grammar import Alt, Expr, Grammar, Opt, Ref, Seq

# How people wrap a command when they speak it; the model is trained on these forms too.
SPOKEN_SINGULAR = ("can you find the {} please", "show me the {}", "where is the {}")
SPOKEN_PLURAL = ("show me all the {}", "where are all the {}")
QUALIFIER = ("that", "is")  # "the circle that is red"


@dataclass(frozen=True)
class Vocabulary:
    """A command vocabulary. Templates hold one ``{}`` where the object description goes."""

    attributes: tuple[str, ...]
    nouns: tuple[str, ...]
    relations: tuple[str, ...]
    extremes: tuple[str, ...]
    singular_templates: tuple[str, ...]
    plural_templates: tuple[str, ...]
    plurals: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.nouns:
            raise ValueError("a vocabulary needs at least one noun")
        for template in (*self.singular_templates, *self.plural_templates):
            if template.count("{}") != 1:
                raise ValueError(f"template {template!r} must contain exactly one {{}}")

    @classmethod
    def shapesref(cls) -> Vocabulary:
        """The embedded model's vocabulary: ShapesRef's words, templates and spoken forms."""
        return cls(
            attributes=tuple(shapesref.COLOURS),
            nouns=(*shapesref.SHAPES, "shape"),
            relations=shapesref.RELATIONS,
            extremes=shapesref.EXTREMES,
            singular_templates=_unique(
                [t.rstrip("?") for t in phrasing.SINGULAR_TEMPLATES] + list(SPOKEN_SINGULAR)
            ),
            plural_templates=_unique(
                [t.rstrip("?") for t in phrasing.PLURAL_TEMPLATES] + list(SPOKEN_PLURAL)
            ),
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
        lists = {k: tuple(str(w).lower() for w in data.get(k) or ()) for k in fields - {"plurals"}}
        return cls(
            **lists, plurals={str(k): str(v) for k, v in (data.get("plurals") or {}).items()}
        )

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
        return frozenset(words | {"all"})

    @property
    def words(self) -> tuple[str, ...]:
        """Every word a command can contain, content words first."""
        phrasing = [w for t in self.templates for w in t.replace("{}", " ").split()]
        relation_words = [w for relation in self.relations for w in relation.split()]
        ordered = [*self.attributes, *self.nouns, *map(self.plural, self.nouns), *self.extremes,
                   *relation_words, *phrasing, *QUALIFIER, "all", "the"]  # fmt: skip
        return _unique(ordered)

    @property
    def templates(self) -> tuple[str, ...]:
        return (*self.singular_templates, *self.plural_templates)

    def examples(self) -> list[str]:
        """Commands that together use every word of the vocabulary: each template once, each
        attribute, noun, extreme and relation in turn (what Whisper's prompt shows it)."""
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
        return [" ".join(c.split()) for c in commands]

    def prompt(self) -> str:
        """The text Whisper is conditioned on to favour these words: the example commands
        written as a transcript would be ("Find the red circle. The ...")."""
        return " ".join(c[0].upper() + c[1:] + "." for c in self.examples())

    def grammar(self) -> Grammar:
        """Every command: a template around an object description; singular descriptions may
        relate the object to a second one, or name it "the <noun> that is <attribute>"."""

        def around(templates: tuple[str, ...], description: Expr) -> Alt:
            return Alt(tuple(
                Seq(tuple(p for p in (t.split("{}")[0].strip(), description, t.split("{}")[1].strip()) if p))
                for t in templates
            ))  # fmt: skip

        attribute = Alt(self.attributes)
        described: Expr = Ref("object")
        if self.relations:
            described = Seq((Ref("object"), Opt(Seq((Ref("relation"), "the", Ref("object"))))))
        rules: dict[str, Expr] = {
            "command": Alt((Ref("singular"), Ref("plural"))) if self.plural_templates else Ref("singular"),
            "singular": around(self.singular_templates, described),
            "plural": around(self.plural_templates, Seq((Opt(attribute), Alt(tuple(map(self.plural, self.nouns)))))),
            "object": Alt((
                Seq((*([Opt(Alt(self.extremes))] if self.extremes else []), Opt(attribute), Ref("noun"))),
                Seq((Ref("noun"), "that is", attribute)),
            )),
            "noun": Alt(self.nouns),
            "relation": Alt(self.relations),
        }  # fmt: skip
        return Grammar(rules)

    def jsgf(self) -> str:
        """The command grammar in JSGF, for pocketsphinx."""
        return self.grammar().jsgf()


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))

"""The words a perception model understands, and the command grammar they form.

Speech recognition is biased toward these words (Whisper: a prompt of them; pocketsphinx: a JSGF
grammar built from them), and the normaliser snaps near-miss words onto them. The default is
ShapesRef's vocabulary, the embedded model's training data; a model trained on other data brings
a YAML file with the same fields (``Vocabulary.from_file``):

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
        """Every word a command can contain, content words first (the order of the prompt)."""
        phrasing = [w for t in self.templates for w in t.replace("{}", " ").split()]
        relation_words = [w for relation in self.relations for w in relation.split()]
        ordered = [*self.attributes, *self.nouns, *map(self.plural, self.nouns), *self.extremes,
                   *relation_words, *phrasing, *QUALIFIER, "all", "the"]  # fmt: skip
        return _unique(ordered)

    @property
    def templates(self) -> tuple[str, ...]:
        return (*self.singular_templates, *self.plural_templates)

    def prompt(self) -> str:
        """The text Whisper is conditioned on to favour these words."""
        return " ".join(self.words)

    def jsgf(self) -> str:
        """A JSGF grammar of every command form: template around an object description, an
        optional relation to a second object, "the <noun> that is <attribute>", plurals."""

        def alternatives(items: tuple[str, ...] | list[str]) -> str:
            return "(" + " | ".join(items) + ")" if items else "<NULL>"

        def wrappers(templates: tuple[str, ...]) -> tuple[str, str]:
            prefixes = _unique(t.split("{}")[0].strip() for t in templates)
            suffixes = _unique(t.split("{}")[1].strip() for t in templates)
            return _optional(prefixes), _optional(suffixes)

        s_prefix, s_suffix = wrappers(self.singular_templates)
        p_prefix, p_suffix = wrappers(self.plural_templates)
        attribute = alternatives(self.attributes)
        rules = [
            "#JSGF V1.0;",
            "grammar command;",
            "public <command> = <singular> | <plural>;",
            f"<singular> = {s_prefix} <object> [<relation> the <object>] {s_suffix};",
            f"<plural> = {p_prefix} [{attribute}] {alternatives(list(map(self.plural, self.nouns)))}"
            f" {p_suffix};",
            f"<object> = [{alternatives(self.extremes)}] [{attribute}] <noun>"
            f" | <noun> that is {attribute};",
            f"<noun> = {alternatives(self.nouns)};",
            f"<relation> = {alternatives(self.relations)};",
        ]
        return "\n".join(rules) + "\n"


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _optional(options: tuple[str, ...]) -> str:
    """``[a | b]`` of the non-empty options (an empty one is what the brackets allow)."""
    present = [o for o in options if o]
    return "[" + " | ".join(present) + "]" if present else ""

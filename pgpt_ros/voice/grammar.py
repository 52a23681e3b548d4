"""The command grammar: which word sequences are commands, and the command nearest a transcript.

One grammar (``Vocabulary.grammar``) serves both engines. pocketsphinx decodes against it as JSGF
(``Grammar.jsgf``), so it can only hear commands. Whisper transcribes freely, and ``Snapper`` maps
its words onto the grammar: the command reached from the heard words by the cheapest edits, an edit
distance over word sequences computed on the grammar's word graph (a finite automaton, so every
command is considered without listing the millions there are). What an edit costs is chosen so that
a snap repairs and never invents meaning:

- keeping a heard word: free;
- replacing a heard word outside the vocabulary by a command word: the words' spelling distance
  (rapidfuzz Indel, 0-1), only between words at least ``MIN_SIMILARITY`` alike ("left on" ->
  "left of") and ``MIN_CONTENT_SIMILARITY`` for a meaning word ("circel" -> "circle", never
  "stop" -> "star"); a heard vocabulary word is never swapped for another ("red" was heard);
  words that must be heard as they are (``Snapper``'s ``exact``: "one", a spelling away from the
  "on" recognisers write everywhere) are never reached by a replacement;
- dropping a heard word: ``DROP`` (fillers, words outside the grammar; a vocabulary word costs
  ``DROP_KNOWN``);
- adding a word nobody said: ``ADD`` for the words that carry no meaning ("the", "of", "me"), and
  never for a colour, shape, relation or extreme: a transcript that names no shape stays one that
  names no shape.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass

from rapidfuzz.distance import Indel

MIN_SIMILARITY = 0.4  # normalised Indel similarity (0-1): "on" ~ "of" 0.5
MIN_CONTENT_SIMILARITY = 0.6  # into a meaning word: "blu" ~ "blue" 0.86; "stop" ~ "star" 0.5
DROP = 0.6  # dropping a heard word outside the vocabulary
DROP_KNOWN = 1.0  # dropping a heard vocabulary word (it may be meaning the speaker said)
ADD = 0.4  # adding a word that carries no meaning


@dataclass(frozen=True)
class Seq:
    """The parts one after another."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Alt:
    """One of the options."""

    options: tuple[Expr, ...]


@dataclass(frozen=True)
class Opt:
    """The part or nothing."""

    part: Expr


@dataclass(frozen=True)
class Ref:
    """The named rule of the grammar."""

    name: str


Expr = str | Seq | Alt | Opt | Ref  # a str is one or more words


@dataclass(frozen=True)
class Grammar:
    """Named rules; ``start`` is the rule a whole command matches. Rules may not recurse."""

    rules: dict[str, Expr]
    start: str = "command"

    def jsgf(self) -> str:
        """The grammar in JSGF (pocketsphinx's ``add_jsgf_string``)."""
        lines = ["#JSGF V1.0;", "grammar command;"]
        for name, expr in self.rules.items():
            public = "public " if name == self.start else ""
            lines.append(f"{public}<{name}> = {_jsgf(expr)};")
        return "\n".join(lines) + "\n"

    def words(self) -> tuple[str, ...]:
        """Every word of the grammar, in the order the rules first say it."""
        said = (p for rule in self.rules.values() for p in _parts(rule) if isinstance(p, str))
        return tuple(dict.fromkeys(word for part in said for word in part.split()))

    def reachable(self) -> Grammar:
        """The grammar without the rules a command never uses."""
        used, todo = set(), [self.start]
        while todo:
            name = todo.pop()
            if name not in used:
                used.add(name)
                todo += [p.name for p in _parts(self.rules[name]) if isinstance(p, Ref)]
        return Grammar({n: r for n, r in self.rules.items() if n in used}, self.start)


def _parts(expr: Expr) -> Iterator[str | Ref]:
    """The words and rule references of ``expr``, in order."""
    if isinstance(expr, str | Ref):
        yield expr
    elif isinstance(expr, Opt):
        yield from _parts(expr.part)
    else:
        for part in expr.parts if isinstance(expr, Seq) else expr.options:
            yield from _parts(part)


def around(templates: tuple[str, ...], part: Expr) -> Expr:
    """``part`` in the ``{}`` of each template ("find the {}", "can you find the {} please").

    Templates that end alike share one copy of ``part``: the word graph copies a part once per
    place it is used, so "find the {}", "show me the {}" and "{}" make one copy, not three.
    """
    starts: dict[str, list[str]] = {}
    for template in templates:
        before, after = (side.strip() for side in template.split("{}"))
        starts.setdefault(after, []).append(before)
    options = []
    for after, befores in starts.items():
        said = tuple(b for b in befores if b)
        start = [] if not said else [Alt(said) if len(said) == len(befores) else Opt(Alt(said))]
        options.append(Seq((*start, part, *([after] if after else []))))
    return Alt(tuple(options))


def _jsgf(expr: Expr) -> str:
    if isinstance(expr, str):
        return expr
    if isinstance(expr, Seq):
        return " ".join(_jsgf(p) for p in expr.parts) if expr.parts else "<NULL>"
    if isinstance(expr, Alt):
        return "(" + " | ".join(_jsgf(o) for o in expr.options) + ")" if expr.options else "<VOID>"
    if isinstance(expr, Opt):
        return f"[{_jsgf(expr.part)}]"
    return f"<{expr.name}>"


class WordGraph:
    """The grammar as a finite automaton: states, and arcs that say one word or nothing (None).

    Built by Thompson's construction: every command is a path from ``start`` to ``final``.
    """

    def __init__(self, grammar: Grammar) -> None:
        self.arcs: list[list[tuple[str | None, int]]] = []
        self.start = self._state()
        self.final = self._add(grammar, Ref(grammar.start), self.start)

    def _state(self) -> int:
        self.arcs.append([])
        return len(self.arcs) - 1

    def _arc(self, source: int, word: str | None) -> int:
        target = self._state()
        self.arcs[source].append((word, target))
        return target

    def _add(self, grammar: Grammar, expr: Expr, state: int) -> int:
        """Adds ``expr`` from ``state``; returns the state where it ends."""
        if isinstance(expr, str):
            for word in expr.split():
                state = self._arc(state, word)
            return state
        if isinstance(expr, Seq):
            for part in expr.parts:
                state = self._add(grammar, part, state)
            return state
        if isinstance(expr, Ref):
            return self._add(grammar, grammar.rules[expr.name], state)
        end = self._state()
        options = expr.options if isinstance(expr, Alt) else (expr.part, Seq(()))
        for option in options:
            self.arcs[self._add(grammar, option, state)].append((None, end))
        return end


@dataclass(frozen=True)
class Snap:
    """The command nearest the heard words, and the cost of the edits that reach it."""

    command: str
    cost: float


class Snapper:
    """Heard words -> the nearest command of ``grammar``.

    Arguments:
        grammar (Grammar): the commands.
        content_words (frozenset[str]): words that carry meaning: never added, and a heard word
            is replaced by one only when their spelling is ``MIN_CONTENT_SIMILARITY`` alike.
        exact (frozenset[str]): words that count only when heard as they are: no replacement
            reaches them.
    """

    def __init__(self, grammar: Grammar, content_words: frozenset[str],
                 exact: frozenset[str] = frozenset()) -> None:  # fmt: skip
        self.graph = WordGraph(grammar)
        self.content_words = content_words
        self.exact = exact
        self.known = frozenset(w for arcs in self.graph.arcs for w, _ in arcs if w is not None)

    def __call__(self, heard: list[str]) -> Snap | None:
        """The cheapest command, or None when no command is reachable without invention."""
        # cost[s], back[s] for the heard words consumed so far; back holds (previous column's
        # state or this column's, consumed a word?, word said) to read the command back.
        column = self._close({self.graph.start: 0.0}, {self.graph.start: None})
        columns = [column]
        for word in heard:
            cost, back = {}, {}
            for state, (so_far, _) in column.items():
                drop = so_far + (DROP_KNOWN if word in self.known else DROP)
                if drop < cost.get(state, math.inf):
                    cost[state], back[state] = drop, (state, True, None)
                for said, target in self.graph.arcs[state]:
                    if said is None:
                        continue
                    step = so_far + self._replace(word, said)
                    if step < cost.get(target, math.inf):
                        cost[target], back[target] = step, (state, True, said)
            column = self._close(cost, back)
            columns.append(column)
        if self.graph.final not in column:
            return None
        return Snap(" ".join(self._read_back(columns)), column[self.graph.final][0])

    def _replace(self, heard: str, said: str) -> float:
        """A heard command word is kept or dropped, never swapped for another: "red" was heard."""
        if heard == said:
            return 0.0
        if heard in self.known or said in self.exact:
            return math.inf
        similarity = Indel.normalized_similarity(heard, said)
        needed = MIN_CONTENT_SIMILARITY if said in self.content_words else MIN_SIMILARITY
        return 1.0 - similarity if similarity >= needed else math.inf

    def _close(self, cost: dict, back: dict) -> dict[int, tuple[float, tuple | None]]:
        """Extends one column by steps that consume no heard word: nothing-arcs (free) and added
        words (ADD; never a content word). Dijkstra, as added words cost."""
        queue = [(c, s) for s, c in cost.items()]
        heapq.heapify(queue)
        done: dict[int, tuple[float, tuple | None]] = {}
        while queue:
            so_far, state = heapq.heappop(queue)
            if state in done:
                continue
            done[state] = (so_far, back[state])
            for said, target in self.graph.arcs[state]:
                if said in self.content_words:
                    continue
                step = so_far + (0.0 if said is None else ADD)
                if target not in done and step < cost.get(target, math.inf):
                    cost[target], back[target] = step, (state, False, said)
                    heapq.heappush(queue, (step, target))
        return done

    def _read_back(self, columns: list[dict]) -> list[str]:
        said: list[str] = []
        index, state = len(columns) - 1, self.graph.final
        while True:
            step = columns[index][state][1]
            if step is None:
                return said[::-1]
            state, consumed, word = step
            if word is not None:
                said.append(word)
            index -= consumed

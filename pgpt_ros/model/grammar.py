"""The answer grammar: greedy decoding can only write a well-formed answer.

    answer := "not found" EOS  |  item ("," item)* EOS        item := phrase <vis>

A small model left alone writes answers no consumer can use: an empty answer (EOS first), a
phrase that names one word three times ("yellow yellow yellow square <vis>"), a ``<vis>`` with
no phrase, "not found" followed by a detection. ``AnswerGrammar`` masks the logits of each
decoding step to the tokens that can continue a well-formed answer, so the argmax is always one
of them. It has two modes:

- **phrases** (``config.answer_phrases`` set, as for the embedded model): a phrase is exactly one
  of the listed phrases, tokenised as ``pgpt_ros.model.tokens.encode_answer`` writes it; the
  allowed token sequences form a trie, walked one token per step.
- **structure** (no phrases, e.g. a user's LLaVA checkpoint): any words, but no EOS before a
  ``<vis>`` or a complete "not found", no ``<vis>`` without a phrase before it, nothing after
  "not found" but EOS.

The grammar only removes choices; where the model's own argmax is allowed it is kept, so a model
that already answers well answers the same. A detection's score still reads the unmasked
probability of ``<vis>`` (``generation.greedy_decode``).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch

from pgpt_ros.model import tokens


class _Node(dict):
    """A trie node: next token id -> node. A path ends with ``<vis>`` (the next item starts at
    the later-items root) or EOS."""


class AnswerGrammar:
    """The allowed next tokens of an answer, step by step; one instance per tokenizer.

    Arguments:
        tokenizer: the model's tokenizer (``tokens.phrase_ids`` encodes the phrases with it).
        phrases (Sequence[str]): the phrases an answer may name; empty: structure only.
        vis_token_id, eos_token_id (int): the model's ``<vis>`` and EOS ids.
    """

    def __init__(self, tokenizer, phrases: Sequence[str], *, vis_token_id: int,
                 eos_token_id: int) -> None:  # fmt: skip
        self.vis, self.eos = vis_token_id, eos_token_id
        self.not_found = tokens.not_found_ids(tokenizer)
        self.phrases = tuple(phrases)
        self._masks: dict[tuple, torch.Tensor] = {}
        if not self.phrases:
            # Tokens an answer never holds: other special tokens (<image>, padding, ...), and the
            # LM head's rows past the tokenizer's. Words: tokens that write visible text.
            texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))],
                                           skip_special_tokens=True)  # fmt: skip
            self._tokens = len(tokenizer)
            self._never = set(tokenizer.all_special_ids) - {vis_token_id, eos_token_id}
            self._words = {i for i, t in enumerate(texts) if t.strip(" " + tokens.SEPARATOR)}
            self._words -= self._never
        else:
            # Sequences from the start of the answer, and after each <vis>.
            self._first = _trie([tokens.phrase_ids(tokenizer, p, 0) + [self.vis]
                                 for p in self.phrases] + [self.not_found + [self.eos]])  # fmt: skip
            self._later = _trie([tokens.phrase_ids(tokenizer, p, 1) + [self.vis]
                                 for p in self.phrases] + [[self.eos]])  # fmt: skip

    def allowed(self, answer_ids: Sequence[int], vocab_size: int,
                device: torch.device) -> torch.Tensor:  # fmt: skip
        """(V,) bool over ``vocab_size`` logits: the tokens that may follow ``answer_ids`` (the
        answer so far, without the prompt). Masks are built once per grammar state and kept."""
        key = (self._state(answer_ids), vocab_size, device)
        mask = self._masks.get(key)
        if mask is None:
            mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
            mask[[t for t in self._choices(key[0]) if t < vocab_size]] = True
            self._masks[key] = mask
        return mask

    def constrain(self, answer_ids: Sequence[int], logits: torch.Tensor) -> torch.Tensor:
        """(1, V) logits with every token the grammar forbids after ``answer_ids`` at -inf."""
        allowed = self.allowed(answer_ids, logits.shape[-1], logits.device)
        return logits.masked_fill(~allowed, float("-inf"))

    def complete(self, answer_ids: Sequence[int]) -> bool:
        """Whether ``answer_ids`` (EOS excluded) is a whole answer: "not found", or items each
        ending with ``<vis>``."""
        ids = list(answer_ids)
        return ids == self.not_found or (bool(ids) and ids[-1] == self.vis)

    # ------------------------------------------------------------------------------ states
    def _state(self, answer_ids: Sequence[int]) -> tuple:
        """A hashable grammar state. Phrase mode: ("trie", tokens since the last ``<vis>``,
        whether there was one). Structure mode: one of ("not found",) (only EOS may follow),
        ("phrase",) (a phrase has begun: ``<vis>`` may close it), ("item",) (right after a
        ``<vis>``: the answer may end) or ("start",) (a phrase must begin)."""
        last_vis = max((i for i, t in enumerate(answer_ids) if t == self.vis), default=-1)
        tail = list(answer_ids[last_vis + 1 :])
        if self.phrases:
            return ("trie", tuple(tail), last_vis >= 0)
        if last_vis < 0 and tail == self.not_found:
            return ("not found",)
        if any(t in self._words for t in tail):
            return ("phrase",)
        return ("item",) if last_vis >= 0 and not tail else ("start",)

    def _choices(self, key: tuple) -> set[int]:
        if key[0] == "trie":
            _, path, after_vis = key
            node = self._later if after_vis else self._first
            for token in path:
                node = node[token]
            return set(node)
        forbidden = {"not found": None, "phrase": {self.eos}, "item": {self.vis},
                     "start": {self.eos, self.vis}}[key[0]]  # fmt: skip
        if forbidden is None:
            return {self.eos}
        return set(range(self._tokens)) - forbidden - self._never


def _trie(sequences: list[list[int]]) -> _Node:
    """Token sequences as a trie; a sequence's last token (``<vis>`` or EOS) ends its path."""
    root = _Node()
    for sequence in sequences:
        node = root
        for token in sequence[:-1]:
            node = node.setdefault(token, _Node())
        node.setdefault(sequence[-1], _Node())
    return root


_GRAMMARS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def answer_grammar(model) -> AnswerGrammar:
    """The grammar of ``model``'s answers (a ``PerceptionGPT``), built once and kept with it."""
    cfg = model.config
    tokenizer = model.require_tokenizer()
    key = (id(tokenizer), tuple(cfg.answer_phrases), cfg.vis_token_id, cfg.eos_token_id)
    cached = _GRAMMARS.get(model)
    if cached is None or cached[0] != key:
        grammar = AnswerGrammar(tokenizer, cfg.answer_phrases, vis_token_id=cfg.vis_token_id,
                                eos_token_id=cfg.eos_token_id)  # fmt: skip
        cached = (key, grammar)
        _GRAMMARS[model] = cached
    return cached[1]

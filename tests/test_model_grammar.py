"""The answer grammar: greedy decoding writes "not found" or ``phrase <vis>`` items, whatever the
logits want, and changes nothing when the model already answers well."""

import functools
import re

import numpy as np
import pytest
import torch

from pgpt_ros.model import answer, answer_grammar, build_model, preset_config, tokens
from pgpt_ros.runtime import AnswerPolicy, IncompleteAnswer, Perceiver
from tests.tiny_models import force_reply

COMMAND = "find all the red shapes"
PHRASES = ["red circle", "red square", "blue star", "yellow square"]


def tiny(phrases=()):
    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=64, head_width=32,
                           mask_size=16, answer_phrases=list(phrases))  # fmt: skip
    return build_model(config)


@pytest.fixture(scope="module")
def phrase_model():
    return tiny(PHRASES)


@pytest.fixture(scope="module")
def structure_model():
    return tiny()


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, size=(24, 40, 3), dtype=np.uint8)


def wants(model, texts_or_ids: list):
    """A logits processor whose favourite at each step is the next of ``texts_or_ids`` (a
    word is " word" as one token, an int is that id), then EOS forever."""
    tokenizer = model.tokenizer
    reply = []
    for item in texts_or_ids:
        reply += [item] if isinstance(item, int) else tokenizer(item, add_special_tokens=False)["input_ids"]  # fmt: skip
    return force_reply(model, COMMAND, reply)


def grammar_pattern(phrases):
    item = "(" + "|".join(re.escape(p) for p in phrases) + ") <vis>"
    return re.compile(f"^(not found|{item}(, {item})*)$")


def well_formed(text: str) -> bool:
    """Structure mode: "not found", or items each a non-empty phrase and one <vis>."""
    if text == tokens.NOT_FOUND:
        return True
    if not text.endswith(tokens.VIS_TOKEN):
        return False
    items = text.split(tokens.VIS_TOKEN)[:-1]
    return all(i.strip().lstrip(",").strip() for i in items)


@pytest.mark.parametrize(
    "wanted",
    [
        [],  # EOS at once: the empty answer
        [" yellow", " yellow", " yellow", " square"],
        ["<vis>"],  # a <vis> with no phrase
        [" not", " red", " square", "<vis>"],
        [" red", " circle", "<vis>", "<vis>"],
        [" red", " circle", "<vis>", ",", " red"],  # EOS in the middle of a later phrase
        [" not", " found", "<vis>"],
    ],
)
def test_phrase_mode_turns_any_wish_into_a_well_formed_answer(phrase_model, image, wanted):
    vis = phrase_model.config.vis_token_id
    force = wants(phrase_model, [vis if w == "<vis>" else w for w in wanted])
    free = answer(phrase_model, image, COMMAND, max_new_tokens=20, logits_processor=force,
                  constrain=False)  # fmt: skip
    held = answer(phrase_model, image, COMMAND, max_new_tokens=20, logits_processor=force)
    assert not grammar_pattern(PHRASES).match(free.text)  # the wish itself is ill-formed
    assert grammar_pattern(PHRASES).match(held.text), held.text
    assert held.complete
    assert [d.phrase for d in held.detections] == [
        p.strip(" ,") for p in held.text.split(tokens.VIS_TOKEN)[:-1]
    ]


def test_phrase_mode_keeps_each_step_inside_the_trie(phrase_model, image):
    """Random logits at every step: 50 answers, every one in the grammar's language."""
    generator = torch.Generator().manual_seed(0)

    def noise(ids, logits):
        return torch.randn(logits.shape, generator=generator) * 10

    pattern = grammar_pattern(PHRASES)
    for _ in range(50):
        reply = answer(phrase_model, image, COMMAND, max_new_tokens=40, logits_processor=noise)
        assert reply.complete and pattern.match(reply.text), reply.text


def test_phrase_mode_allows_exactly_the_next_tokens(phrase_model):
    grammar = answer_grammar(phrase_model)
    tok, cfg = phrase_model.tokenizer, phrase_model.config

    def ids(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    def allowed(prefix):
        mask = grammar.allowed(prefix, len(tok), torch.device("cpu"))
        return set(mask.nonzero().flatten().tolist())

    first_words = {ids(" red")[0], ids(" blue")[0], ids(" yellow")[0], ids(" not")[0]}
    assert allowed([]) == first_words
    assert allowed(ids(" red")) == {ids(" circle")[0], ids(" square")[0]}
    assert allowed(ids(" red circle")) == {cfg.vis_token_id}
    assert allowed(ids(" red circle") + [cfg.vis_token_id]) == {cfg.eos_token_id, ids(",")[0]}
    assert allowed(ids(" not found")) == {cfg.eos_token_id}
    assert grammar.complete(ids(" red circle") + [cfg.vis_token_id])
    assert grammar.complete(ids(" not found"))
    assert not grammar.complete(ids(" red circle"))


@pytest.mark.parametrize(
    ("wanted", "check"),
    [
        ([], lambda text: text != ""),
        (["<vis>", "<vis>"], lambda text: not text.startswith(tokens.VIS_TOKEN)),
        ([" not", " found", "<vis>"], lambda text: text == tokens.NOT_FOUND),
        ([" red", "<vis>", "<vis>"], lambda text: text.startswith("red <vis>")),
    ],
)
def test_structure_mode_holds_the_answer_shape(structure_model, image, wanted, check):
    vis = structure_model.config.vis_token_id
    force = wants(structure_model, [vis if w == "<vis>" else w for w in wanted])
    held = answer(structure_model, image, COMMAND, max_new_tokens=24, logits_processor=force)
    assert check(held.text), held.text
    if held.complete:
        assert well_formed(held.text), held.text


def test_structure_mode_answers_are_well_formed_under_random_logits(structure_model, image):
    generator = torch.Generator().manual_seed(1)
    vis = structure_model.config.vis_token_id

    def noise(ids, logits):
        out = torch.randn(logits.shape, generator=generator) * 3
        out[0, vis] += 8.0  # make <vis> and EOS (below) common, or few answers would end
        out[0, structure_model.config.eos_token_id] += 8.0
        return out

    ended = 0
    for _ in range(40):
        reply = answer(structure_model, image, COMMAND, max_new_tokens=24, logits_processor=noise)
        if reply.complete:
            ended += 1
            assert well_formed(reply.text), reply.text
    assert ended >= 20


@pytest.mark.parametrize("phrases", [PHRASES, []])
def test_a_well_formed_wish_is_answered_the_same_held_or_free(image, phrases):
    model = tiny(phrases)
    force = wants(model, [" red", " square", model.config.vis_token_id, ",", " blue", " star",
                          model.config.vis_token_id])  # fmt: skip
    free = answer(model, image, COMMAND, logits_processor=force, constrain=False)
    held = answer(model, image, COMMAND, logits_processor=force)
    assert held.text == free.text == "red square <vis>, blue star <vis>"
    assert held.num_tokens == free.num_tokens
    for a, b in zip(held.detections, free.detections, strict=True):
        np.testing.assert_array_equal(a.box, b.box)
        assert a.score == b.score  # the score reads the probability before the mask


def test_the_served_path_refuses_an_answer_the_token_limit_cut(phrase_model, image, monkeypatch):
    perceiver = Perceiver(phrase_model)
    perceiver.set_image(image)
    cut = AnswerPolicy(max_new_tokens=4, score_threshold=0.0)
    force = wants(phrase_model, [" red", " circle", phrase_model.config.vis_token_id, ",", " blue"])
    assert not perceiver.answer(COMMAND, policy=cut, logits_processor=force).complete
    monkeypatch.setattr(perceiver, "answer",
                        functools.partial(Perceiver.answer, perceiver, logits_processor=force))  # fmt: skip
    with pytest.raises(IncompleteAnswer, match="raise max_new_tokens") as error:
        perceiver.predict(COMMAND, policy=cut)
    assert error.value.text == "red circle <vis>,"
    whole = perceiver.predict(COMMAND, policy=AnswerPolicy(max_new_tokens=8, score_threshold=0))
    assert whole.answer == "red circle <vis>, blue star <vis>"
    assert whole.detections[0].phrase == "red circle"

"""The fast path (static KV cache, image-prefix reuse, CUDA graphs) answers exactly as the reference
``PerceptionGPT.answer`` does: same tokens, phrases, boxes, masks and scores."""

import numpy as np
import pytest
import torch

from pgpt_ros.model import PerceptionGPTConfig, build_model, tokens
from pgpt_ros.runtime import Perceiver, decoder
from pgpt_ros.runtime.decoder import BUCKETS, StaticDecoder, bucket

COMMAND = "find all the red shapes"
PHRASES = ["red circle", "red square", "red star"]


def tiny(**overrides):
    torch.manual_seed(0)
    config = preset_config("tiny", 
        image_size=32, vision_width=32, text_width=64, head_width=32, mask_size=16, **overrides
    )
    return build_model(config)


@pytest.fixture(scope="module")
def model():
    return tiny()


def picture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(24, 40, 3), dtype=np.uint8)


def forced(model, command: str, phrases: list[str]):
    """A logits processor that makes greedy decoding answer ``phrases`` with one ``<vis>`` each.

    An untrained model almost never emits ``<vis>``; forcing it exercises the box decoding and
    the box embedding fed back, while every logit but the winner's stays the model's own.
    """
    cfg = model.config
    reply = tokens.encode_answer(model.tokenizer, phrases, cfg.vis_token_id, cfg.eos_token_id)
    prompt_len = len(model.prompt_ids(command))

    def force(ids, logits):
        step = ids.shape[1] - prompt_len
        out = logits.clone()
        out[0, reply[step] if step < len(reply) else cfg.eos_token_id] = logits.max() + 20.0
        return out

    return force


def assert_same_answer(fast, reference):
    assert fast.text == reference.text
    assert fast.num_tokens == reference.num_tokens
    assert [d.phrase for d in fast.detections] == [d.phrase for d in reference.detections]
    for got, want in zip(fast.detections, reference.detections, strict=True):
        np.testing.assert_allclose(got.box, want.box, atol=1e-5)
        np.testing.assert_allclose(got.mask_logits, want.mask_logits, atol=1e-4)
        assert got.score == pytest.approx(want.score, abs=1e-5)


# The first command's text after the image fills a prefill bucket exactly; the second's is padded.
@pytest.mark.parametrize(
    ("command", "count", "max_objects"),
    [
        (COMMAND, 0, None),
        (COMMAND, 1, None),
        (COMMAND, 3, None),
        (COMMAND, 3, 2),
        ("where is the blue star", 3, None),
    ],
)
def test_fast_path_equals_reference_generate(model, command, count, max_objects):
    image, force = picture(0), forced(model, command, PHRASES[:count])
    kwargs = dict(max_new_tokens=30, max_objects=max_objects, logits_processor=force)
    reference = model.answer(image, command, **kwargs)
    fast = Perceiver(model).answer(image, command, **kwargs)
    assert len(fast.detections) == min(count, max_objects or count)
    assert_same_answer(fast, reference)


def test_unforced_greedy_answer_equals_reference(model):
    image = picture(1)
    reference = model.answer(image, COMMAND, max_new_tokens=12)
    assert_same_answer(Perceiver(model).answer(image, COMMAND, max_new_tokens=12), reference)


class CountingEncoder:
    """Counts vision-tower runs, to see which commands reused the cached frame."""

    def __init__(self, model, monkeypatch):
        self.calls = 0
        encode = model.encode_image

        def counted(pixel_values):
            self.calls += 1
            return encode(pixel_values)

        monkeypatch.setattr(model, "encode_image", counted)


def test_cached_frame_gives_the_fresh_answer_and_a_new_frame_invalidates(model, monkeypatch):
    perceiver = Perceiver(model)
    seen = CountingEncoder(model, monkeypatch)
    first, second = picture(2), picture(3)
    # A long answer first, so stale cache slots lie beyond the shorter command that follows.
    perceiver.answer(first, COMMAND, image_id=7, logits_processor=forced(model, COMMAND, PHRASES))
    command = "where is the blue star"
    force = forced(model, command, ["blue star"])
    cached = perceiver.answer(first, command, image_id=7, logits_processor=force)
    assert seen.calls == 1
    assert_same_answer(cached, model.answer(first, command, logits_processor=force))
    assert seen.calls == 2  # the reference encodes its own copy

    fresh = perceiver.answer(second, command, image_id=8, logits_processor=force)
    assert seen.calls == 3
    reference = model.answer(second, command, logits_processor=force)
    assert_same_answer(fresh, reference)
    assert not np.allclose(reference.detections[0].box, cached.detections[0].box, atol=1e-3)


def test_no_image_id_never_reuses(model, monkeypatch):
    perceiver = Perceiver(model)
    seen = CountingEncoder(model, monkeypatch)
    for _ in range(2):
        perceiver.answer(picture(4), COMMAND, max_new_tokens=2)
    assert seen.calls == 2


def test_warmup_answers_once_and_keeps_no_frame(model, monkeypatch):
    perceiver = Perceiver(model)
    seen = CountingEncoder(model, monkeypatch)
    perceiver.warmup()
    assert seen.calls == 1 and perceiver.frames.frame is None


def test_a_command_too_long_for_the_cache_is_a_clear_error_and_the_frame_stays_usable(model):
    perceiver = Perceiver(model, max_text_tokens=24)
    image, command = picture(5), "find the red circle"
    before = perceiver.answer(image, command, image_id=1, max_new_tokens=4)
    with pytest.raises(ValueError, match="KV cache"):
        perceiver.answer(image, "find " + "the red circle " * 8, image_id=1)
    after = perceiver.answer(image, command, image_id=1, max_new_tokens=4)
    assert_same_answer(after, before)


def test_a_step_failing_halfway_through_the_layers_leaves_nothing_stale(model, monkeypatch):
    """An error inside a step can leave layer 0's cache advanced and layer 1's not; the next
    command on the same frame must start over and still answer exactly."""
    perceiver = Perceiver(model)
    image, force = picture(7), forced(model, COMMAND, PHRASES[:1])
    perceiver.answer(image, COMMAND, image_id=3, logits_processor=force)
    layer = model.language_model.layers[1]
    failures = iter([RuntimeError("device error")])

    def fail_once(*args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return type(layer).forward(layer, *args, **kwargs)

    monkeypatch.setattr(layer, "forward", fail_once)
    with pytest.raises(RuntimeError, match="device error"):
        perceiver.answer(image, COMMAND, image_id=3, logits_processor=force)
    seen = CountingEncoder(model, monkeypatch)
    again = perceiver.answer(image, COMMAND, image_id=3, logits_processor=force)
    assert seen.calls == 1
    assert_same_answer(again, model.answer(image, COMMAND, logits_processor=force))


def test_text_coordinate_model_runs_the_same_path():
    model = tiny(head="text_coords")
    image = picture(6)
    reference = model.answer(image, COMMAND, max_new_tokens=10)
    assert_same_answer(Perceiver(model).answer(image, COMMAND, max_new_tokens=10), reference)


def test_half_precision_runs_the_same_path():
    """bfloat16 on the CPU stands in for the GPU's float16: masks, embeddings and the heads must
    all follow the model's dtype."""
    model = tiny().to(torch.bfloat16)
    image, force = picture(8), forced(model, COMMAND, PHRASES)
    answer = Perceiver(model).answer(image, COMMAND, image_id=1, logits_processor=force)
    reference = model.answer(image, COMMAND, logits_processor=force)
    assert answer.text == reference.text and len(answer.detections) == 3
    for got, want in zip(answer.detections, reference.detections, strict=True):
        np.testing.assert_allclose(got.box, want.box, atol=0.01)  # a few bfloat16 steps


def test_buckets_hold_every_length_up_to_the_largest():
    assert [bucket(n) for n in (1, 2, 8, 9, 256)] == [1, 8, 8, 16, 256]
    with pytest.raises(ValueError):
        bucket(BUCKETS[-1] + 1)


def test_cuda_graphs_need_a_cuda_model(model):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA"):
        StaticDecoder(model, Perceiver(model).heads, cuda_graphs=True)


def test_the_step_reads_nothing_back_to_the_host_so_it_can_be_captured(model, monkeypatch):
    """CUDA graph capture breaks on a step whose work depends on values read back to the host
    (a Python branch on a tensor); so does dynamo's whole-graph tracing, which runs here without a
    GPU. The eager backend only traces, in seconds; the answer must stay the reference's."""
    compile_ = torch.compile
    monkeypatch.setattr(
        decoder.torch, "compile", lambda fn, **kw: compile_(fn, **{**kw, "backend": "eager"})
    )
    image, force = picture(0), forced(model, COMMAND, PHRASES)
    traced = Perceiver(model, compile_decode=True).answer(image, COMMAND, logits_processor=force)
    assert_same_answer(traced, model.answer(image, COMMAND, logits_processor=force))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_path_equals_eager_path_on_gpu():
    model = tiny().to("cuda")
    image, force = picture(0), forced(model, COMMAND, PHRASES)
    eager = Perceiver(model, cuda_graphs=False)
    graphs = Perceiver(model, cuda_graphs=True)
    for image_id in (1, 1, 2):  # new frame, cached frame, new frame: graphs replayed at new offsets
        want = eager.answer(image, COMMAND, image_id=image_id, logits_processor=force)
        got = graphs.answer(image, COMMAND, image_id=image_id, logits_processor=force)
        assert_same_answer(got, want)
    assert set(graphs.decoder._graphs) >= {1}

"""The fast path (static KV cache, image-prefix reuse, CUDA graphs) answers exactly as the reference
decoder (``pgpt_ros.model.answer``) does: same tokens, phrases, boxes, masks and scores."""

import numpy as np
import pytest
import torch

from pgpt_ros.commands import BadCommand
from pgpt_ros.model import answer, build_model, preset_config, tokens
from pgpt_ros.runtime import AnswerPolicy, Perceiver, decoder
from pgpt_ros.runtime.decoder import BUCKETS, StaticDecoder, bucket
from tests.tiny_models import force_reply

COMMAND = "find all the red shapes"
PHRASES = ["red circle", "red square", "red star"]


def tiny(preset: str = "tiny", **overrides):
    torch.manual_seed(0)
    config = preset_config(
        preset,
        image_size=32,
        vision_width=32,
        text_width=64,
        head_width=32,
        mask_size=16,
        **overrides,
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
    return force_reply(model, command, reply)


def fast(perceiver, image, command, image_id=None, logits_processor=None, **policy):
    """The served decoder's model-frame answer about ``image`` (``policy``: AnswerPolicy fields)."""
    perceiver.set_image(image, image_id)
    return perceiver.answer(command, policy=AnswerPolicy(**policy) if policy else None,
                            logits_processor=logits_processor)  # fmt: skip


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
    reference = answer(model, image, command, max_new_tokens=30, max_objects=max_objects,
                       logits_processor=force)  # fmt: skip
    served = fast(Perceiver(model), image, command, logits_processor=force, max_new_tokens=30,
                  max_objects=max_objects or 8)  # fmt: skip
    assert len(served.detections) == min(count, max_objects or count)
    assert_same_answer(served, reference)


def test_unforced_greedy_answer_equals_reference(model):
    image = picture(1)
    reference = answer(model, image, COMMAND, max_new_tokens=12, max_objects=8)
    assert_same_answer(fast(Perceiver(model), image, COMMAND, max_new_tokens=12), reference)


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
    fast(perceiver, first, COMMAND, image_id=7, logits_processor=forced(model, COMMAND, PHRASES))
    command = "where is the blue star"
    force = forced(model, command, ["blue star"])
    cached = fast(perceiver, first, command, image_id=7, logits_processor=force)
    assert seen.calls == 1
    assert_same_answer(cached, answer(model, first, command, logits_processor=force))
    assert seen.calls == 2  # the reference encodes its own copy

    new = fast(perceiver, second, command, image_id=8, logits_processor=force)
    assert seen.calls == 3
    reference = answer(model, second, command, logits_processor=force)
    assert_same_answer(new, reference)
    assert not np.allclose(reference.detections[0].box, cached.detections[0].box, atol=1e-3)


def test_no_image_id_never_reuses(model, monkeypatch):
    perceiver = Perceiver(model)
    seen = CountingEncoder(model, monkeypatch)
    for _ in range(2):
        fast(perceiver, picture(4), COMMAND, max_new_tokens=2)
    assert seen.calls == 2


def test_warmup_answers_once_and_keeps_no_frame(model, monkeypatch):
    perceiver = Perceiver(model)
    seen = CountingEncoder(model, monkeypatch)
    perceiver.warmup()
    assert seen.calls == 1 and perceiver._frame is None


class FakeCapture:
    """Stands in for a CUDA graph on the CPU: runs the step, records which shape was captured."""

    shapes: list[int] = []

    def __init__(self, step, example, reset, pool=None):
        FakeCapture.shapes.append(example.shape[1])
        self.step = step

    def __call__(self, inputs):
        return self.step(inputs)


def test_warmup_captures_every_prefill_bucket_before_serving(model, monkeypatch):
    """No command pays for a capture: warm-up captures every step shape that fits the cache,
    and serving afterwards captures nothing new."""
    monkeypatch.setattr(decoder, "CapturedStep", FakeCapture)
    FakeCapture.shapes = []
    perceiver = Perceiver(model)
    perceiver.decoder.use_graphs = True  # the capture logic, exercised with the fake graph
    perceiver.warmup()
    room = perceiver.decoder.max_length - model.config.num_image_tokens
    assert sorted(set(FakeCapture.shapes)) == [b for b in BUCKETS if b <= room]
    captured = len(FakeCapture.shapes)
    force = forced(model, COMMAND, PHRASES)
    served = fast(perceiver, picture(9), COMMAND, image_id=1, logits_processor=force)
    assert len(FakeCapture.shapes) == captured
    assert_same_answer(served, answer(model, picture(9), COMMAND, logits_processor=force))


def test_a_command_too_long_for_the_cache_is_a_clear_error_and_the_frame_stays_usable(model):
    perceiver = Perceiver(model, max_command_tokens=12)
    image, command = picture(5), "find the red circle"
    before = fast(perceiver, image, command, image_id=1, max_new_tokens=4)
    with pytest.raises(BadCommand, match="at most 12"):
        fast(perceiver, image, "find " + "the red circle " * 8, image_id=1)
    after = fast(perceiver, image, command, image_id=1, max_new_tokens=4)
    assert_same_answer(after, before)


def test_a_step_failing_halfway_through_the_layers_leaves_nothing_stale(model, monkeypatch):
    """An error inside a step can leave layer 0's cache advanced and layer 1's not; the next
    command on the same frame must start over and still answer exactly."""
    perceiver = Perceiver(model)
    image, force = picture(7), forced(model, COMMAND, PHRASES[:1])
    fast(perceiver, image, COMMAND, image_id=3, logits_processor=force)
    layer = model.language_model.layers[1]
    failures = iter([RuntimeError("device error")])

    def fail_once(*args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return type(layer).forward(layer, *args, **kwargs)

    monkeypatch.setattr(layer, "forward", fail_once)
    with pytest.raises(RuntimeError, match="device error"):
        fast(perceiver, image, COMMAND, image_id=3, logits_processor=force)
    seen = CountingEncoder(model, monkeypatch)
    again = fast(perceiver, image, COMMAND, image_id=3, logits_processor=force)
    assert seen.calls == 0  # the frame's features are kept: only the prefix is computed again
    assert_same_answer(again, answer(model, image, COMMAND, logits_processor=force))


def test_text_coordinate_model_runs_the_same_path():
    model = tiny(head="text_coords")
    image = picture(6)
    reference = answer(model, image, COMMAND, max_new_tokens=10, max_objects=8)
    assert_same_answer(fast(Perceiver(model), image, COMMAND, max_new_tokens=10), reference)


def test_half_precision_runs_the_same_path():
    """bfloat16 on the CPU stands in for the GPU's float16: masks, embeddings and the heads must
    all follow the model's dtype."""
    model = tiny().to(torch.bfloat16)
    image, force = picture(8), forced(model, COMMAND, PHRASES)
    served = fast(Perceiver(model), image, COMMAND, image_id=1, logits_processor=force)
    reference = answer(model, image, COMMAND, logits_processor=force)
    assert served.text == reference.text and len(served.detections) == 3
    for got, want in zip(served.detections, reference.detections, strict=True):
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
    traced = fast(Perceiver(model, compile_decode=True), image, COMMAND, logits_processor=force)
    assert_same_answer(traced, answer(model, image, COMMAND, logits_processor=force))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("preset", ["tiny", "tiny-qwen"])  # Llama; Qwen2 with grouped KV heads
def test_cuda_graph_path_equals_eager_path_on_gpu(preset):
    model = tiny(preset).to("cuda")
    image, force = picture(0), forced(model, COMMAND, PHRASES)
    eager = Perceiver(model, cuda_graphs=False)
    graphs = Perceiver(model, cuda_graphs=True)
    graphs.warmup()
    for image_id in (1, 1, 2):  # new frame, cached frame, new frame: graphs replayed at new offsets
        want = fast(eager, image, COMMAND, image_id=image_id, logits_processor=force)
        got = fast(graphs, image, COMMAND, image_id=image_id, logits_processor=force)
        assert_same_answer(got, want)
    assert set(graphs.decoder._graphs) >= {1}

"""One decoding step captured in a CUDA graph, replayed with new inputs.

torch's recipe: warm up on a side stream (the allocator and cuBLAS settle), capture, then replay
with new values copied into the captured input. All steps of one decoder share one graph memory
pool: each captured shape would otherwise reserve its own copy of the activations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class CapturedStep:
    """A CUDA graph of ``step`` for one input shape; ``reset`` undoes a warm-up's cache writes.

    Arguments:
        step: (1, T, d) embeddings -> (1, T, d) states; it must read and write only fixed
            addresses (the static KV cache, device-side positions).
        example (torch.Tensor): an input of the shape to capture.
        reset: undoes what running ``step`` did to the cache, after each warm-up run.
        pool: the graph memory pool to share (``torch.cuda.graph_pool_handle()``).

    The output tensor is overwritten by the next replay, so callers copy what they keep.
    """

    def __init__(
        self,
        step: Callable[[torch.Tensor], torch.Tensor],
        example: torch.Tensor,
        reset: Callable[[], None],
        pool: tuple | None = None,
    ) -> None:
        self.input = example.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                step(self.input)
                reset()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        # Capture records the kernels without running them: the cache is left as it was.
        with torch.cuda.graph(self.graph, pool=pool):
            self.output = step(self.input)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        self.input.copy_(inputs)
        self.graph.replay()
        return self.output

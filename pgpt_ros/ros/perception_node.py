"""perception_node: camera frames + language commands -> boxes, masks and an overlay.

A lifecycle node (``ros2 run pgpt_ros perception_node``; ``autostart`` configures and activates it
at start). configure loads the model, activate subscribes and serves, deactivate stops serving,
cleanup frees the model, shutdown ends the process. Callbacks never run the model: the image
callback only replaces the latest-frame slot; commands (``command`` topic or ``locate`` service)
go to the ``CommandServer``'s bounded queue, whose one worker answers them in order with the
newest frame not older than ``max_image_age_s``. Every command gets exactly one answer: OK, a
status that says why not (BUSY when the queue is full, STOPPING when the node stops first,
INACTIVE when it is not active), published on ``detections`` and returned to a ``locate`` caller.
``locate`` is served by a coroutine that waits without holding an executor thread, and the service
lives as long as the node, so stopping never races a response. Answers carry the source image's
header; boxes and masks are in its pixels. With ``use_depth``, ``depth`` and ``camera_info``
give each detection a 3D position (``markers`` and vision_msgs outputs for rviz); a command on
``track`` becomes the standing command, answered again on each new frame with track ids (an empty
one cancels it). What the worker does per job is ``answering.Answering``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from pgpt_ros.commands import BadCommand, normalize_command
from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros import messages, process, qos, vision_messages
from pgpt_ros.ros.answering import Answering
from pgpt_ros.ros.command_server import CommandServer
from pgpt_ros.ros.diagnostics import diagnostic_status, diagnostic_values
from pgpt_ros.ros.messages import STATUS_NAMES
from pgpt_ros.ros.params import NodeParams, describe
from pgpt_ros.ros.records import FrameSlot, Job, Stats
from pgpt_ros.srv import Locate

NODE_NAME = "perception_node"
DIAGNOSTICS_PERIOD_S = 1.0


def load_perceiver(params: NodeParams) -> Any:
    """The production model: ``Perceiver.load`` with the node's parameters, warmed up (CUDA graph
    capture and compilation happen here, not on the first command). Imported here so the
    process pays for torch only when it configures."""
    import torch

    from pgpt_ros.runtime import Perceiver

    torch.set_num_threads(params.num_threads)
    perceiver = Perceiver.load(
        params.model_path,
        device=params.device,
        dtype=params.dtype,
        head_backend=params.head_backend,
        engine_dir=params.engine_dir or None,
        force_engine_rebuild=params.force_engine_rebuild,
        policy=params.policy(),
    )
    perceiver.warmup()
    return perceiver


def check_command(text: str, max_length: int) -> str:
    """The normalised command (``pgpt_ros.commands``); BadCommand if it cannot be one."""
    if len(text) > max_length:
        raise BadCommand(f"command has {len(text)} characters, max_command_length is {max_length}")
    return normalize_command(text)


class PerceptionNode(LifecycleNode):
    """The node. ``perceiver_factory(params)`` builds the model at configure (tests pass a fake)."""

    def __init__(
        self, perceiver_factory: Callable[[NodeParams], Any] = load_perceiver, **kwargs: Any
    ) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = self._declare_parameters()
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self.exit_requested = threading.Event()
        self._factory = perceiver_factory
        self._answering: Answering | None = None  # the loaded model and what it answers with
        self._server: CommandServer | None = None
        self._lock = threading.Lock()  # guards _next_command_id, _stats, _in_flight
        self._frames = FrameSlot()
        self._next_command_id = 1
        self._stats = Stats()
        self._in_flight = 0
        self._inputs: list[Any] = []  # subscriptions and the diagnostics timer, while active
        self._image_topic = ""
        self._outputs: dict[str, Any] = {}
        self._fast_group = MutuallyExclusiveCallbackGroup()
        self._locate = self.create_service(
            Locate, "locate", self._on_locate, qos_profile=qos.SERVICE_QOS,
            callback_group=ReentrantCallbackGroup(),
        )  # fmt: skip

    # ------------------------------------------------------------------ parameters

    def _declare_parameters(self) -> NodeParams:
        values = {}
        for name, default, help, runtime in describe():
            descriptor = ParameterDescriptor(description=help, read_only=not runtime)
            values[name] = self.declare_parameter(name, default, descriptor).value
        return NodeParams(**values).validated()

    @staticmethod
    def _ours(changes: list[rclpy.Parameter]) -> dict[str, Any]:
        """The changes to this node's own parameters (not e.g. use_sim_time)."""
        return {p.name: p.value for p in changes if p.name in NodeParams.__dataclass_fields__}

    def _check_parameters(self, changes: list[rclpy.Parameter]) -> SetParametersResult:
        try:
            self.params.replace(**self._ours(changes))
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, changes: list[rclpy.Parameter]) -> None:
        ours = self._ours(changes)
        if ours:
            self.params = self.params.replace(**ours)
            self.get_logger().info(
                "parameters changed: " + ", ".join(f"{k}={v}" for k, v in ours.items())
            )

    # ------------------------------------------------------------------ lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        params = self.params
        vision_missing = vision_messages.unavailable_reason() if params.publish_vision_msgs else ""
        outputs = [("detections", DetectionArray, qos.RESULT_QOS),
                   ("overlay", Image, qos.IMAGE_OUT_QOS), ("masks", Image, qos.IMAGE_OUT_QOS),
                   ("markers", MarkerArray, qos.IMAGE_OUT_QOS),
                   ("/diagnostics", DiagnosticArray, qos.DIAGNOSTICS_QOS)]  # fmt: skip
        if vision_missing is None:
            outputs += vision_messages.outputs(qos.RESULT_QOS)
        try:
            perceiver = self._factory(params)
            self._answering = Answering(
                perceiver, lambda: self.params, self._frames, self._publish,
                self.get_logger().warning, vision=vision_missing is None,
            )  # fmt: skip
            for name, msg_type, profile in outputs:
                self._outputs[name] = self.create_lifecycle_publisher(msg_type, name, profile)
        except Exception as error:  # any reason, logged: rclpy would swallow it
            self.release()  # nothing half-loaded stays behind
            self.get_logger().error(f"cannot load the model: {type(error).__name__}: {error}")
            return TransitionCallbackReturn.FAILURE
        if vision_missing:
            self.get_logger().info(f"no vision_msgs outputs: {vision_missing}")
        cache = perceiver.engine_dir
        self.get_logger().info(
            f"model loaded; head backend {perceiver.backend}"
            + (f"; exported heads cached in {cache}" if cache else "")
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        image_type, image_topic = Image, "image"
        if self.params.compressed_image:
            # image_transport's convention: <base>/compressed of the base topic AFTER remapping,
            # so `-r image:=/camera/color` subscribes /camera/color/compressed.
            image_type = CompressedImage
            image_topic = self.resolve_topic_name("image") + "/compressed"
        self._image_topic = self.resolve_topic_name(image_topic)
        answering, group = self._answering, self._fast_group
        image_qos = qos.image_qos(self.params.image_reliability)
        inputs = [(image_type, image_topic, self._frames.put, image_qos),
                  (String, "command", lambda msg: self._on_command(msg, "command"), qos.COMMAND_QOS),
                  (String, "track", self._on_track, qos.COMMAND_QOS)]  # fmt: skip
        if self.params.use_depth:
            inputs += [(Image, "depth", answering.on_depth, qos.image_qos("reliable")),
                       (CameraInfo, "camera_info", answering.on_camera_info, image_qos)]  # fmt: skip
        self._inputs = [self.create_subscription(*i, callback_group=group) for i in inputs]
        self._inputs.append(
            self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=group)
        )
        self._server = CommandServer(answering.answer, self._deliver, answering.status,
                                     self.params.command_queue_size, idle=answering.standing_job)  # fmt: skip
        self._server.start()
        self.get_logger().info(f"active: listening on {self._image_topic}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_serving("the node is deactivating")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_serving("the node is shutting down")
        self.exit_requested.set()  # the process ends (pgpt_ros.ros.process frees the model)
        return TransitionCallbackReturn.SUCCESS

    def stop_serving(self, reason: str, wait_s: float = 2.0) -> None:
        """Stops taking commands and answers every pending one with STOPPING, waiting up to
        ``wait_s`` for the worker to leave the model. Idempotent."""
        for entity in self._inputs:
            if hasattr(entity, "cancel"):  # the timer
                self.destroy_timer(entity)
            else:
                self.destroy_subscription(entity)
        self._inputs = []
        if self._server is not None:
            self._server.stop(reason, wait_s)
            self._server = None

    def release(self) -> None:
        """Frees the model, the publishers and the last frame (cleanup). Idempotent."""
        if self._answering is not None:
            self._answering.perceiver.close()
            self._answering = None
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        self._frames.clear()

    def calls_in_flight(self) -> int:
        """``locate`` calls whose response is not yet handed to the executor."""
        with self._lock:
            return self._in_flight

    # ------------------------------------------------------------------ inputs (never block)

    def _on_command(self, msg: String, kind: str) -> None:
        self._submit(self._new_job(msg.data, None, kind))

    def _on_track(self, msg: String) -> None:
        """A command to answer on every new frame; an empty one cancels the standing command."""
        self._on_command(msg, "track" if msg.data.strip() else "cancel")

    async def _on_locate(self, request: Locate.Request, response: Locate.Response):
        with self._lock:
            self._in_flight += 1
        try:
            has_image = request.image.width > 0 and len(request.image.data) > 0
            job = self._new_job(request.command, request.image if has_image else None, "command")
            answered: Future = Future(executor=self.executor)
            answered.add_done_callback(lambda _: None)  # wakes the executor when it completes
            job.on_finish.append(answered.set_result)
            self._submit(job)
            response.result = await answered
            return response
        finally:
            with self._lock:
                self._in_flight -= 1

    def _new_job(self, text: str, image: Image | None, kind: str) -> Job:
        with self._lock:
            job = Job(self._next_command_id, text, time.monotonic(), image, kind)
            self._next_command_id += 1
            self._stats.commands += 1
        return job

    def _submit(self, job: Job) -> None:
        """Queues the job, or answers it at once (BAD_COMMAND, INACTIVE, BUSY, STOPPING)."""
        server, answering = self._server, self._answering
        if job.kind == "cancel":
            if server is not None:
                server.submit(job)
            return
        if server is None or answering is None:
            message = "the node is not active; configure and activate it"
            self._deliver(job, self._status(job, DetectionArray.INACTIVE, message))
            return
        try:
            job.command = check_command(job.command, self.params.max_command_length)
        except BadCommand as error:
            self._deliver(job, answering.status(job, DetectionArray.BAD_COMMAND, str(error)))
            return
        server.submit(job)

    def _status(self, job: Job, status: int, message: str) -> DetectionArray:
        """A status answer while no model is loaded (``Answering.status`` otherwise)."""
        self.get_logger().warning(f"command {job.command_id}: {STATUS_NAMES[status]}: {message}")
        return messages.status_array(status, message, command_id=job.command_id,
                                     command=job.command)  # fmt: skip

    # ------------------------------------------------------------------ answers

    def _deliver(self, job: Job, result: DetectionArray) -> None:
        """Answers ``job`` with ``result`` unless it is answered already; then publishes it on
        ``detections`` (a ``locate`` caller also gets it through the job's future)."""
        if not job.finish(result):
            return
        with self._lock:
            stats = self._stats
            if self._answering is not None:
                stats.last_inference_s = self._answering.last_inference_s
            stats.last_latency_s = result.latency_s
            stats.last_status = STATUS_NAMES[result.status]
            failed = result.status == DetectionArray.INTERNAL_ERROR
            stats.busy += result.status == DetectionArray.BUSY
            stats.errors += failed
            stats.errors_in_a_row = stats.errors_in_a_row + 1 if failed else 0
        self._publish("detections", result)

    def _publish(self, name: str, msg: Any) -> None:
        publisher = self._outputs.get(name)
        if publisher is not None:
            publisher.publish(msg)

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        server, answering = self._server, self._answering
        with self._lock:
            values = diagnostic_values(
                self._stats, self._frames, server.waiting if server else 0,
                answering.perceiver.backend if answering else "",
            )  # fmt: skip
        status = diagnostic_status(
            values,
            name=f"pgpt_ros: {self.get_fully_qualified_name()}",
            hardware_id=self.params.device,
            max_image_age_s=self.params.max_image_age_s,
            image_topic=self._image_topic,
            image_publishers=self.count_publishers(self._image_topic),
        )
        self._publish(
            "/diagnostics",
            DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]),
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``perception_node [--ros-args ...]``; 2 on invalid parameters, 1 when
    autostart could not configure or activate it (the node logged why)."""
    process.init(argv)
    try:
        node = PerceptionNode()
    except (ValueError, ParameterException) as error:
        rclpy.logging.get_logger(NODE_NAME).error(str(error))
        rclpy.try_shutdown()
        return 2
    process.exit_now(process.serve(node, autostart=node.params.autostart))


if __name__ == "__main__":
    raise SystemExit(main())

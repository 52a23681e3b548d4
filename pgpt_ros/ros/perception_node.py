"""perception_node: camera frames + language commands -> boxes, masks and an overlay.

A lifecycle node (``ros2 run pgpt_ros perception_node``; ``autostart`` configures and activates it
at start). configure loads the model, activate subscribes and serves, deactivate stops, cleanup frees
the model. Callbacks never run the model: the image callback only replaces the latest-frame slot,
commands (topic or ``locate`` service) go into a bounded queue (full = BUSY), and one worker thread
answers them in order with the newest frame not older than ``max_image_age_s``. Answers carry the
source image's header, and boxes and masks are in its pixels.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String

from pgpt_ros.commands import BadCommand, normalize_command
from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros import messages
from pgpt_ros.ros.diagnostics import diagnostic_status, diagnostic_values
from pgpt_ros.ros.images import BadImage, compressed_to_rgb, from_array, to_rgb
from pgpt_ros.ros.messages import STATUS_NAMES
from pgpt_ros.ros.overlay import draw_overlay
from pgpt_ros.ros.params import NodeParams, describe
from pgpt_ros.ros.records import Frame, Job, Stats
from pgpt_ros.srv import Locate

NODE_NAME = "perception_node"
DIAGNOSTICS_PERIOD_S = 1.0
RESULT_QOS = QoSProfile(depth=10)
IMAGE_OUT_QOS = QoSProfile(depth=2)


def load_perceiver(params: NodeParams) -> Any:
    """The production model: ``Perceiver.load`` with the node's parameters.

    Imported here so that the process pays for torch only when it configures.
    """
    from pgpt_ros.runtime import Perceiver

    perceiver = Perceiver.load(
        params.model_path,
        device=params.device,
        dtype=params.dtype,
        head_backend=params.head_backend,
        engine_dir=params.engine_dir or None,
        force_engine_rebuild=params.force_engine_rebuild,
        policy=params.policy(),
    )
    perceiver.warmup()  # CUDA graph capture happens at configure, not on the first command
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
        self._factory = perceiver_factory
        self._perceiver: Any = None
        self._lock = threading.Lock()  # guards _frame, _next_command_id, _stats
        self._frame: Frame | None = None
        self._next_command_id = 1
        self._stats = Stats()
        self._jobs: queue.Queue[Job] = queue.Queue(maxsize=self.params.command_queue_size)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        # Exist only while active: the input subscriptions, the service and the diagnostics timer.
        self._subscriptions_in: list[Any] = []
        self._locate_service: Any = None
        self._diagnostics_timer: Any = None
        self._fast_group = MutuallyExclusiveCallbackGroup()
        self._service_group = ReentrantCallbackGroup()  # service callbacks wait for the worker

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
        try:
            self._perceiver = self._factory(self.params)
        except (FileNotFoundError, ValueError) as error:
            self.get_logger().error(f"cannot load the model: {error}")
            return TransitionCallbackReturn.FAILURE
        self._detections_pub = self.create_lifecycle_publisher(
            DetectionArray, "detections", RESULT_QOS
        )
        self._overlay_pub = self.create_lifecycle_publisher(Image, "overlay", IMAGE_OUT_QOS)
        self._masks_pub = self.create_lifecycle_publisher(Image, "masks", IMAGE_OUT_QOS)
        self._diagnostics_pub = self.create_lifecycle_publisher(
            DiagnosticArray, "/diagnostics", RESULT_QOS
        )
        self.get_logger().info(f"model loaded; head backend {self._perceiver.backend}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        # Depth 1 either way (sensor data QoS keeps 5): only the newest frame is ever used.
        reliability = {"best_effort": QoSReliabilityPolicy.BEST_EFFORT,
                       "reliable": QoSReliabilityPolicy.RELIABLE}[self.params.image_reliability]  # fmt: skip
        image_qos = QoSProfile(depth=1, reliability=reliability)
        image_type, image_topic = Image, "image"
        if self.params.compressed_image:
            # image_transport's convention: <base>/compressed of the base topic AFTER remapping,
            # so `-r image:=/camera/color` subscribes /camera/color/compressed.
            image_type, image_topic = (
                CompressedImage,
                self.resolve_topic_name("image") + "/compressed",
            )
        self._subscriptions_in = [
            self.create_subscription(
                image_type, image_topic, self._on_image, image_qos, callback_group=self._fast_group
            ),
            self.create_subscription(
                String, "command", self._on_command, RESULT_QOS, callback_group=self._fast_group
            ),
        ]
        self._locate_service = self.create_service(
            Locate, "locate", self._on_locate, callback_group=self._service_group
        )
        self._diagnostics_timer = self.create_timer(
            DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=self._fast_group
        )
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="pgpt-inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"active: listening on {self.resolve_topic_name(image_topic)}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_serving()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_serving()
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def stop_serving(self) -> None:
        """Destroys the inputs, stops the worker and answers what was still queued. Idempotent."""
        for subscription in self._subscriptions_in:
            self.destroy_subscription(subscription)
        self._subscriptions_in = []
        if self._locate_service is not None:
            self.destroy_service(self._locate_service)
            self._locate_service = None
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            self._finish(job, self._status(job, DetectionArray.BUSY, "node is shutting down"))

    def release(self) -> None:
        """Frees the model, the publishers and the last frame (cleanup). Idempotent."""
        if self._perceiver is not None:
            self._perceiver.close()
            self._perceiver = None
        for publisher in ("_detections_pub", "_overlay_pub", "_masks_pub", "_diagnostics_pub"):
            if hasattr(self, publisher):
                self.destroy_lifecycle_publisher(getattr(self, publisher))
                delattr(self, publisher)
        with self._lock:
            self._frame = None

    # ------------------------------------------------------------------ inputs (never block)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        with self._lock:
            self._frame = Frame(msg, time.monotonic(), self._stats.frames)
            self._stats.frames += 1
            self._stats.period_frames += 1

    def _on_command(self, msg: String) -> None:
        self._submit(msg.data, image=None)

    def _on_locate(self, request: Locate.Request, response: Locate.Response) -> Locate.Response:
        has_image = request.image.width > 0 and len(request.image.data) > 0
        job = self._submit(request.command, image=request.image if has_image else None)
        job.done.wait()  # on a thread of its own group: images and commands keep flowing
        response.result = job.result
        return response

    def _submit(self, text: str, image: Image | None) -> Job:
        """Numbers the command and queues it, or answers at once (BAD_COMMAND, BUSY)."""
        with self._lock:
            job = Job(self._next_command_id, text, time.monotonic(), image)
            self._next_command_id += 1
            self._stats.commands += 1
        try:
            job.command = check_command(text, self.params.max_command_length)
        except BadCommand as error:
            self._finish(job, self._status(job, DetectionArray.BAD_COMMAND, str(error)))
            return job
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._stats.busy += 1
            message = f"{self.params.command_queue_size} commands are already waiting"
            self._finish(job, self._status(job, DetectionArray.BUSY, message))
        return job

    # ------------------------------------------------------------------ the worker

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                result = self._answer(job)
            except Exception as error:  # never let the worker die: waiting callers would hang
                message = f"{type(error).__name__}: {error}"
                result = self._status(job, DetectionArray.INTERNAL_ERROR, message)
            self._finish(job, result)

    def _answer(self, job: Job) -> DetectionArray:
        """Everything for one command; any failure becomes a status, never a dead worker."""
        params = self.params
        if job.image is not None:
            frame = Frame(job.image, job.accepted, seq=-1)
        else:
            with self._lock:
                frame = self._frame
            if frame is None:
                return self._status(job, DetectionArray.NO_IMAGE, "no image received yet")
            age = time.monotonic() - frame.received
            if age > params.max_image_age_s:
                message = (
                    f"newest image is {age:.2f} s old (max_image_age_s {params.max_image_age_s})"
                )
                return self._status(job, DetectionArray.STALE_IMAGE, message, frame)
        try:
            if isinstance(frame.msg, CompressedImage):
                rgb = compressed_to_rgb(frame.msg, params.max_image_side)
            else:
                rgb = to_rgb(frame.msg, params.max_image_side)
        except BadImage as error:
            return self._status(job, DetectionArray.BAD_IMAGE, str(error), frame)
        height, width = rgb.shape[:2]
        try:
            perception = self._perceiver.locate(
                rgb,
                job.command,
                image_id=frame.seq if frame.seq >= 0 else None,
                policy=params.policy(),
            )
            found = perception.detections
            header = frame.msg.header
            if params.publish_masks:
                self._masks_pub.publish(messages.instance_image(found, header, height, width))
            if params.publish_overlay:
                caption = f"{job.command} -> {len(found)} found"
                overlay = from_array(draw_overlay(rgb, found, caption), header, "rgb8")
                self._overlay_pub.publish(overlay)
            result = messages.detection_array(
                found,
                header=header,
                width=width,
                height=height,
                command_id=job.command_id,
                command=job.command,
                answer=perception.answer,
                latency_s=time.monotonic() - job.accepted,
            )
        except BadCommand as error:  # e.g. more tokens than the model reads
            return self._status(job, DetectionArray.BAD_COMMAND, str(error), frame)
        except Exception as error:  # the model is third-party code: report, keep serving
            message = f"model failed: {type(error).__name__}: {error}"
            return self._status(job, DetectionArray.INTERNAL_ERROR, message, frame)
        with self._lock:
            self._stats.last_inference_s = perception.inference_s
            if not frame.used and frame.seq >= 0:
                frame.used = True
                self._stats.frames_answered += 1
        return result

    def _status(
        self, job: Job, status: int, message: str, frame: Frame | None = None
    ) -> DetectionArray:
        """A non-OK answer, logged as one line; the frame's header when a frame was involved."""
        self.get_logger().warning(
            f"command {job.command_id} {job.command[:80]!r}: {STATUS_NAMES[status]}: {message}"
        )
        size: dict[str, Any] = {}
        if frame is not None:
            size = {"header": frame.msg.header}
            if isinstance(frame.msg, Image):
                size.update(width=frame.msg.width, height=frame.msg.height)
        return messages.status_array(
            status,
            message,
            command_id=job.command_id,
            command=job.command,
            latency_s=time.monotonic() - job.accepted,
            **size,
        )

    def _finish(self, job: Job, result: DetectionArray) -> None:
        """Publishes the answer on `detections` and hands it to a waiting service call."""
        result.latency_s = float(time.monotonic() - job.accepted)
        with self._lock:
            self._stats.last_latency_s = result.latency_s
            self._stats.last_status = STATUS_NAMES[result.status]
            self._stats.errors += result.status == DetectionArray.INTERNAL_ERROR
        if hasattr(self, "_detections_pub"):
            self._detections_pub.publish(result)
        job.result = result
        job.done.set()

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        with self._lock:
            values = diagnostic_values(self._stats, self._frame, self._jobs.qsize(),
                                       self._perceiver.backend if self._perceiver else "")  # fmt: skip
        status = diagnostic_status(
            values,
            name=f"pgpt_ros: {self.get_fully_qualified_name()}",
            hardware_id=self.params.device,
            max_image_age_s=self.params.max_image_age_s,
        )
        self._diagnostics_pub.publish(
            DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status])
        )


def spin(node: PerceptionNode) -> int:
    """Autostarts if asked, spins until shutdown, tears down. Returns the exit status."""
    executor = MultiThreadedExecutor(num_threads=node.params.command_queue_size + 3)
    executor.add_node(node)
    try:
        if node.params.autostart:
            for transition in (node.trigger_configure, node.trigger_activate):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    node.get_logger().error(f"autostart failed at {transition.__name__}")
                    return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop_serving()
        node.release()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``perception_node [--ros-args ...]``; 2 on invalid parameters."""
    rclpy.init(args=argv)
    try:
        node = PerceptionNode()
    except (ValueError, ParameterException) as error:
        rclpy.logging.get_logger(NODE_NAME).error(str(error))
        rclpy.try_shutdown()
        return 2
    return spin(node)


if __name__ == "__main__":
    raise SystemExit(main())

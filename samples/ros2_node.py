"""ROS 2 node ``lsa_edge_attributes``: face attributes for every image on a topic.

Subscribes to ``sensor_msgs/Image`` and publishes, stamped with each image's header:

- ``~/detections`` (``vision_msgs/Detection2DArray``): one ``Detection2D`` per face, ``id`` = track id,
  one hypothesis per attribute label that is on (``class_id`` = attribute name, ``score`` = probability);
- ``~/attributes`` (``std_msgs/String``): the full ``FrameResult`` as one JSON line (boxes, keypoints,
  all 40 probabilities, labels, timings).

Run it (after ``source /opt/ros/$ROS_DISTRO/setup.bash`` and ``pip install lsa-edge``)::

    python3 samples/ros2_node.py --ros-args -p image_topic:=/camera/image_raw -p model:=build/int8
    ros2 topic echo /lsa_edge_attributes/attributes

Parameters: ``model`` (path to a build folder, engine or ONNX; empty = the default model), ``backend``
(auto | tensorrt | onnxruntime | torch), ``image_topic``, ``min_face_size`` (pixels, the larger box side),
``score_threshold`` (face detector score, 0–1; 0 = the detector's default), ``all_attributes`` (publish all probabilities as
hypotheses, not just the labels that are on).

The subscription uses the sensor-data QoS (best effort, volatile) with a queue of one image: when the model
is slower than the camera, stale frames are dropped, not queued. Works with vision_msgs 2 (Foxy) to 4+
(Humble, Jazzy): ``ros2_convert`` finds the fields by looking at the messages. cv_bridge is used where it
is installed; without it bgr8/rgb8/mono8/bgra8/rgba8 images are converted with numpy.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
import time

try:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from vision_msgs import msg as vision_msgs
except ImportError as err:  # pragma: no cover - needs ROS 2
    sys.exit(
        f"this sample needs ROS 2 with vision_msgs ({err}). Source your ROS 2 setup "
        "(source /opt/ros/$ROS_DISTRO/setup.bash) and install apt package ros-$ROS_DISTRO-vision-msgs."
    )

try:
    from cv_bridge import CvBridge
except ImportError:  # pragma: no cover - optional
    CvBridge = None

# ros2_convert.py lies beside this file (Python puts the script's folder on sys.path); in a ROS 2 package,
# ship both modules in it.
from ros2_convert import attributes_json, faces_to_detection2d_array, to_bgr

from lsa_edge import Pipeline
from lsa_edge.errors import LsaEdgeError

try:  # Humble and later; on Foxy a shutdown arrives as KeyboardInterrupt only
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover
    ExternalShutdownException = KeyboardInterrupt


class AttributesNode(Node):
    """Runs the lsa-edge pipeline on each image and publishes detections and attributes."""

    def __init__(self) -> None:
        super().__init__("lsa_edge_attributes")
        self.declare_parameter("model", "")
        self.declare_parameter("backend", "auto")
        self.declare_parameter("image_topic", "/camera/image_raw")
        self.declare_parameter("min_face_size", 24)
        self.declare_parameter("score_threshold", 0.0)
        self.declare_parameter("all_attributes", False)
        param = self._param

        # The pipeline holds the backend (CUDA buffers, an ONNX Runtime session): closed in destroy_node.
        self._resources = contextlib.ExitStack()
        self._pipe = self._resources.enter_context(
            Pipeline(
                model=param("model") or None,
                backend=param("backend"),
                min_face_size=float(param("min_face_size")),
                detector_threshold=float(param("score_threshold")) or None,  # 0: the detector's default
            )
        )
        self._all_attributes = bool(param("all_attributes"))
        self._bridge = CvBridge() if CvBridge is not None else None

        qos = copy.copy(qos_profile_sensor_data)
        qos.depth = 1  # keep only the newest image: drop stale frames rather than fall behind
        topic = param("image_topic")
        self._sub = self.create_subscription(Image, topic, self._on_image, qos)
        self._pub_detections = self.create_publisher(vision_msgs.Detection2DArray, "~/detections", 10)
        self._pub_attributes = self.create_publisher(String, "~/attributes", 10)
        self._frames = 0
        self._started = time.monotonic()
        self.get_logger().info(
            f"listening on {topic} (cv_bridge: {'yes' if self._bridge else 'no, numpy conversion'}); "
            f"publishing {_topic(self._pub_detections)} and {_topic(self._pub_attributes)}"
        )

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _on_image(self, msg: Image) -> None:
        try:
            frame = to_bgr(msg, self._bridge)
            stamp = msg.header.stamp
            result = self._pipe.predict(frame, timestamp=stamp.sec + stamp.nanosec * 1e-9)
        except LsaEdgeError as err:  # a bad encoding or message: say so, keep the node alive
            self.get_logger().error(str(err), throttle_duration_sec=10.0)
            return
        except Exception as err:  # cv_bridge's own errors (e.g. 16UC1): one throttled line, keep spinning
            self.get_logger().error(
                f"cannot use image ({msg.encoding}): {type(err).__name__}: {err}", throttle_duration_sec=10.0
            )
            return
        self._pub_detections.publish(
            faces_to_detection2d_array(result, msg.header, vision_msgs, all_attributes=self._all_attributes)
        )
        out = String()
        out.data = attributes_json(result)
        self._pub_attributes.publish(out)
        self._frames += 1
        if self._frames % 300 == 0:
            fps = self._frames / (time.monotonic() - self._started)
            self.get_logger().info(f"{self._frames} frames, {fps:.1f} fps, last: {result.timings_ms}")

    def destroy_node(self) -> None:
        self._resources.close()
        super().destroy_node()


def _topic(publisher) -> str:
    return getattr(publisher, "topic_name", "?")  # the resolved name; Foxy's publishers lack it


def main(args: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO)  # lsa_edge logs which backend it chose, and why
    rclpy.init(args=args)
    node = None
    try:
        node = AttributesNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except LsaEdgeError as err:  # no model, a missing backend, an engine built for another device
        logging.getLogger("lsa_edge_attributes").error("%s", err)
        sys.exit(1)
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()

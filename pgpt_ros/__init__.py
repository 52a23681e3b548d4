"""pgpt_ros: find things from a sentence with PerceptionGPT, as a ROS 2 node.

The generated interfaces (``pgpt_ros.msg``, ``pgpt_ros.srv``) are installed by rosidl into the
environment's site-packages under the same package name. ``extend_path`` lets this source tree and
that installed copy form one package: modules in the source tree win, and ``msg``/``srv`` (which only
exist in the installed copy) are found there. Without it, running from a checkout would either miss
the interfaces or silently import stale installed code.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

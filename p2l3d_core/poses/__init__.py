"""3D pose sources (procedural generator, dataset readers) and cameras."""

from p2l3d_core.poses.camera import Camera, random_camera
from p2l3d_core.poses.record import PoseRecord

__all__ = ["Camera", "PoseRecord", "random_camera"]

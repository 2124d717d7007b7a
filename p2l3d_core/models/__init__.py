"""Encoders, teacher, student, decoder, losses, and their save/load."""

from p2l3d_core.models.config import PoseModelConfig
from p2l3d_core.models.io import load_pretrained, save_pretrained
from p2l3d_core.models.pose_models import Student, Teacher

__all__ = ["PoseModelConfig", "Student", "Teacher", "load_pretrained", "save_pretrained"]

"""Pose2Lang3D core library."""

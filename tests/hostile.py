"""What a hostile writer plants in files the project reads, for the tests that check it never
runs."""

from __future__ import annotations

import os
from pathlib import Path


class RunsACommand:
    """Unpickling it calls ``os.system`` to create ``marker``: a test that finds ``marker``
    afterwards knows the planted code ran."""

    def __init__(self, marker: Path | str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)

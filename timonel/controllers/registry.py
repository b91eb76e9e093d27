"""The controllers `timonel server` runs, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from timonel.controllers.manager import ControllerFactory

CONTROLLERS: dict[str, ControllerFactory] = {}

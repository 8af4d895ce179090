"""(placeholder: filled in by its area)"""

from __future__ import annotations

from server.api.base import Route

ROUTES: list[Route] = []

"""Adapters for the image provider: one client per protocol family over one HTTP core."""

from __future__ import annotations

from dataclasses import dataclass

from tryon.providers.dashscope_generation import GenerationClient
from tryon.providers.dashscope_limits import LimitsClient
from tryon.providers.dashscope_tasks import TaskClient


@dataclass(frozen=True)
class ProviderClients:
    """The clients of one API key: the task protocol, the synchronous one, and the
    limits API."""

    tasks: TaskClient
    generation: GenerationClient
    limits: LimitsClient

    def close(self) -> None:
        self.tasks.close()
        self.generation.close()
        self.limits.close()

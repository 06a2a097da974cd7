"""A local emulator of the DashScope OutfitAnyone try-on API and its Qwen Image
successors (see CONTRACT.md).

    from tryon_local.emulator import EmulatorConfig, serve_in_thread

    with serve_in_thread(EmulatorConfig(speedup=50)) as server:
        ...  # point the client at server.base_url
"""

from .app import create_app
from .config import EmulatorConfig, ModelQuota
from .server import EmulatorServer, main, serve_in_thread

__all__ = [
    "EmulatorConfig", "EmulatorServer", "ModelQuota", "create_app", "main", "serve_in_thread",
]

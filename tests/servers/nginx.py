"""Debian's nginx with libnginx-mod-rtmp, on a free 127.0.0.1 port, for RTMP publish/play tests.

The configuration is generated into the test's folder (``daemon off``, pid and logs there), so
nothing of the system's nginx is touched. ``NginxRtmp.url(stream)`` is where a publisher sends
and a player reads (application ``live``).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from tests.servers.listeners import free_port, wait_for_tcp

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def missing() -> str | None:
    """Why the server cannot run here, None when it can."""
    if NGINX is None:
        return "nginx is not installed (apt-get install nginx-light libnginx-mod-rtmp)"
    if not MODULE.exists():
        return f"the RTMP module is not installed ({MODULE}; apt-get install libnginx-mod-rtmp)"
    return None


CONFIG = """load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            wait_key on;
            wait_video on;
        }}
    }}
}}
"""


class NginxRtmp:
    """One nginx-rtmp server; ``start``/``stop`` may be repeated on the same port (a server restart)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = root / "nginx.conf"
        self.conf.write_text(CONFIG.format(module=MODULE, root=root, port=self.port))
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, stream: str = "test", user: str = "") -> str:
        auth = f"{user}@" if user else ""
        return f"rtmp://{auth}127.0.0.1:{self.port}/live/{stream}"

    def start(self) -> NginxRtmp:
        # -p: the prefix, so nginx opens no file outside root; -e: the early error log too
        self.proc = subprocess.Popen(
            [str(NGINX), "-p", str(self.root), "-e", str(self.root / "error.log"), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_tcp(self.port, 10.0):
            self.stop()
            raise RuntimeError(f"nginx-rtmp did not start: {(self.root / 'error.log').read_text()[-2000:]}")
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGQUIT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> NginxRtmp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

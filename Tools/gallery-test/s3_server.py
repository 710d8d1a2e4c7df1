"""moto's S3-compatible server on a free loopback port for the gallery's S3 store test: prints
`listening on http://127.0.0.1:PORT` once bound, serves until killed. Nothing leaves this machine.
"""
import os
import signal

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True)
# The test stops it with SIGTERM, which its parent (the test process) may have left blocked.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()

"""Real servers on loopback for the document-fetch tests; nothing here leaves the machine.

- :class:`Listener`: a TCP listener that records every connection it accepts (to show
  that a fetch never connects where it must not) or holds it silently (to stall one);
- :func:`make_tls`: a throwaway CA and a server certificate it signs;
- :class:`GitHttpsServer`: real git (``git http-backend``) over real HTTPS."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path


class Listener:
    """Accepts connections on ``host``:0 in a thread and records each peer.

    ``mode``: ``"close"`` closes at once (git sees the connection drop), ``"banner"``
    writes a line that is not TLS (what an SSH or SMTP server would say), ``"stall"``
    holds the connection open and says nothing (a black hole that accepted)."""

    def __init__(self, host: str = "127.0.0.1", mode: str = "banner"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.mode = mode
        self.accepted: list[tuple] = []
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._held:
            c.close()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(peer)
            if self.mode == "stall":
                self._held.append(conn)
                continue
            try:
                if self.mode == "banner":
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 internal-build-host\r\n")
                    time.sleep(0.05)
            except OSError:
                pass
            conn.close()


# -- TLS material made in the test: a CA, and a server certificate it signs -------------
def make_tls(folder: Path, names: list[str], ips: list[str] = ()) -> dict[str, Path]:
    """A throwaway CA and a server certificate for ``names`` (DNS) and ``ips`` signed by
    it, as PEM files in ``folder``: ``ca``, ``cert``, ``key``. Nothing is installed
    anywhere: a fetch trusts the CA only through an explicit CA-file setting."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab-ci test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or ips)[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    out = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return out


# -- real git over real HTTPS: git http-backend behind a small threaded server ---------
class GitHttpsServer:
    """Serves the bare repositories under ``root`` over HTTPS on ``host``:``port`` (0: any
    free port) through ``git http-backend`` (git's own smart-HTTP CGI program). Records
    every request (peer address, method, path). ``redirects`` maps a request path to a
    ``Location`` answered with 301 instead."""

    def __init__(self, root: Path, tls: dict[str, Path], host: str = "127.0.0.1", port: int = 0):
        import ssl
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server = self
        self.root = root
        self.requests: list[tuple[str, str, str]] = []
        self.redirects: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                path, _, query = self.path.partition("?")
                server.requests.append((self.client_address[0], self.command, path))
                if path in server.redirects:
                    self.send_response(301)
                    self.send_header("Location", server.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CONFIG_GLOBAL": "/dev/null",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_ADDR": self.client_address[0],
                }
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                cgi = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
                head, _, rest = cgi.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.split(b"\r\n"):
                    k, _, v = line.decode("latin-1").partition(":")
                    if k.lower() == "status":
                        status = int(v.split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                self.wfile.write(rest)

            do_GET = do_POST = _serve

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self.httpd = Server((host, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls["cert"], tls["key"])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> GitHttpsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def publish_docs(root: Path, name: str, files: dict[str, bytes]) -> str:
    """A bare repository ``root/name`` with one commit holding ``files``; its SHA."""
    work = root.parent / f"{name}-work"
    work.mkdir(parents=True)
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "documents", cwd=work)
    git("clone", "--quiet", "--bare", str(work), str(root / name))
    return git("rev-parse", "HEAD", cwd=work)

#!/usr/bin/env python3
"""Local-stack router: the single endpoint every AWS SDK of the local stack calls.

Lambda Invoke calls (POST /2015-03-31/functions/<name-or-arn>/invocations) go to
`cargo lambda watch`, addressed by the bare function name; everything else is
proxied verbatim to moto.

cargo-lambda reports a handler error as HTTP 500 with an {"errorType", "errorMessage"}
body. Real Lambda answers such an invocation with 200, the header
`X-Amz-Function-Error: Unhandled` and the same body; the router does the same, so a
Step Functions Retry/Catch (moto's interpreter included) sees the real error type.

Standard library only. Usage:
    router.py --port P --moto-url http://127.0.0.1:M --lambda-url http://127.0.0.1:L
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",
}

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/invocations/?$")

COPY_CHUNK = 64 * 1024


def function_name_of(raw: str) -> str:
    """Bare function name from a name, a partial ARN or a full ARN, with or without a
    qualifier: `snapshot`, `snapshot:live`, `123456789012:function:snapshot`,
    `arn:aws:lambda:us-east-1:123456789012:function:snapshot[:qualifier]`."""
    name = urllib.parse.unquote(raw)
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    return name.split(":", 1)[0]


class Config:
    moto: urllib.parse.SplitResult
    lambda_: urllib.parse.SplitResult
    moto_timeout: float
    lambda_timeout: float
    verbose: bool


CFG = Config()
LOG_LOCK = threading.Lock()


def log(msg: str) -> None:
    with LOG_LOCK:
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")
        sys.stderr.flush()


def connect(target: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(target.hostname, target.port or 80, timeout=timeout)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for SDK connection pools; 100-continue
    server_version = "amiforge-router"
    # Idle client connections are dropped after this many seconds.
    timeout = 600

    # -- plumbing -------------------------------------------------------------------

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        if CFG.verbose:
            log(f"{self.address_string()} {format % args}")

    def read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        return b""

    def read_chunked(self) -> bytes:
        parts = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed inside a chunked body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # trailer section, ends with an empty line
                while True:
                    trailer = self.rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)  # CRLF after each chunk
        return b"".join(parts)

    def end_to_end_headers(self) -> list[tuple[str, str]]:
        listed = {
            token.strip().lower()
            for value in self.headers.get_all("Connection", [])
            for token in value.split(",")
        }
        return [
            (k, v)
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP
            and k.lower() not in listed
            and k.lower() != "content-length"
        ]

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()

    def reply_json_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "Service", "message": message, "Message": message}).encode()
        self.reply(
            status,
            [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", error_type),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
            body,
        )

    # -- dispatch ---------------------------------------------------------------------

    def handle_any(self) -> None:
        try:
            try:
                body = self.read_body()
            except ValueError as err:
                log(f"bad request body for {self.command} {self.path}: {err}")
                self.close_connection = True
                return
            path_only = urllib.parse.urlsplit(self.path).path
            match = INVOKE_PATH.match(path_only)
            if self.command == "POST" and match:
                self.invoke_lambda(function_name_of(match.group("fn")), body)
            else:
                self.proxy_to_moto(body)
        except (ConnectionError, TimeoutError) as err:
            # the caller went away (or stalled) mid-request: drop this connection only
            log(f"connection dropped during {self.command} {self.path}: {err!r}")
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    # -- moto -------------------------------------------------------------------------

    def proxy_to_moto(self, body: bytes) -> None:
        conn = connect(CFG.moto, CFG.moto_timeout)
        try:
            headers = self.end_to_end_headers()
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers.append(("Content-Length", str(len(body))))
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
        except OSError as err:
            conn.close()
            log(f"moto unreachable for {self.command} {self.path}: {err}")
            self.reply_json_error(502, "ServiceUnavailable", f"router: moto unreachable: {err}")
            return
        try:
            self.relay(resp)
        except (http.client.HTTPException, TimeoutError) as err:
            log(f"moto response broken for {self.command} {self.path}: {err!r}")
            self.close_connection = True
        finally:
            conn.close()

    def relay(self, resp: http.client.HTTPResponse) -> None:
        listed = {
            token.strip().lower()
            for value in resp.headers.get_all("Connection", []) or []
            for token in value.split(",")
        }
        headers = [
            (k, v)
            for k, v in resp.getheaders()
            if k.lower() not in HOP_BY_HOP and k.lower() not in listed
        ]
        length = resp.getheader("Content-Length")
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        if no_body:
            self.send_response_only(resp.status, resp.reason)
            for k, v in headers:
                self.send_header(k, v)
            if length is None and resp.status not in (204, 304):
                self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            return
        if length is not None and not resp.getheader("Transfer-Encoding"):
            # stream a known-length body through
            self.send_response_only(resp.status, resp.reason)
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            remaining = int(length)
            while remaining > 0:
                chunk = resp.read(min(COPY_CHUNK, remaining))
                if not chunk:
                    self.close_connection = True
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
            self.wfile.flush()
            return
        # unknown length (chunked or close-delimited): buffer, then send with a length
        data = resp.read()
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        self.send_response_only(resp.status, resp.reason)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    # -- lambda -----------------------------------------------------------------------

    def invoke_lambda(self, name: str, payload: bytes) -> None:
        invocation_type = (self.headers.get("X-Amz-Invocation-Type") or "RequestResponse").strip()
        if invocation_type == "DryRun":
            self.reply(204, [("x-amzn-RequestId", str(uuid.uuid4()))], b"")
            return
        if invocation_type == "Event":
            log(f"invoke {name} (async)")
            threading.Thread(
                target=call_function, args=(name, payload, self.forward_headers()), daemon=True
            ).start()
            self.reply(202, [("x-amzn-RequestId", str(uuid.uuid4()))], b"")
            return

        started = time.monotonic()
        try:
            status, _headers, body = call_function(name, payload, self.forward_headers())
        except OSError as err:
            log(f"invoke {name}: cargo-lambda unreachable at {CFG.lambda_.geturl()}: {err}")
            self.reply_json_error(
                500,
                "ServiceException",
                f"router: cargo lambda watch is not reachable at {CFG.lambda_.geturl()} "
                f"(stack started with --no-lambda?): {err}",
            )
            return
        elapsed = time.monotonic() - started
        base = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        if 200 <= status < 300:
            log(f"invoke {name}: ok in {elapsed:.2f}s")
            self.reply(200, base, body)
            return
        error_type = function_error_type(body)
        if status == 500 and error_type is not None:
            log(f"invoke {name}: function error {error_type} in {elapsed:.2f}s")
            self.reply(200, base + [("X-Amz-Function-Error", "Unhandled")], body)
            return
        text = body.decode("utf-8", "replace")[:2000]
        log(f"invoke {name}: cargo-lambda answered {status}: {text}")
        if status == 404:
            self.reply_json_error(
                404, "ResourceNotFoundException", f"Function not found: {name}: {text}"
            )
        else:
            self.reply_json_error(
                500, "ServiceException", f"cargo lambda watch answered {status}: {text}"
            )

    def forward_headers(self) -> list[tuple[str, str]]:
        drop = {"host", "authorization", "x-amz-date", "x-amz-security-token", "content-length"}
        return [(k, v) for k, v in self.end_to_end_headers() if k.lower() not in drop]


def function_error_type(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("errorType"), str):
        return doc["errorType"]
    return None


def call_function(
    name: str, payload: bytes, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = connect(CFG.lambda_, CFG.lambda_timeout)
    try:
        path = f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/invocations"
        conn.putrequest("POST", path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(payload)))
        conn.endheaders(payload)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--lambda-url", required=True)
    parser.add_argument("--moto-timeout", type=float, default=300.0)
    parser.add_argument(
        "--lambda-timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for one invocation (the first one may include a compile)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()

    CFG.moto = urllib.parse.urlsplit(args.moto_url)
    CFG.lambda_ = urllib.parse.urlsplit(args.lambda_url)
    CFG.moto_timeout = args.moto_timeout
    CFG.lambda_timeout = args.lambda_timeout
    CFG.verbose = args.verbose

    server = Server((args.host, args.port), Handler)
    log(
        f"router on http://{args.host}:{args.port} -> moto {args.moto_url}, "
        f"lambda invoke {args.lambda_url}"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

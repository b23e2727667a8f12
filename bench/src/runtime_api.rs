//! A small stand-in for the Lambda Runtime API, enough for `lambda_runtime` to serve events
//! from it: `GET /2018-06-01/runtime/invocation/next` hands out queued events,
//! `POST .../invocation/{id}/response|error` and `POST .../init/error` are recorded. Every
//! request is reported with the instant it arrived, so a benchmark can time a binary's start
//! and each invocation without touching the binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};

/// Something the function did, with when the server saw it.
#[derive(Debug, Clone)]
pub enum Note {
    /// The function asked for its next event.
    NextRequested(Instant),
    /// An event was handed out (just before its bytes were written).
    EventSent { request_id: String, at: Instant },
    /// The function posted a result for an event (its whole body was read).
    Answered {
        request_id: String,
        ok: bool,
        body: String,
        at: Instant,
    },
    /// The function reported that it could not start.
    InitError(String),
}

/// A running fake Runtime API on 127.0.0.1.
pub struct RuntimeApi {
    addr: SocketAddr,
    events: mpsc::UnboundedSender<(String, String)>,
    notes: mpsc::UnboundedReceiver<Note>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts the server on a free port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (events, queue) = mpsc::unbounded_channel();
        let (report, notes) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                let queue = queue.clone();
                let report = report.clone();
                tokio::spawn(async move {
                    // A connection the function drops when it is killed is no news.
                    let _ = serve_connection(socket, queue, report).await;
                });
            }
        });
        Ok(Self {
            addr,
            events,
            notes,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event; the next `GET .../next` receives it.
    pub fn push(&self, request_id: &str, payload: &str) {
        let _ = self
            .events
            .send((request_id.to_owned(), payload.to_owned()));
    }

    /// Waits for the next thing the function does.
    ///
    /// # Errors
    /// When the server stopped.
    pub async fn next_note(&mut self) -> Result<Note> {
        self.notes
            .recv()
            .await
            .context("the runtime API server stopped")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Queue = Arc<Mutex<mpsc::UnboundedReceiver<(String, String)>>>;

async fn serve_connection(
    socket: TcpStream,
    queue: Queue,
    report: mpsc::UnboundedSender<Note>,
) -> Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    loop {
        let Some((method, path, body)) = read_request(&mut read).await? else {
            return Ok(());
        };
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = report.send(Note::NextRequested(Instant::now()));
            let next = queue.lock().await.recv().await;
            let Some((request_id, payload)) = next else {
                return Ok(());
            };
            let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {request_id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\r\n",
                payload.len()
            );
            let _ = report.send(Note::EventSent {
                request_id,
                at: Instant::now(),
            });
            write.write_all(head.as_bytes()).await?;
            write.write_all(payload.as_bytes()).await?;
        } else if method == "POST" && path.contains("/runtime/invocation/") {
            let at = Instant::now();
            let rest = path
                .split("/runtime/invocation/")
                .nth(1)
                .unwrap_or_default();
            let (request_id, kind) = rest.split_once('/').unwrap_or((rest, ""));
            let _ = report.send(Note::Answered {
                request_id: request_id.to_owned(),
                ok: kind == "response",
                body: String::from_utf8_lossy(&body).into_owned(),
                at,
            });
            write.write_all(ACCEPTED).await?;
        } else if method == "POST" && path.ends_with("/runtime/init/error") {
            let _ = report.send(Note::InitError(String::from_utf8_lossy(&body).into_owned()));
            write.write_all(ACCEPTED).await?;
        } else {
            write
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
        }
        write.flush().await?;
    }
}

const ACCEPTED: &[u8] =
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

/// One HTTP/1.1 request: method, path and the whole body (`Content-Length` or chunked).
/// `None` when the client closed the connection between requests.
async fn read_request<R>(read: &mut R) -> Result<Option<(String, String, Vec<u8>)>>
where
    R: AsyncBufReadExt + Unpin,
{
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        bail!("not an HTTP request line: {line:?}");
    };
    let (method, path) = (method.to_owned(), path.to_owned());

    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        if read.read_line(&mut header).await? == 0 {
            bail!("connection closed inside the headers");
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }

    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            read.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
            let mut chunk = vec![0; size + 2];
            read.read_exact(&mut chunk).await?;
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        read.read_exact(&mut body).await?;
    }
    Ok(Some((method, path, body)))
}

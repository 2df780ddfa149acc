//! A fault-injecting HTTP proxy placed in front of the real registry: it
//! forwards every request and logs it, and on paths containing a chosen
//! substring it misbehaves as a real server never does on demand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A misbehaviour.
#[derive(Clone, Debug)]
pub enum Fault {
    /// One byte of the body flipped.
    CorruptBody,
    /// Half the body sent under the full Content-Length, then the
    /// connection closed.
    Truncate,
    /// A body without end (stops after 64 MiB).
    Endless,
    /// This status with an empty body.
    Status(u16),
    /// This status for the next N matching requests, then normal answers.
    StatusTimes(u16, usize),
    /// 401 with a bearer challenge whose token is always refused.
    AuthLoop,
    /// A redirect to the same URL.
    RedirectLoop,
    /// The body one byte at a time.
    Drip(Duration),
    /// A `Docker-Content-Digest` header that does not match the body.
    WrongDigestHeader,
}

struct State {
    rule: Option<(String, Fault)>,
    log: Vec<String>,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Forward to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            rule: None,
            log: Vec::new(),
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (upstream, thread_state) = (upstream.to_owned(), state.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap().to_string();
                addr_tx.send(addr.clone()).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (upstream, state, addr) =
                            (upstream.clone(), thread_state.clone(), addr.clone());
                        tokio::spawn(async move {
                            let _ = handle(stream, &upstream, &addr, &state).await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = rx => {}
                }
            });
        });
        Self {
            addr: addr_rx.recv().unwrap(),
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Misbehave on every request whose path contains `path_part`.
    pub fn set(&self, path_part: &str, fault: Fault) {
        self.state.lock().unwrap().rule = Some((path_part.to_owned(), fault));
    }

    /// Behave again.
    pub fn clear(&self) {
        self.state.lock().unwrap().rule = None;
    }

    /// `METHOD PATH` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// Forget the requests so far.
    pub fn clear_requests(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read one HTTP message head (and a Content-Length body) from `stream`.
async fn read_message(stream: &mut TcpStream, to_eof: bool) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok((String::from_utf8_lossy(&buf).into_owned(), Vec::new()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf[head_end..].to_vec();
    let length = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok());
    match length {
        Some(len) => {
            while body.len() < len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        None if to_eof => {
            stream.read_to_end(&mut body).await?;
        }
        None => {}
    }
    Ok((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `head` with `Connection: close` and without the named headers.
fn rewrite_head(head: &str, drop: &[&str]) -> String {
    let mut out = String::new();
    for line in head.trim_end().lines() {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection")
            || drop.iter().any(|d| name.eq_ignore_ascii_case(d))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn handle(
    mut client: TcpStream,
    upstream: &str,
    me: &str,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let (head, body) = read_message(&mut client, false).await?;
    let mut request_line = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (
        request_line.next().unwrap_or("").to_owned(),
        request_line.next().unwrap_or("").to_owned(),
    );
    if path == "/token" {
        // The AuthLoop fault's token endpoint.
        let body = br#"{"token":"always-refused"}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        client.write_all(reply.as_bytes()).await?;
        return client.write_all(body).await;
    }
    let fault = {
        let mut s = state.lock().unwrap();
        s.log.push(format!("{method} {path}"));
        match s.rule.as_mut() {
            Some((part, fault)) if path.contains(part.as_str()) => match fault {
                Fault::StatusTimes(code, n) if *n > 0 => {
                    *n -= 1;
                    Some(Fault::Status(*code))
                }
                Fault::StatusTimes(..) => None,
                other => Some(other.clone()),
            },
            _ => None,
        }
    };
    let simple = |status: &str, extra: String| {
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
    };
    match &fault {
        Some(Fault::Status(code)) => {
            return client
                .write_all(simple(&format!("{code} Fault"), String::new()).as_bytes())
                .await;
        }
        Some(Fault::AuthLoop) => {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"x\",scope=\"y\"\r\n"
            );
            return client
                .write_all(simple("401 Unauthorized", challenge).as_bytes())
                .await;
        }
        Some(Fault::RedirectLoop) => {
            let location = format!("Location: http://{me}{path}\r\n");
            return client
                .write_all(simple("307 Temporary Redirect", location).as_bytes())
                .await;
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(rewrite_head(&head, &[]).as_bytes()).await?;
    up.write_all(&body).await?;
    let (response_head, mut response_body) = read_message(&mut up, method != "HEAD").await?;
    match fault {
        None => {
            client
                .write_all(rewrite_head(&response_head, &[]).as_bytes())
                .await?;
            client.write_all(&response_body).await
        }
        Some(Fault::CorruptBody) => {
            if let Some(last) = response_body.last_mut() {
                *last ^= 0x01;
            }
            client
                .write_all(rewrite_head(&response_head, &[]).as_bytes())
                .await?;
            client.write_all(&response_body).await
        }
        Some(Fault::WrongDigestHeader) => {
            let head = rewrite_head(&response_head, &["docker-content-digest"]);
            let wrong = format!("Docker-Content-Digest: sha256:{}\r\n\r\n", "0".repeat(64));
            client.write_all(head.trim_end().as_bytes()).await?;
            client.write_all(b"\r\n").await?;
            client.write_all(wrong.as_bytes()).await?;
            client.write_all(&response_body).await
        }
        Some(Fault::Truncate) => {
            client
                .write_all(rewrite_head(&response_head, &[]).as_bytes())
                .await?;
            client
                .write_all(&response_body[..response_body.len() / 2])
                .await
        }
        Some(Fault::Endless) => {
            let head = rewrite_head(&response_head, &["content-length"]);
            client.write_all(head.as_bytes()).await?;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..1024 {
                client.write_all(&chunk).await?;
            }
            Ok(())
        }
        Some(Fault::Drip(every)) => {
            client
                .write_all(rewrite_head(&response_head, &[]).as_bytes())
                .await?;
            for byte in response_body {
                client.write_all(&[byte]).await?;
                client.flush().await?;
                tokio::time::sleep(every).await;
            }
            Ok(())
        }
        Some(Fault::Status(_) | Fault::StatusTimes(..) | Fault::AuthLoop | Fault::RedirectLoop) => {
            unreachable!("answered above")
        }
    }
}

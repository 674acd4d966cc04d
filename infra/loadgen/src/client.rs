//! One Socket.IO client over a plain WebSocket: Engine.IO v4 packets (`0` open, `2`/`3` ping/pong,
//! `4` message) carrying Socket.IO v5 packets (`40` connect, `42` event, `43` ack, `44` error) on
//! the default namespace: what socket.io-client sends with `transports: ['websocket']`, and nothing
//! particular to one server.
//!
//! Each connection is one task that owns its stream; the rest of the generator talks to it through
//! an unbounded channel, so sends never wait on the network (the arrival schedule stays open-loop).
//! Buffers are kept small so that one process can hold tens of thousands of connections.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Called for every event the server emits: (event name, first argument as JSON text, arrival).
pub type EventSink = Arc<dyn Fn(&str, &str, Instant) + Send + Sync>;
/// Called once with an acknowledgement's first argument (JSON text) and its arrival.
pub type AckFn = Box<dyn FnOnce(&str, Instant) + Send>;

/// A server address: `http://host:port` (plain HTTP only; put a TLS terminator in front if needed).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base: String,
    pub addr: SocketAddr,
    pub host: String,
}

impl Endpoint {
    pub async fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("{url}: only http:// server addresses are supported"))?;
        let host = rest.trim_end_matches('/').to_string();
        if host.contains('/') {
            bail!("{url}: give the server's origin, without a path");
        }
        let addr = tokio::net::lookup_host(&host)
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} resolves to no address"))?;
        Ok(Self {
            base: format!("http://{host}"),
            addr,
            host,
        })
    }
}

/// What a connection was told by the server when it connected.
#[derive(Debug, Clone)]
pub struct Connected {
    /// Time from the start of the TCP connect until `group-chat-list` (the last on-connect event).
    pub resync: Duration,
    /// The connection's own address (which source address it was bound to).
    pub local: SocketAddr,
}

enum Command {
    Emit {
        packet: String,
        ack: Option<AckFn>,
    },
    Wait {
        event: String,
        needle: Option<String>,
        reply: oneshot::Sender<String>,
    },
    Close,
    Abort,
}

/// A handle on one connection; dropping every handle closes it.
#[derive(Clone)]
pub struct Socket {
    tx: mpsc::UnboundedSender<Command>,
}

fn event_packet(event: &str, data: &Value) -> String {
    // `42["event",{…}]` — serializing a (&str, &Value) tuple cannot fail.
    let body = serde_json::to_string(&(event, data)).unwrap_or_default();
    format!("42{body}")
}

impl Socket {
    /// Emits without an acknowledgement callback.
    pub fn emit(&self, event: &str, data: &Value) -> bool {
        self.tx
            .send(Command::Emit {
                packet: event_packet(event, data),
                ack: None,
            })
            .is_ok()
    }

    /// Emits with an acknowledgement callback; `ack` runs on the connection's task.
    pub fn emit_with_ack(&self, event: &str, data: &Value, ack: AckFn) -> bool {
        self.tx
            .send(Command::Emit {
                packet: event_packet(event, data),
                ack: Some(ack),
            })
            .is_ok()
    }

    /// Emits `event` and waits for the server's `answer` event (whose payload contains `needle`,
    /// when given): how the protocol answers requests, acknowledgements or not.
    pub async fn request(
        &self,
        event: &str,
        data: &Value,
        answer: &str,
        needle: Option<&str>,
        timeout: Duration,
    ) -> Result<Value> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Wait {
                event: answer.to_string(),
                needle: needle.map(str::to_string),
                reply,
            })
            .map_err(|_| anyhow!("connection closed"))?;
        if !self.emit(event, data) {
            bail!("connection closed");
        }
        let text = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| anyhow!("no `{answer}` within {timeout:?} after `{event}`"))?
            .map_err(|_| anyhow!("connection closed before `{answer}`"))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// [`Self::request`], then the string field `key` of the answer (the id a request created).
    pub async fn request_id(
        &self,
        event: &str,
        data: &Value,
        answer: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<String> {
        let v = self.request(event, data, answer, None, timeout).await?;
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no {key} in `{answer}` {v}"))
    }

    /// Sends a Socket.IO disconnect and closes the WebSocket.
    pub fn close(&self) {
        let _ = self.tx.send(Command::Close);
    }

    /// Drops the TCP connection without a goodbye, as a lost network would.
    pub fn abort(&self) {
        let _ = self.tx.send(Command::Abort);
    }
}

/// Connection settings shared by many sockets.
#[derive(Clone)]
pub struct Dialer {
    config: WebSocketConfig,
}

impl Default for Dialer {
    fn default() -> Self {
        Self {
            config: WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .write_buffer_size(0)
                .max_message_size(Some(64 << 20))
                .max_frame_size(Some(16 << 20)),
        }
    }
}

type Ws = WebSocketStream<TcpStream>;

impl Dialer {
    /// Connects, authenticates with `auth` (the handshake's `auth` payload) and waits until the
    /// on-connect events have arrived (`group-chat-list`, the last of them). `source` binds the
    /// local address (to spread connections over 127.0.0.0/8 when one address runs out of ports).
    pub async fn connect(
        &self,
        endpoint: &Endpoint,
        source: Option<IpAddr>,
        auth: &Value,
        sink: EventSink,
        timeout: Duration,
    ) -> Result<(Socket, Connected)> {
        let started = Instant::now();
        let (mut ws, local) = tokio::time::timeout(timeout, self.open(endpoint, source, auth))
            .await
            .map_err(|_| anyhow!("not connected and resynced within {timeout:?}"))??;
        let connected = Connected {
            resync: started.elapsed(),
            local,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _ = run(&mut ws, rx, sink).await;
        });
        Ok((Socket { tx }, connected))
    }

    async fn open(
        &self,
        endpoint: &Endpoint,
        source: Option<IpAddr>,
        auth: &Value,
    ) -> Result<(Ws, SocketAddr)> {
        let socket = match endpoint.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(ip) = source {
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("binding {ip}"))?;
        }
        let stream = socket
            .connect(endpoint.addr)
            .await
            .with_context(|| format!("connecting to {}", endpoint.addr))?;
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        let url = format!(
            "ws://{}/socket.io/?EIO=4&transport=websocket",
            endpoint.host
        );
        let request = url.into_client_request()?;
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(self.config))
                .await
                .context("WebSocket upgrade")?;
        // Engine.IO open packet, then the Socket.IO connect with the credentials.
        let open = next_text(&mut ws).await?;
        if !open.starts_with('0') {
            bail!("expected the Engine.IO open packet, got {open:.60}");
        }
        ws.send(Message::text(format!("40{auth}"))).await?;
        let mut joined = false;
        loop {
            let text = next_text(&mut ws).await?;
            if text == "2" {
                ws.send(Message::text("3")).await?;
            } else if text.starts_with("40") {
                joined = true;
            } else if let Some(rest) = text.strip_prefix("44") {
                bail!("connection refused: {rest:.200}");
            } else if let Some((event, data)) = parse_event(&text) {
                match event.as_str() {
                    "auth-failure" => bail!("auth-failure {data:.200}"),
                    "group-chat-list" if joined => return Ok((ws, local)),
                    _ => {}
                }
            } else if text.starts_with('1') || text.starts_with("41") {
                bail!("closed by the server during the handshake");
            }
        }
    }
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(_))) | None => bail!("connection closed"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// `42["event", data, …]` → (event, data as JSON text; `null` when absent).
fn parse_event(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix("42")?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let args: Vec<&RawValue> = serde_json::from_str(rest).ok()?;
    let event: String = serde_json::from_str(args.first()?.get()).ok()?;
    Some((event, args.get(1).map_or("null", |a| a.get())))
}

/// `43<id>[data, …]` → (id, data as JSON text).
fn parse_ack(text: &str) -> Option<(u64, &str)> {
    let rest = text.strip_prefix("43")?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let id = rest[..digits].parse().ok()?;
    let args: Vec<&RawValue> = serde_json::from_str(&rest[digits..]).ok()?;
    Some((id, args.first().map_or("null", |a| a.get())))
}

struct Waiter {
    event: String,
    needle: Option<String>,
    reply: oneshot::Sender<String>,
}

async fn run(ws: &mut Ws, mut rx: mpsc::UnboundedReceiver<Command>, sink: EventSink) -> Result<()> {
    let mut next_ack: u64 = 0;
    let mut acks: Vec<(u64, AckFn)> = Vec::new();
    let mut waiters: Vec<Waiter> = Vec::new();
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    Some(Err(_)) => break,
                };
                let at = Instant::now();
                let text = text.as_str();
                if text == "2" {
                    ws.send(Message::text("3")).await?;
                } else if let Some((event, data)) = parse_event(text) {
                    if let Some(i) = waiters.iter().position(|w| {
                        w.event == event && w.needle.as_deref().is_none_or(|n| data.contains(n))
                    }) {
                        let w = waiters.swap_remove(i);
                        let _ = w.reply.send(data.to_string());
                    }
                    sink(&event, data, at);
                } else if let Some((id, data)) = parse_ack(text) {
                    if let Some(i) = acks.iter().position(|(a, _)| *a == id) {
                        let (_, f) = acks.swap_remove(i);
                        f(data, at);
                    }
                } else if text.starts_with('1') || text.starts_with("41") {
                    break;
                }
            }
            command = rx.recv() => {
                let Some(mut command) = command else { break };
                // Write everything already queued, then flush once.
                loop {
                    match command {
                        Command::Emit { packet, ack } => {
                            let packet = match ack {
                                Some(f) => {
                                    let id = next_ack;
                                    next_ack += 1;
                                    acks.push((id, f));
                                    format!("42{id}{}", &packet[2..])
                                }
                                None => packet,
                            };
                            ws.feed(Message::text(packet)).await?;
                        }
                        Command::Wait { event, needle, reply } => {
                            waiters.push(Waiter { event, needle, reply });
                        }
                        Command::Close => {
                            let _ = ws.send(Message::text("41")).await;
                            let _ = ws.close(None).await;
                            return Ok(());
                        }
                        Command::Abort => return Ok(()),
                    }
                    match rx.try_recv() {
                        Ok(c) => command = c,
                        Err(_) => break,
                    }
                }
                ws.flush().await?;
            }
        }
    }
    sink("disconnect", "null", Instant::now());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_acks_are_parsed() {
        let (e, d) = parse_event(r#"42["receive-personal-message",{"ChatId":"c"}]"#).unwrap();
        assert_eq!(e, "receive-personal-message");
        assert_eq!(d, r#"{"ChatId":"c"}"#);
        let (e, d) = parse_event(r#"4212["ping"]"#).unwrap();
        assert_eq!((e.as_str(), d), ("ping", "null"));
        assert!(parse_event("43[1]").is_none());
        let (id, d) = parse_ack(r#"4317[{"success":1}]"#).unwrap();
        assert_eq!((id, d), (17, r#"{"success":1}"#));
        assert!(parse_ack("43x[]").is_none());
    }

    #[test]
    fn packets_carry_the_event_and_its_data() {
        let p = event_packet("send-self-message", &serde_json::json!({"Content": "a\"b"}));
        assert_eq!(p, r#"42["send-self-message",{"Content":"a\"b"}]"#);
    }
}

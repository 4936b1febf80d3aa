//! A console's side of the deployed WebSocket API: open a socket with a pool token, read
//! its frames, subscribe to channels. The real-time tests and the pipeline benchmark's
//! listening sockets share these.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Error as WsError, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::Stack;

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The socket URL as the emulator serves the `live` stage, with the token in the query
/// string (where a browser can pass it).
pub fn url(stack: &Stack, token: Option<&str>) -> String {
    let endpoint = stack.env["AWS_ENDPOINT_URL"].replacen("http", "ws", 1);
    let base = format!(
        "{endpoint}/_aws/execute-api/{}/live",
        stack.output("RealtimeApiId")
    );
    match token {
        Some(t) => format!("{base}?token={t}"),
        None => base,
    }
}

/// Why a socket was not opened.
#[derive(Debug)]
pub enum Refused {
    /// The upgrade was answered with this HTTP status.
    Status(u16),
    Failed(WsError),
}

/// Opens a socket, or says why not.
pub async fn open(stack: &Stack, token: Option<&str>) -> Result<Socket, Refused> {
    match connect_async(url(stack, token)).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(Refused::Status(response.status().as_u16())),
        Err(other) => Err(Refused::Failed(other)),
    }
}

/// The next JSON frame, or `None` after `wait` or when the socket has closed.
pub async fn next(socket: &mut Socket, wait: Duration) -> Result<Option<Value>> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Ok(Some(serde_json::from_str(&text)?)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(err))) => bail!("socket failed: {err}"),
            Ok(None) | Err(_) => return Ok(None),
        }
    }
}

/// Frames until one satisfies `want` (returned, with the time it took); fails with what
/// came instead after `wait`.
pub async fn until(
    socket: &mut Socket,
    what: &str,
    wait: Duration,
    want: impl Fn(&Value) -> bool,
) -> Result<(Value, Duration)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while let Some(frame) = next(socket, wait.saturating_sub(started.elapsed())).await? {
        if want(&frame) {
            return Ok((frame, started.elapsed()));
        }
        seen.push(frame);
    }
    Err(anyhow!("{what}: not within {wait:?}; got {seen:#?}"))
}

/// Asks for `channels` and returns the answer: `subscribed`, or an `error` naming why.
pub async fn subscribe(socket: &mut Socket, channels: &[&str]) -> Result<Value> {
    socket
        .send(Message::text(
            json!({"action": "subscribe", "channels": channels}).to_string(),
        ))
        .await?;
    Ok(until(
        socket,
        "subscription answer",
        Duration::from_secs(10),
        |f| f["type"] == "subscribed" || f["type"] == "error",
    )
    .await?
    .0)
}

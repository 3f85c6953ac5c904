//! `livefire mark`: finds the running game day and sends it a mark over its page's
//! API, the same `POST /api/marks` a chat bot uses, saying `via: cli`.

use std::io::{Read, Write};
use std::time::Duration;

use crate::active::{Running, running};
use crate::live::MarkView;
use crate::marks::MarkRequest;

/// Why `livefire mark` recorded nothing.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no game day is running: start one with `livefire gameday FILE`")]
    NoGameDay,
    #[error("no game day `{run}` is running; running now: {running}")]
    NoSuchRun { run: String, running: String },
    #[error("several game days are running ({running}): pass `--run ID`")]
    Several { running: String },
    #[error("the game day at {url} did not answer ({source}): is it still running?")]
    Unreachable { url: String, source: std::io::Error },
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("the game day at {url} answered {status} with something else than a mark: {body}")]
    Garbled {
        url: String,
        status: u16,
        body: String,
    },
}

/// The game day a mark goes to: `run` if given, else the only one running.
pub fn pick(run: Option<&str>) -> Result<Running, ClientError> {
    let all = running();
    let ids = || {
        all.iter()
            .map(|r| r.run_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match run {
        Some(id) => all.iter().find(|r| r.run_id == id).cloned().ok_or_else(|| {
            if all.is_empty() {
                ClientError::NoGameDay
            } else {
                ClientError::NoSuchRun {
                    run: id.into(),
                    running: ids(),
                }
            }
        }),
        None => match all.as_slice() {
            [] => Err(ClientError::NoGameDay),
            [one] => Ok(one.clone()),
            _ => Err(ClientError::Several { running: ids() }),
        },
    }
}

/// Sends `request` to the game day `run` names (or the only one) and returns the mark
/// as the journal recorded it.
pub fn send(run: Option<&str>, request: &MarkRequest) -> Result<MarkView, ClientError> {
    post(&pick(run)?, request)
}

/// Sends `request` to the game day `game` and returns the mark as the journal recorded
/// it (`livefire serve` passes its page's marks on with this).
pub fn post(game: &Running, request: &MarkRequest) -> Result<MarkView, ClientError> {
    let body = serde_json::to_string(request).unwrap_or_default();
    let unreachable = |source| ClientError::Unreachable {
        url: game.url.clone(),
        source,
    };
    let mut stream = std::net::TcpStream::connect(game.address()).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(unreachable)?;
    write!(
        stream,
        "POST /api/marks HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        game.address(),
        body.len()
    )
    .map_err(unreachable)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(unreachable)?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if status == 201
        && let Ok(mark) = serde_json::from_value::<MarkView>(value.clone())
    {
        return Ok(mark);
    }
    match value["error"].as_str() {
        Some(message) => Err(ClientError::Refused {
            status,
            message: message.into(),
        }),
        None => Err(ClientError::Garbled {
            url: game.url.clone(),
            status,
            body: body.chars().take(200).collect(),
        }),
    }
}

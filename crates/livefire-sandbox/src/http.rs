//! `livefire sandbox http`: a small HTTP server with a health endpoint and an in-memory
//! item store that can be told to lose writes, so data-loss checks have something to
//! find without installing anything.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The server's state, shared by its connections.
#[derive(Debug, Default)]
struct State {
    served: AtomicU64,
    next_id: AtomicU64,
    items: Mutex<BTreeSet<u64>>,
    /// Acknowledge but forget every Nth created item (0: never).
    lose_every: u64,
}

/// Serves forever on `listen`: `GET /health` answers `200 ok`, `GET /count` the number
/// of requests served, `POST /items` creates an item and answers `201 {"id": N}`,
/// `GET /items/N` answers 200 if it exists and 404 if not; anything else 404. With
/// `lose_every` N > 0, every Nth created item is acknowledged and then forgotten. One
/// thread per connection, keep-alive.
pub fn serve_http(listen: &str, lose_every: u64) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {listen}: {e} (is the port in use?)"),
        )
    })?;
    let state = Arc::new(State {
        lose_every,
        ..Default::default()
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &state);
        });
    }
    Ok(())
}

fn handle(stream: TcpStream, state: &State) -> std::io::Result<()> {
    // Each answer goes out in one write; without NODELAY a second write would wait for
    // the client's delayed ACK (40 ms on Linux).
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let method = line.split_whitespace().next().unwrap_or("GET").to_owned();
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
        let n = state.served.fetch_add(1, Ordering::Relaxed) + 1;
        let item = path
            .strip_prefix("/items/")
            .and_then(|id| id.parse::<u64>().ok());
        let (status, body) = match (method.as_str(), path.as_str(), item) {
            (_, "/health", _) => ("200 OK", "ok\n".to_string()),
            (_, "/count", _) => ("200 OK", format!("{{\"served\":{n}}}\n")),
            ("POST", "/items", _) => {
                let id = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                let lost = state.lose_every > 0 && id.is_multiple_of(state.lose_every);
                if !lost {
                    state
                        .items
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id);
                }
                ("201 Created", format!("{{\"id\":{id}}}\n"))
            }
            ("GET", _, Some(id))
                if state
                    .items
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&id) =>
            {
                ("200 OK", format!("{{\"id\":{id}}}\n"))
            }
            _ => ("404 Not Found", "not found\n".to_string()),
        };
        // One buffer, one write: `write!` on the socket would send each piece of the
        // format as its own segment.
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        );
        out.write_all(answer.as_bytes())?;
    }
}

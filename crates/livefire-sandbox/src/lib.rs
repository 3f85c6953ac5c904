//! Local targets for examples and tests, so an experiment runs anywhere without
//! installing anything: `livefire sandbox http` is a small HTTP server with a health
//! endpoint. (The PostgreSQL sandbox and the demo service come later.)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Serves forever on `listen`: `GET /health` answers `200 ok`, `GET /count` the number
/// of requests served, anything else 404. One thread per connection, keep-alive.
pub fn serve_http(listen: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {listen}: {e} (is the port in use?)"),
        )
    })?;
    let served = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let served = served.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &served);
        });
    }
    Ok(())
}

fn handle(stream: TcpStream, served: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
        let n = served.fetch_add(1, Ordering::Relaxed) + 1;
        let (status, body) = match path.as_str() {
            "/health" => ("200 OK", "ok\n".to_string()),
            "/count" => ("200 OK", format!("{{\"served\":{n}}}\n")),
            _ => ("404 Not Found", "not found\n".to_string()),
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        )?;
    }
}

use std::io::Read;

//! One HTTP/1.1 message read off a socket the way a small test server or client needs
//! it: the head, then exactly Content-Length bytes, without waiting for the peer to
//! close (browsers and keep-alive clients do not).

use std::io::Read;

/// Reads one HTTP/1.1 message (a request or an answer) from `r`: its head, up to the
/// blank line, and exactly its Content-Length bytes of body (none without one).
/// `Ok(None)` when the peer closes before the message is whole.
pub fn read_message(r: &mut impl Read) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            return Ok(Some((head, buf[end + 4..end + 4 + len].to_vec())));
        }
    }
}

//! A connection's stream, shared between hyper and the listener, so that a request whose
//! headers do not arrive in time is answered **408** (hyper only closes the connection):
//! when hyper gives up on the head, the listener still holds the stream and writes the
//! answer itself. An idle keep-alive connection that times out is closed without one,
//! as browsers expect.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The stream hyper reads and writes; a clone stays with the listener.
#[derive(Debug)]
pub struct Shared<S> {
    stream: Arc<Mutex<S>>,
    /// Bytes of a request arrived since the last answer was written: a head has begun.
    begun: Arc<AtomicBool>,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            stream: self.stream.clone(),
            begun: self.begun.clone(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shared<S> {
    pub fn new(stream: S) -> Shared<S> {
        Shared {
            stream: Arc::new(Mutex::new(stream)),
            begun: Arc::new(AtomicBool::new(false)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After hyper timed out reading a head: answers 408 if a request had begun, then
    /// closes. `seconds` is the limit, for the message.
    pub async fn request_timeout(self, seconds: u64) {
        if !self.begun.load(Ordering::SeqCst) {
            return;
        }
        let body = serde_json::json!({
            "error": format!(
                "the request's headers did not arrive within {seconds}s: send the whole request at once"
            )
        })
        .to_string();
        let answer = format!(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut this = self;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let _ = this.write_all(answer.as_bytes()).await;
            let _ = this.shutdown().await;
        })
        .await;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shared<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let mut s = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let r = Pin::new(&mut *s).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.begun.store(true, Ordering::SeqCst);
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Shared<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // An answer is going out: the request it answers is over.
        self.begun.store(false, Ordering::SeqCst);
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}

//! Time limits on what a client owes us once a connection is served: the bytes of our
//! answers (`WriteStall`: a client that accepts no byte for `WRITE_STALL` is dropped, so
//! clients that pipeline requests and never read cannot hold every connection slot), and a
//! request body (`DeadlineBody`: a body not fully sent by its deadline is an error; a route
//! may move the deadline through the request's `BodyClock`).

use axum::body::{Body, Bytes, HttpBody};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a client may accept none of the bytes we are writing to it.
pub const WRITE_STALL: Duration = Duration::from_secs(10);
/// How long a request body may take to arrive, unless the route says otherwise.
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// A connection whose writes fail with `TimedOut` once the peer has accepted no byte for
/// `limit` (a write or flush pending that long); any progress restarts the clock.
pub struct WriteStall<IO> {
    io: IO,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<IO> WriteStall<IO> {
    pub fn new(io: IO, limit: Duration) -> Self {
        WriteStall {
            io,
            limit,
            stalled: None,
        }
    }

    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client accepted no bytes of the answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteStall<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteStall<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.check(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(cx, polled)
    }
}

/// The deadline of one request's body, shared by its `DeadlineBody` and the handler (a
/// request extension): a route that accepts a long upload moves it.
#[derive(Clone, Debug)]
pub struct BodyClock(Arc<Mutex<Instant>>);

impl BodyClock {
    pub fn new(deadline: Instant) -> Self {
        BodyClock(Arc::new(Mutex::new(deadline)))
    }

    /// Moves the deadline to `within` from now.
    pub fn extend(&self, within: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + within;
    }

    fn deadline(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A request body that fails once its `BodyClock` runs out while it is still arriving.
pub struct DeadlineBody {
    inner: Body,
    clock: BodyClock,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    pub fn wrap(inner: Body, clock: BodyClock) -> Body {
        Body::new(DeadlineBody {
            inner,
            clock,
            timer: None,
        })
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_ready() {
            return polled;
        }
        let deadline = this.clock.deadline();
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_nothing_fails_the_write_after_the_limit() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = WriteStall::new(ours, WRITE_STALL);
        let started = Instant::now();
        let big = vec![7u8; 4096];
        let err = ours.write_all(&big).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= WRITE_STALL);
        // A peer that keeps reading, however slowly, keeps the connection.
        let (ours, theirs2) = tokio::io::duplex(64);
        let mut ours = WriteStall::new(ours, WRITE_STALL);
        let reader = tokio::spawn(async move {
            let mut theirs2 = theirs2;
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < 4096 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                got += theirs2.read(&mut buf).await.unwrap();
            }
        });
        ours.write_all(&big).await.unwrap();
        reader.await.unwrap();
        let _ = theirs.read(&mut [0u8; 1]).await;
    }

    /// A body that sends one frame, then nothing, never ending.
    struct Trickle(bool);
    impl HttpBody for Trickle {
        type Data = Bytes;
        type Error = axum::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
            let this = self.get_mut();
            if std::mem::replace(&mut this.0, true) {
                return Poll::Pending;
            }
            Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
                b"part",
            )))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_fails_at_its_deadline_which_a_route_may_move() {
        use http_body_util::BodyExt;
        let started = Instant::now();
        let clock = BodyClock::new(started + BODY_DEADLINE);
        let wrapped = DeadlineBody::wrap(Body::new(Trickle(false)), clock.clone());
        let err = wrapped.collect().await.unwrap_err();
        assert!(err.to_string().contains("in time"), "{err}");
        assert_eq!(started.elapsed(), BODY_DEADLINE);

        let started = Instant::now();
        let clock = BodyClock::new(started + BODY_DEADLINE);
        let wrapped = DeadlineBody::wrap(Body::new(Trickle(false)), clock.clone());
        clock.extend(Duration::from_secs(300));
        let err = wrapped.collect().await.unwrap_err();
        assert!(err.to_string().contains("in time"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(300));
    }
}

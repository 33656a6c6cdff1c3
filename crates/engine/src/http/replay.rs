//! Request bodies sent upstream, and the replay buffer behind retries.
//!
//! Without a retry policy a request body is the downstream's `Incoming`, streamed as is.
//! With one, the first attempt streams it through a [`RecordingBody`] that keeps the
//! frames (reference-counted `Bytes`, not copies) up to a limit; a retry replays them if
//! the body had ended by then and stayed within the limit. A body still streaming when a
//! retry is due, or one that outgrew the limit, is not replayable.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use parking_lot::Mutex;

/// What goes upstream as a request body. The rare variants are boxed so a request is no
/// larger than with the plain `Incoming` body every request without a retry policy has.
pub(crate) enum RequestBody {
    /// The downstream body, streamed untouched.
    Incoming(Incoming),
    /// The downstream body, streamed and recorded for a retry.
    Recording(Box<RecordingBody>),
    /// A recorded body, sent again.
    Replay(Box<ReplayedBody>),
}

impl From<Incoming> for RequestBody {
    fn from(body: Incoming) -> Self {
        RequestBody::Incoming(body)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RequestBody::Incoming(body) => Pin::new(body).poll_frame(cx),
            RequestBody::Recording(body) => body.poll_frame(cx),
            RequestBody::Replay(body) => Poll::Ready(body.next_frame().map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Incoming(body) => body.is_end_stream(),
            RequestBody::Recording(body) => body.inner.is_end_stream(),
            RequestBody::Replay(body) => body.data.is_empty() && body.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Incoming(body) => body.size_hint(),
            RequestBody::Recording(body) => body.inner.size_hint(),
            RequestBody::Replay(body) => SizeHint::with_exact(body.remaining),
        }
    }
}

/// The frames of one request body, shared by the body that records them and the retry
/// logic that may replay them.
#[derive(Default)]
struct Recorded {
    data: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    bytes: u64,
    /// The body reached its end cleanly: everything is here.
    complete: bool,
    /// Too large, failed, or no longer wanted: nothing is kept any more.
    discarded: bool,
}

/// A handle on a request body's recording.
pub(crate) struct Replay {
    recorded: Arc<Mutex<Recorded>>,
}

impl Replay {
    /// A recording of `body`: returns the body to send first and the handle to replay it.
    pub(crate) fn record(body: Incoming, limit: u64) -> (RequestBody, Replay) {
        let replay = Replay {
            recorded: Arc::new(Mutex::new(Recorded::default())),
        };
        let recording = RecordingBody {
            inner: body,
            recorded: Arc::clone(&replay.recorded),
            limit,
        };
        (RequestBody::Recording(Box::new(recording)), replay)
    }

    /// The body again, if it was recorded in full by now.
    pub(crate) fn replay(&self) -> Option<ReplayedBody> {
        let recorded = self.recorded.lock();
        if !recorded.complete || recorded.discarded {
            return None;
        }
        Some(ReplayedBody {
            data: recorded.data.iter().cloned().collect(),
            trailers: recorded.trailers.clone(),
            remaining: recorded.bytes,
        })
    }

    /// No more retries will be made: stop keeping frames (the body may still be streaming
    /// to the attempt that won).
    pub(crate) fn discard(&self) {
        let mut recorded = self.recorded.lock();
        recorded.discarded = true;
        recorded.data = Vec::new();
        recorded.trailers = None;
    }
}

/// Streams the downstream body to the first attempt, keeping each frame for a replay.
pub(crate) struct RecordingBody {
    inner: Incoming,
    recorded: Arc<Mutex<Recorded>>,
    limit: u64,
}

impl RecordingBody {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let mut recorded = self.recorded.lock();
        match &polled {
            Some(Ok(frame)) => {
                if !recorded.discarded {
                    if let Some(data) = frame.data_ref() {
                        recorded.bytes += data.len() as u64;
                        if recorded.bytes > self.limit {
                            recorded.discarded = true;
                            recorded.data = Vec::new();
                        } else if !data.is_empty() {
                            recorded.data.push(data.clone());
                        }
                    } else if let Some(trailers) = frame.trailers_ref() {
                        recorded.trailers = Some(trailers.clone());
                    }
                }
                if self.inner.is_end_stream() {
                    recorded.complete = true;
                }
            }
            Some(Err(_)) => recorded.discarded = true,
            None => recorded.complete = true,
        }
        Poll::Ready(polled)
    }
}

/// A recorded body being sent again: its data frames, then its trailers.
pub(crate) struct ReplayedBody {
    data: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    remaining: u64,
}

impl ReplayedBody {
    /// An empty body (a request that had none).
    pub(crate) fn empty() -> Self {
        Self {
            data: VecDeque::new(),
            trailers: None,
            remaining: 0,
        }
    }

    fn next_frame(&mut self) -> Option<Frame<Bytes>> {
        if let Some(data) = self.data.pop_front() {
            self.remaining -= data.len() as u64;
            return Some(Frame::data(data));
        }
        self.trailers.take().map(Frame::trailers)
    }
}

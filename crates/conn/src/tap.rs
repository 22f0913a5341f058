//! Reading `COPY ... TO STDOUT` in bulk.
//!
//! tokio-postgres hands out one `Bytes` per CopyData message, and the server
//! sends one message per row: on narrow tables that handling cost the dump
//! a third of its CPU, more than compressing the rows. A [`Tapped`] stream
//! sits between the socket (or the TLS session) and tokio-postgres, follows
//! the framing of what the server sends, and while a tapped COPY runs,
//! appends the payloads of its CopyData messages to one buffer instead of
//! passing them on. The COPY goes out as one simple query, whose start and
//! end the tap also keeps back: tokio-postgres sees a command that completed
//! without rows, and still handles everything else: authentication, TLS,
//! errors, notices.
//!
//! Frontend/backend protocol facts relied on: every message the server
//! sends after the startup is a type byte and a big-endian length that
//! counts itself; the one exception is the single-byte answer to an
//! SSLRequest, which the client sends as its first message.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const SCRATCH_BYTES: usize = 64 * 1024;

/// What the tapped stream and the reader of a COPY share.
#[derive(Default)]
pub(crate) struct Sink {
    /// The next COPY OUT is to be diverted.
    armed: bool,
    /// Between the CopyOutResponse and the CopyDone (or error) of an armed COPY.
    diverting: bool,
    buf: Vec<u8>,
    /// `buf[..complete]` holds whole messages.
    complete: usize,
    /// The reader takes the buffer once this many bytes are complete; the
    /// stream stops reading the socket until it has.
    want: usize,
    reader: Option<Waker>,
    conn: Option<Waker>,
    /// The reader went away mid-COPY: the rest of its rows are dropped.
    discard: bool,
    /// The COPY was sent as a simple query: its CopyOutResponse and CopyDone
    /// are not passed on either, so tokio-postgres sees a command that
    /// completed without rows.
    hide: bool,
    /// A tapped layer follows the server's messages on this connection.
    live: bool,
    /// A reader gave up on a COPY whose messages may still be arriving: the
    /// next COPY waits for them to pass before it arms the tap.
    abandoned: bool,
}

pub(crate) type SharedSink = Arc<Mutex<Sink>>;

impl Sink {
    fn full(&self) -> bool {
        self.diverting && !self.discard && self.complete >= self.want
    }

    fn end(&mut self) {
        self.diverting = false;
        self.armed = false;
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Nothing written yet: the first message decides between the next two.
    Start,
    /// An SSLRequest went out; the next byte read is the answer to it.
    SslAnswer,
    /// Server messages, framed.
    Framed,
    /// Bytes this layer must not interpret (TLS records), or no tap at all.
    Opaque,
}

#[derive(Clone, Copy, Debug)]
enum Msg {
    Header { bytes: [u8; 5], got: usize },
    Body { left: usize, to: To },
}

/// Where a message's bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum To {
    Client,
    Sink,
    Nowhere,
}

/// A stream that diverts the rows of tapped COPYs into a [`Sink`].
pub(crate) struct Tapped<S> {
    inner: S,
    sink: Option<SharedSink>,
    mode: Mode,
    msg: Msg,
    /// Bytes read from the inner stream: `scratch[pos..len]` not yet looked at.
    scratch: Vec<u8>,
    pos: usize,
    len: usize,
    /// Bytes for tokio-postgres, not yet handed over.
    pass: Vec<u8>,
    pass_pos: usize,
}

impl<S> Tapped<S> {
    /// On the socket: interprets the bytes unless TLS is negotiated.
    pub(crate) fn socket(inner: S, sink: Option<SharedSink>) -> Self {
        let mode = if sink.is_some() {
            Mode::Start
        } else {
            Mode::Opaque
        };
        Self::new(inner, sink, mode)
    }

    /// Above TLS: the bytes are the server's messages from the start.
    pub(crate) fn above_tls(inner: S, sink: Option<SharedSink>) -> Self {
        let mode = match &sink {
            Some(s) => {
                s.lock().unwrap().live = true;
                Mode::Framed
            }
            None => Mode::Opaque,
        };
        Self::new(inner, sink, mode)
    }

    fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        if let (Mode::Framed, Some(s)) = (mode, &self.sink) {
            s.lock().unwrap().live = true;
        }
    }

    fn new(inner: S, sink: Option<SharedSink>, mode: Mode) -> Self {
        Self {
            inner,
            sink,
            mode,
            msg: Msg::Header {
                bytes: [0; 5],
                got: 0,
            },
            scratch: Vec::new(),
            pos: 0,
            len: 0,
            pass: Vec::new(),
            pass_pos: 0,
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Splits `scratch[pos..]` into bytes for tokio-postgres and diverted
    /// rows; stops early at a message boundary when the sink is full.
    fn process(&mut self, sink: &mut Sink) {
        while self.pos < self.len {
            let avail = &self.scratch[self.pos..self.len];
            match &mut self.msg {
                Msg::Header { bytes, got } => {
                    if *got == 0 && sink.full() && avail[0] == b'd' {
                        return;
                    }
                    let n = (5 - *got).min(avail.len());
                    bytes[*got..*got + n].copy_from_slice(&avail[..n]);
                    *got += n;
                    self.pos += n;
                    if *got < 5 {
                        continue;
                    }
                    let bytes = *bytes;
                    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                    let left = (len as usize).saturating_sub(4);
                    let to = destination(bytes[0], sink);
                    if to == To::Client {
                        self.pass.extend_from_slice(&bytes);
                    }
                    if to != To::Sink {
                        on_message(bytes[0], sink);
                    }
                    self.msg = Msg::Body { left, to };
                    self.end_body_if_empty(sink);
                }
                Msg::Body { left, to } => {
                    let n = (*left).min(avail.len());
                    let bytes = &avail[..n];
                    match to {
                        To::Sink if !sink.discard => sink.buf.extend_from_slice(bytes),
                        To::Client => self.pass.extend_from_slice(bytes),
                        _ => {}
                    }
                    *left -= n;
                    self.pos += n;
                    self.end_body_if_empty(sink);
                }
            }
        }
    }

    fn end_body_if_empty(&mut self, sink: &mut Sink) {
        if let Msg::Body { left: 0, to } = self.msg {
            if to == To::Sink {
                let was_full = sink.complete >= sink.want;
                sink.complete = sink.buf.len();
                if !was_full && sink.complete >= sink.want {
                    if let Some(w) = sink.reader.take() {
                        w.wake();
                    }
                }
            }
            self.msg = Msg::Header {
                bytes: [0; 5],
                got: 0,
            };
        }
    }

    /// Hands over what is waiting for tokio-postgres; false if nothing was.
    fn hand_over(&mut self, out: &mut ReadBuf<'_>) -> bool {
        let waiting = &self.pass[self.pass_pos..];
        if waiting.is_empty() {
            return false;
        }
        let n = waiting.len().min(out.remaining());
        out.put_slice(&waiting[..n]);
        self.pass_pos += n;
        if self.pass_pos == self.pass.len() {
            self.pass.clear();
            self.pass_pos = 0;
        }
        true
    }
}

fn destination(tag: u8, sink: &Sink) -> To {
    match tag {
        b'd' if sink.diverting => To::Sink,
        b'H' if sink.hide && sink.armed => To::Nowhere,
        b'c' if sink.hide && sink.diverting => To::Nowhere,
        _ => To::Client,
    }
}

/// A message that is not a diverted row: the ones that start and end a COPY.
fn on_message(tag: u8, sink: &mut Sink) {
    match tag {
        b'H' if sink.armed => {
            sink.armed = false;
            sink.diverting = true;
        }
        b'c' | b'E' if sink.diverting => sink.end(),
        _ => {}
    }
}

impl<S: AsyncRead + Unpin> Tapped<S> {
    fn poll_framed(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let shared = self.sink.clone().expect("framed mode has a sink");
        loop {
            if self.hand_over(out) {
                return Poll::Ready(Ok(()));
            }
            {
                let mut sink = shared.lock().unwrap();
                if self.pos < self.len {
                    self.process(&mut sink);
                    if !self.pass.is_empty() {
                        continue;
                    }
                    if self.pos < self.len {
                        // Full: wait for the reader to take the rows.
                        sink.conn = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            }
            match self.fill(cx) {
                Poll::Ready(Ok(0)) => {
                    shared.lock().unwrap().end();
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    shared.lock().unwrap().end();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads from the inner stream into the (consumed) scratch buffer.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; SCRATCH_BYTES];
        }
        let mut rb = ReadBuf::new(&mut self.scratch);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut rb);
        let n = rb.filled().len();
        self.pos = 0;
        self.len = n;
        match polled {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.mode {
            Mode::Framed => this.poll_framed(cx, out),
            Mode::SslAnswer => {
                // The server answers an SSLRequest with one byte and then
                // waits, so this read cannot take more than that byte.
                let before = out.filled().len();
                let polled = Pin::new(&mut this.inner).poll_read(cx, out);
                if let Some(&answer) = out.filled().get(before) {
                    this.set_mode(if answer == b'N' {
                        Mode::Framed
                    } else {
                        Mode::Opaque
                    });
                }
                polled
            }
            Mode::Start | Mode::Opaque => Pin::new(&mut this.inner).poll_read(cx, out),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.mode == Mode::Start {
            this.set_mode(if buf.starts_with(&SSL_REQUEST) {
                Mode::SslAnswer
            } else {
                Mode::Framed
            });
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Runs COPY TO STDOUT on a connection from [`crate::connect_for_copy_out`].
///
/// The tap sees the connection's messages, not which request they answer:
/// use it only with the `Client` it came with, and run nothing else on that
/// client while a [`CopyOut`] is alive.
pub struct CopyReader {
    sink: SharedSink,
}

impl CopyReader {
    pub(crate) fn new(sink: SharedSink) -> Self {
        Self { sink }
    }

    /// Starts `sql` (a `COPY ... TO STDOUT`); its output comes from
    /// [`CopyOut::next`] in pieces of whole CopyData messages of at least
    /// `piece` bytes, but the last.
    pub async fn copy_out<'a>(
        &self,
        client: &'a tokio_postgres::Client,
        sql: &str,
        piece: usize,
    ) -> Result<CopyOut<'a>, tokio_postgres::Error> {
        let abandoned = std::mem::take(&mut self.sink.lock().unwrap().abandoned);
        if abandoned {
            // Its ReadyForQuery comes after everything the old COPY sends.
            client.batch_execute("").await?;
        }
        let hide = {
            let mut s = self.sink.lock().unwrap();
            s.armed = true;
            s.diverting = false;
            s.discard = false;
            s.want = piece.max(1);
            s.buf.clear();
            let capacity = s.want + (s.want >> 2);
            s.buf.reserve(capacity);
            s.complete = 0;
            // As a simple query the COPY costs one round trip, not two (no
            // Parse/Describe first), which counts with thousands of tables.
            // Not with a `;` anywhere (a quoted name, an extension's filter):
            // the simple protocol would run whatever follows it.
            s.hide = s.live && !sql.contains(';');
            s.hide
        };
        let run = if hide {
            let sql = sql.to_string();
            Run::Query(Box::pin(async move { client.batch_execute(&sql).await }))
        } else {
            match client.copy_out(sql).await {
                Ok(stream) => Run::Stream(Box::pin(stream)),
                Err(e) => {
                    self.sink.lock().unwrap().end();
                    return Err(e);
                }
            }
        };
        Ok(CopyOut {
            sink: self.sink.clone(),
            run,
            done: false,
            direct: Vec::new(),
            direct_seen: false,
            piece: piece.max(1),
        })
    }
}

/// The output of one COPY TO STDOUT.
pub struct CopyOut<'a> {
    sink: SharedSink,
    run: Run<'a>,
    /// The server has finished the COPY (and sent every row).
    done: bool,
    /// Rows that reached tokio-postgres after all, when no tapped layer
    /// follows this connection's messages.
    direct: Vec<u8>,
    direct_seen: bool,
    piece: usize,
}

enum Run<'a> {
    /// Sent as a simple query, its rows diverted and the COPY hidden.
    Query(Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a>>),
    /// Through tokio-postgres's COPY stream.
    Stream(Pin<Box<tokio_postgres::CopyOutStream>>),
}

impl CopyOut<'_> {
    /// The next piece of output, or `None` once the COPY has ended well.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
        futures::future::poll_fn(|cx| self.poll_piece(cx)).await
    }

    /// False if rows came through tokio-postgres one message at a time
    /// (correct, only slower): no tapped layer followed the connection.
    pub fn tapped(&self) -> bool {
        !self.direct_seen
    }

    fn poll_piece(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Vec<u8>>, tokio_postgres::Error>> {
        use futures::Stream;
        while !self.done {
            let polled = match &mut self.run {
                Run::Query(query) => query.as_mut().poll(cx).map(|r| r.err().map(Err)),
                Run::Stream(stream) => stream.as_mut().poll_next(cx),
            };
            match polled {
                Poll::Ready(Some(Ok(rows))) => {
                    self.direct_seen = true;
                    self.direct.extend_from_slice(&rows);
                    if self.direct.len() >= self.piece {
                        return Poll::Ready(Ok(Some(std::mem::take(&mut self.direct))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let mut sink = self.sink.lock().unwrap();
                    sink.end();
                    sink.buf.clear();
                    sink.complete = 0;
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => self.done = true,
                Poll::Pending => break,
            }
        }
        let mut sink = self.sink.lock().unwrap();
        if self.done {
            // tokio-postgres saw the end of the command, which the server
            // sends after the last row: every row is in the buffer by now.
            let mut rows = std::mem::take(&mut sink.buf);
            sink.complete = 0;
            if rows.is_empty() {
                rows = std::mem::take(&mut self.direct);
            }
            debug_assert!(self.direct.is_empty(), "rows came both tapped and direct");
            return Poll::Ready(Ok((!rows.is_empty()).then_some(rows)));
        }
        if sink.complete >= sink.want {
            let rows = take_complete(&mut sink);
            if let Some(w) = sink.conn.take() {
                w.wake();
            }
            return Poll::Ready(Ok(Some(rows)));
        }
        sink.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for CopyOut<'_> {
    /// A reader that stops early must not leave the connection waiting for
    /// it to take rows: whatever else comes of this COPY is dropped.
    fn drop(&mut self) {
        let mut sink = self.sink.lock().unwrap();
        sink.armed = false;
        if !self.done {
            sink.abandoned = true;
        }
        if sink.diverting {
            sink.discard = true;
            sink.buf = Vec::new();
            sink.complete = 0;
            if let Some(w) = sink.conn.take() {
                w.wake();
            }
        }
    }
}

fn take_complete(sink: &mut Sink) -> Vec<u8> {
    let mut next = Vec::with_capacity(sink.want + (sink.want >> 2));
    next.extend_from_slice(&sink.buf[sink.complete..]);
    sink.buf.truncate(sink.complete);
    sink.complete = 0;
    std::mem::replace(&mut sink.buf, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(tap: &mut Tapped<()>, bytes: &[u8]) {
        tap.scratch = bytes.to_vec();
        tap.pos = 0;
        tap.len = bytes.len();
    }

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// Feeds `input` to a framed tap in reads of `step` bytes; returns what
    /// tokio-postgres would see and what was diverted.
    fn run(input: &[u8], step: usize, armed: bool) -> (Vec<u8>, Vec<u8>) {
        run_hiding(input, step, armed, false)
    }

    fn run_hiding(input: &[u8], step: usize, armed: bool, hide: bool) -> (Vec<u8>, Vec<u8>) {
        let sink: SharedSink = Arc::default();
        {
            let mut s = sink.lock().unwrap();
            s.armed = armed;
            s.hide = hide;
            s.want = usize::MAX;
        }
        let mut tap = Tapped::above_tls((), Some(sink.clone()));
        let mut seen = Vec::new();
        for piece in input.chunks(step) {
            feed(&mut tap, piece);
            tap.process(&mut sink.lock().unwrap());
            seen.extend_from_slice(&tap.pass);
            tap.pass.clear();
        }
        let diverted = std::mem::take(&mut sink.lock().unwrap().buf);
        (seen, diverted)
    }

    fn copy_exchange(rows: &[&[u8]]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let start = [
            message(b'1', b""),
            message(b'2', b""),
            message(b'H', &[0, 0, 0]),
        ]
        .concat();
        let end = [
            message(b'c', b""),
            message(b'C', b"COPY 2\0"),
            message(b'Z', b"I"),
        ]
        .concat();
        let data: Vec<u8> = rows.iter().flat_map(|r| message(b'd', r)).collect();
        (start, data, end)
    }

    #[test]
    fn rows_of_an_armed_copy_are_diverted_at_any_read_size() {
        let rows: [&[u8]; 3] = [b"1\ta\n", b"", b"22\tlonger row with \\t escapes\n"];
        let (start, data, end) = copy_exchange(&rows);
        let input = [start.clone(), data, end.clone(), message(b'd', b"after")].concat();
        for step in [1, 2, 3, 5, 7, 64, input.len()] {
            let (seen, diverted) = run(&input, step, true);
            assert_eq!(diverted, rows.concat(), "step {step}");
            assert_eq!(
                seen,
                [start.clone(), end.clone(), message(b'd', b"after")].concat(),
                "step {step}: every other message passes, CopyData after CopyDone too"
            );
        }
    }

    #[test]
    fn a_hidden_copy_shows_tokio_postgres_only_its_completion() {
        let rows: [&[u8]; 2] = [b"1\ta\n", b"2\tb\n"];
        let (start, data, end) = copy_exchange(&rows);
        let input = [start, data, end].concat();
        for step in [1, 4, 9, input.len()] {
            let (seen, diverted) = run_hiding(&input, step, true, true);
            assert_eq!(diverted, rows.concat(), "step {step}");
            assert_eq!(
                seen,
                [
                    message(b'1', b""),
                    message(b'2', b""),
                    message(b'C', b"COPY 2\0"),
                    message(b'Z', b"I")
                ]
                .concat(),
                "step {step}: no CopyOutResponse, no CopyDone"
            );
        }
    }

    #[test]
    fn nothing_is_diverted_unless_armed() {
        let (start, data, end) = copy_exchange(&[b"x\n"]);
        let input = [start, data, end].concat();
        let (seen, diverted) = run(&input, 3, false);
        assert_eq!(seen, input);
        assert!(diverted.is_empty());
    }

    #[test]
    fn an_error_ends_the_diversion_and_reaches_the_client() {
        let (start, data, _) = copy_exchange(&[b"x\n"]);
        let error = message(b'E', b"SERROR\0");
        let input = [start.clone(), data, error.clone(), message(b'd', b"y")].concat();
        let (seen, diverted) = run(&input, 4, true);
        assert_eq!(diverted, b"x\n");
        assert_eq!(seen, [start, error, message(b'd', b"y")].concat());
    }

    #[test]
    fn a_full_sink_stops_before_the_next_row_and_whole_rows_are_taken() {
        let sink: SharedSink = Arc::default();
        let (start, data, _) = copy_exchange(&[b"aaaa\n", b"bbbb\n", b"cc"]);
        let mut tap = Tapped::above_tls((), Some(sink.clone()));
        {
            let mut s = sink.lock().unwrap();
            s.armed = true;
            s.want = 4;
        }
        feed(&mut tap, &[start, data].concat());
        tap.process(&mut sink.lock().unwrap());
        let mut s = sink.lock().unwrap();
        assert_eq!(s.buf, b"aaaa\n", "stopped after the first row filled it");
        assert_eq!(tap.scratch[tap.pos], b'd');
        assert_eq!(take_complete(&mut s), b"aaaa\n");
        assert!(s.buf.is_empty());
    }

    #[test]
    fn the_first_write_decides_whether_an_ssl_answer_comes() {
        let sink: SharedSink = Arc::default();
        let mut t = Tapped::socket(Vec::<u8>::new(), Some(sink));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let _ = Pin::new(&mut t).poll_write(&mut cx, &SSL_REQUEST);
        assert_eq!(t.mode, Mode::SslAnswer);
        let mut plain = Tapped::socket(Vec::<u8>::new(), Some(Arc::default()));
        let _ = Pin::new(&mut plain).poll_write(&mut cx, &[0, 0, 0, 9, 0, 3, 0, 0, 0]);
        assert_eq!(plain.mode, Mode::Framed);
    }
}

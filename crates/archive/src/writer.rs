//! One-pass archive writer: producers queue chunks, a pool of threads
//! compresses, encrypts and hashes them, one thread owns the sink and writes
//! blocks in the order they were submitted.

use crate::crypto::{random_bytes, BlockCipher, Key, TAG_LEN};
use crate::error::ArchiveError;
use crate::layout::{
    self, BlockHeader, FileHeader, Footer, BLOCK_FLAG_ENCRYPTED, BLOCK_FLAG_ZSTD, BLOCK_HEADER_LEN,
    FOOTER_LEN, HEADER_FLAG_ENCRYPTED, MAX_CHUNK_BYTES, MAX_SECTION_BYTES,
};
use crate::model::{ArchiveMeta, BlockKind, BlockRef, TableStats, TocEntry, Trailer};
use crate::stats::{check_text_rows, table_stats, text_entries, ChunkSeen};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// zstd level of every block.
    pub level: i32,
    /// Compression (and encryption) threads.
    pub threads: usize,
    /// Chunks that may wait for a compression thread; with `threads` this bounds memory.
    pub queue_depth: usize,
    /// Encrypt the archive with this key (docs/FORMAT.md §10). With a
    /// passphrase, `ArchiveWriter::new` spends about 0.3 s in Argon2id.
    pub encryption: Option<Key>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        WriterOptions {
            level: 1,
            threads,
            queue_depth: 2 * threads,
            encryption: None,
        }
    }
}

enum Job {
    Chunk { block: BlockSpec, data: Vec<u8> },
    Stop,
}

/// What a block's header says besides its lengths and flags.
#[derive(Debug, Clone, Copy)]
struct BlockSpec {
    kind: BlockKind,
    entry_id: u32,
    seq: u32,
    rows: u64,
    /// Nonce counter, unique in the archive (used only when encrypting).
    counter: u64,
}

impl BlockSpec {
    fn section(kind: BlockKind, counter: u64) -> Self {
        BlockSpec {
            kind,
            entry_id: 0,
            seq: 0,
            rows: 0,
            counter,
        }
    }
}

/// Nonce counters of META and TOC; DATA blocks and the TRAILER count on from here.
const META_COUNTER: u64 = 0;
const TOC_COUNTER: u64 = 1;

/// A compressed, hashed block ready to be written.
struct Sealed {
    /// Submission order of a data chunk (its nonce counter).
    counter: u64,
    header: BlockHeader,
    header_bytes: [u8; BLOCK_HEADER_LEN],
    payload: Vec<u8>,
}

/// State shared by the writer and every [`ChunkSender`].
struct Shared {
    jobs: flume::Sender<Job>,
    /// Entries that may carry data (TOC entries with a COPY spec).
    data_entries: HashSet<u32>,
    /// Of those, the ones in COPY text format, whose row counts are checked.
    text_entries: HashSet<u32>,
    next_seq: Mutex<HashMap<u32, u32>>,
    /// Next nonce counter, taken by each chunk as it is queued.
    next_counter: AtomicU64,
    closed: AtomicBool,
    failed: AtomicBool,
    /// Sends between their `closed` check and their enqueue; `finish` waits for 0.
    sending: AtomicUsize,
    /// The first error of a compression thread, returned by `finish`.
    error: Mutex<Option<ArchiveError>>,
}

/// A send in progress, counted so `finish` waits for it. A chunk that got a
/// sequence number but never reached the queue (an async send dropped midway)
/// would leave a gap no reader accepts, so that stops the writer.
struct SendGuard<'a> {
    shared: &'a Shared,
    chunk: Option<BlockSpec>,
    queued: bool,
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        if let (Some(BlockSpec { entry_id, seq, .. }), false) = (self.chunk, self.queued) {
            self.shared.fail(ArchiveError::Usage(format!(
                "chunk {seq} of entry {entry_id} was numbered but never queued (send cancelled)"
            )));
        }
        self.shared.sending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn begin(&self, entry_id: u32, rows: u64, data: &[u8]) -> Result<SendGuard<'_>, ArchiveError> {
        self.sending.fetch_add(1, Ordering::SeqCst);
        let mut guard = SendGuard {
            shared: self,
            chunk: None,
            queued: false,
        };
        if self.closed.load(Ordering::SeqCst) || self.failed.load(Ordering::SeqCst) {
            return Err(ArchiveError::WriterClosed);
        }
        if !self.data_entries.contains(&entry_id) {
            return Err(ArchiveError::Usage(format!(
                "entry {entry_id} is not a TOC entry with a COPY spec"
            )));
        }
        if data.len() > MAX_CHUNK_BYTES {
            return Err(ArchiveError::Usage(format!(
                "chunk of {} bytes exceeds the limit of {MAX_CHUNK_BYTES}",
                data.len()
            )));
        }
        let mut seqs = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
        let next = seqs.entry(entry_id).or_insert(0);
        let seq = *next;
        *next = seq
            .checked_add(1)
            .ok_or_else(|| ArchiveError::Usage(format!("entry {entry_id} has too many chunks")))?;
        guard.chunk = Some(BlockSpec {
            kind: BlockKind::Data,
            entry_id,
            seq,
            rows,
            counter: self.next_counter.fetch_add(1, Ordering::SeqCst),
        });
        Ok(guard)
    }

    /// Stops the writer: senders fail from now on, `finish` returns `error`
    /// (the first one recorded).
    fn fail(&self, error: ArchiveError) {
        self.failed.store(true, Ordering::SeqCst);
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(error);
    }
}

/// A cloneable handle for producers (one per COPY worker).
#[derive(Clone)]
pub struct ChunkSender {
    shared: Arc<Shared>,
}

impl ChunkSender {
    /// Queues whole rows of entry `entry_id`'s COPY stream. Sequence numbers
    /// are assigned per entry in submission order. Blocks while the queue is
    /// full. Fails once the writer has failed (producers must stop then).
    pub fn send(&self, entry_id: u32, rows: u64, data: Vec<u8>) -> Result<(), ArchiveError> {
        let mut guard = self.shared.begin(entry_id, rows, &data)?;
        let job = job(&guard, data);
        self.shared
            .jobs
            .send(job)
            .map_err(|_| ArchiveError::WriterClosed)?;
        guard.queued = true;
        Ok(())
    }

    /// [`ChunkSender::send`] without blocking a thread; works on any async runtime.
    pub async fn send_async(
        &self,
        entry_id: u32,
        rows: u64,
        data: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let mut guard = self.shared.begin(entry_id, rows, &data)?;
        let job = job(&guard, data);
        self.shared
            .jobs
            .send_async(job)
            .await
            .map_err(|_| ArchiveError::WriterClosed)?;
        guard.queued = true;
        Ok(())
    }
}

fn job(guard: &SendGuard<'_>, data: Vec<u8>) -> Job {
    Job::Chunk {
        block: guard.chunk.expect("begin numbers the chunk"),
        data,
    }
}

/// What the sink thread hands back when all blocks are written.
struct Written<W: Write> {
    out: CountingWriter<W>,
    index: Vec<BlockRef>,
    chunks: HashMap<u32, Vec<ChunkSeen>>,
}

struct CountingWriter<W: Write> {
    inner: BufWriter<W>,
    offset: u64,
}

impl<W: Write> CountingWriter<W> {
    fn write_block(&mut self, block: &Sealed) -> Result<BlockRef, ArchiveError> {
        let at = self.offset;
        let h = &block.header;
        self.write(&block.header_bytes, || {
            format!("{} at offset {at}", h.region())
        })?;
        self.write(&block.payload, || format!("{} at offset {at}", h.region()))?;
        Ok(BlockRef {
            offset: at,
            kind: h.kind,
            entry_id: h.entry_id,
            seq: h.seq,
            rows: h.rows,
            raw_len: h.raw_len,
            stored_len: h.stored_len,
        })
    }

    fn write(&mut self, bytes: &[u8], what: impl Fn() -> String) -> Result<(), ArchiveError> {
        self.inner
            .write_all(bytes)
            .map_err(|e| ArchiveError::io(format!("writing {} of the archive", what()), e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

pub struct ArchiveWriter<W: Write + Send + 'static> {
    shared: Arc<Shared>,
    archive_id: [u8; 16],
    cipher: Option<Arc<BlockCipher>>,
    level: i32,
    toc_data_entries: Vec<u32>,
    compressors: Vec<JoinHandle<()>>,
    sink: Option<JoinHandle<Result<Written<W>, ArchiveError>>>,
}

impl<W: Write + Send + 'static> ArchiveWriter<W> {
    /// Writes the file header, the KEY block when encrypting, the META and
    /// TOC blocks, and starts the worker threads.
    pub fn new(
        out: W,
        meta: &ArchiveMeta,
        toc: &[TocEntry],
        opts: WriterOptions,
    ) -> Result<Self, ArchiveError> {
        let mut ids = HashSet::new();
        if let Some(dup) = toc.iter().find(|e| !ids.insert(e.id)) {
            return Err(ArchiveError::Usage(format!(
                "TOC entry id {} is used twice",
                dup.id
            )));
        }
        // Random, so that a key file used for many archives still gives each
        // its own block key (FORMAT.md §10.2).
        let archive_id = random_bytes::<16>()?;
        let (key_block, cipher) = match &opts.encryption {
            Some(key) => {
                let (json, cipher) = key.seal_archive(&archive_id)?;
                (Some(json), Some(Arc::new(cipher)))
            }
            None => (None, None),
        };
        let mut out = CountingWriter {
            inner: BufWriter::with_capacity(1 << 20, out),
            offset: 0,
        };
        let header = FileHeader {
            major: layout::FORMAT_MAJOR,
            minor: layout::FORMAT_MINOR,
            flags: if cipher.is_some() {
                HEADER_FLAG_ENCRYPTED
            } else {
                0
            },
            archive_id,
        };
        out.write(&header.encode(), || "the file header".into())?;
        if let Some(json) = key_block {
            // Not part of the index, which lists the blocks from META on.
            out.write_block(&seal_key_block(json, &archive_id))?;
        }
        let mut index = Vec::new();
        for (spec, section) in [
            (
                BlockSpec::section(BlockKind::Meta, META_COUNTER),
                json(meta, "META")?,
            ),
            (
                BlockSpec::section(BlockKind::Toc, TOC_COUNTER),
                json(&toc, "TOC")?,
            ),
        ] {
            let mut compressor = new_compressor(opts.level)?;
            let block = seal(
                &mut compressor,
                cipher.as_deref(),
                spec,
                &section,
                &archive_id,
            )?;
            index.push(out.write_block(&block)?);
        }
        // A sink that cannot take the first bytes (broken pipe, no space) fails here.
        out.inner
            .flush()
            .map_err(|e| ArchiveError::io("writing the start of the archive", e))?;

        let threads = opts.threads.max(1);
        let depth = opts.queue_depth.max(1);
        let (jobs_tx, jobs_rx) = flume::bounded::<Job>(depth);
        let (sealed_tx, sealed_rx) = flume::bounded::<Sealed>(depth);
        let data_entries: HashSet<u32> = toc
            .iter()
            .filter(|e| e.copy.is_some())
            .map(|e| e.id)
            .collect();
        let shared = Arc::new(Shared {
            jobs: jobs_tx,
            data_entries,
            text_entries: text_entries(toc),
            next_seq: Mutex::new(HashMap::new()),
            next_counter: AtomicU64::new(TOC_COUNTER + 1),
            closed: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            sending: AtomicUsize::new(0),
            error: Mutex::new(None),
        });
        let mut writer = ArchiveWriter {
            shared,
            archive_id,
            cipher: cipher.clone(),
            level: opts.level,
            toc_data_entries: toc
                .iter()
                .filter(|e| e.copy.is_some())
                .map(|e| e.id)
                .collect(),
            compressors: Vec::with_capacity(threads),
            sink: None,
        };
        // On an error below, dropping `writer` stops the threads already started.
        for i in 0..threads {
            let (rx, tx, level) = (jobs_rx.clone(), sealed_tx.clone(), opts.level);
            let shared = Arc::clone(&writer.shared);
            let cipher = cipher.clone();
            let handle = std::thread::Builder::new()
                .name(format!("pgark-zstd-{i}"))
                .spawn(move || {
                    let cipher = cipher.as_deref();
                    if let Err(e) = compress_loop(rx, tx, archive_id, cipher, level, &shared) {
                        shared.fail(e);
                    }
                })
                .map_err(|e| ArchiveError::io("starting a compression thread", e))?;
            writer.compressors.push(handle);
        }
        drop(sealed_tx);
        let sink_shared = Arc::clone(&writer.shared);
        let sink = std::thread::Builder::new()
            .name("pgark-sink".into())
            .spawn(move || sink_loop(out, index, sealed_rx, &sink_shared))
            .map_err(|e| ArchiveError::io("starting the archive writer thread", e))?;
        writer.sink = Some(sink);
        Ok(writer)
    }

    pub fn chunk_sender(&self) -> ChunkSender {
        ChunkSender {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits for queued chunks, writes the TRAILER (with these row digests
    /// keyed by entry id) and the footer, flushes; returns the sink and trailer.
    pub fn finish(
        mut self,
        finished_at: chrono::DateTime<chrono::Utc>,
        mut row_digests: BTreeMap<u32, String>,
    ) -> Result<(W, Trailer), ArchiveError> {
        self.stop_workers();
        let sink = self.sink.take().expect("finish runs once");
        let written = sink
            .join()
            .map_err(|_| ArchiveError::Usage("the archive writer thread panicked".into()))??;
        if let Some(e) = self
            .shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        let Written {
            mut out,
            index,
            mut chunks,
        } = written;
        let tables: Vec<TableStats> = self
            .toc_data_entries
            .iter()
            .map(|&id| {
                let mut stats = table_stats(id, chunks.remove(&id).unwrap_or_default());
                stats.row_digest = row_digests.remove(&id);
                stats
            })
            .collect();
        let trailer = Trailer {
            finished_at: Some(finished_at),
            tables,
            index,
        };
        let trailer_offset = out.offset;
        let counter = self.shared.next_counter.fetch_add(1, Ordering::SeqCst);
        let block = seal(
            &mut new_compressor(self.level)?,
            self.cipher.as_deref(),
            BlockSpec::section(BlockKind::Trailer, counter),
            &json(&trailer, "trailer")?,
            &self.archive_id,
        )?;
        out.write_block(&block)?;
        let footer = Footer {
            trailer_offset,
            total_len: out.offset + FOOTER_LEN as u64,
        };
        out.write(&footer.encode(), || "the footer".into())?;
        let mut inner = out
            .inner
            .into_inner()
            .map_err(|e| ArchiveError::io("flushing the archive", e.into_error()))?;
        // The sink may buffer too (a BufWriter, a socket wrapper).
        inner
            .flush()
            .map_err(|e| ArchiveError::io("flushing the archive", e))?;
        Ok((inner, trailer))
    }

    /// Lets queued chunks drain, then stops the compression threads.
    fn stop_workers(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        while self.shared.sending.load(Ordering::SeqCst) != 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        for _ in 0..self.compressors.len() {
            // An error means every compressor is gone already.
            let _ = self.shared.jobs.send(Job::Stop);
        }
        for handle in self.compressors.drain(..) {
            let _ = handle.join();
        }
    }
}

impl<W: Write + Send + 'static> Drop for ArchiveWriter<W> {
    /// An unfinished archive has no trailer or footer, which every reader
    /// detects. After `finish` this does nothing.
    fn drop(&mut self) {
        self.stop_workers();
        if let Some(sink) = self.sink.take() {
            // Drops the output once the queued blocks are written.
            let _ = sink.join();
        }
    }
}

fn json<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>, ArchiveError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| ArchiveError::Usage(format!("cannot serialize the {what}: {e}")))?;
    if bytes.len() > MAX_SECTION_BYTES {
        return Err(ArchiveError::Usage(format!(
            "the {what} is {} bytes of JSON, over the limit of {MAX_SECTION_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The KEY block: clear JSON, neither compressed nor encrypted.
fn seal_key_block(json: Vec<u8>, archive_id: &[u8; 16]) -> Sealed {
    let len = json.len() as u32;
    let mut header = BlockHeader {
        kind: BlockKind::Key,
        flags: 0,
        entry_id: 0,
        seq: 0,
        raw_len: len,
        stored_len: len,
        rows: 0,
        nonce: [0; 12],
        hash: [0; 32],
    };
    let header_bytes = header.seal(archive_id, &json);
    Sealed {
        counter: 0,
        header,
        header_bytes,
        payload: json,
    }
}

fn new_compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>, ArchiveError> {
    let mut c = zstd::bulk::Compressor::new(level)
        .map_err(|e| ArchiveError::io(format!("creating a zstd level {level} compressor"), e))?;
    c.include_checksum(true)
        .and_then(|_| c.include_contentsize(true))
        .map_err(|e| ArchiveError::io("configuring zstd", e))?;
    Ok(c)
}

/// Compresses (or stores, when compression would not shrink it), encrypts
/// when the archive is encrypted, and hashes a payload.
fn seal(
    compressor: &mut zstd::bulk::Compressor<'static>,
    cipher: Option<&BlockCipher>,
    spec: BlockSpec,
    raw: &[u8],
    archive_id: &[u8; 16],
) -> Result<Sealed, ArchiveError> {
    let compressed = compressor
        .compress(raw)
        .map_err(|e| ArchiveError::io("compressing a block", e))?;
    let (flags, mut payload) = if compressed.len() < raw.len() {
        (BLOCK_FLAG_ZSTD, compressed)
    } else {
        let mut stored = Vec::with_capacity(raw.len() + TAG_LEN);
        stored.extend_from_slice(raw);
        (0, stored)
    };
    let mut header = BlockHeader {
        kind: spec.kind,
        flags,
        entry_id: spec.entry_id,
        seq: spec.seq,
        raw_len: raw.len() as u32,
        stored_len: payload.len() as u32,
        rows: spec.rows,
        nonce: [0; 12],
        hash: [0; 32],
    };
    if let Some(cipher) = cipher {
        header.flags |= BLOCK_FLAG_ENCRYPTED;
        header.stored_len += TAG_LEN as u32;
        header.nonce = layout::nonce(spec.counter);
        cipher.seal(&header, &mut payload)?;
    }
    let header_bytes = header.seal(archive_id, &payload);
    Ok(Sealed {
        counter: spec.counter,
        header,
        header_bytes,
        payload,
    })
}

fn compress_loop(
    jobs: flume::Receiver<Job>,
    sealed: flume::Sender<Sealed>,
    archive_id: [u8; 16],
    cipher: Option<&BlockCipher>,
    level: i32,
    shared: &Shared,
) -> Result<(), ArchiveError> {
    let mut compressor = new_compressor(level)?;
    while let Ok(Job::Chunk { block, data }) = jobs.recv() {
        // Checked here, off the producers' threads; a wrong count stops the
        // writer rather than putting a false row count into the archive.
        if shared.text_entries.contains(&block.entry_id) {
            check_text_rows(&data, block.rows).map_err(|detail| {
                ArchiveError::Usage(format!(
                    "chunk {} of entry {} {detail}",
                    block.seq, block.entry_id
                ))
            })?;
        }
        let block = seal(&mut compressor, cipher, block, &data, &archive_id)?;
        if sealed.send(block).is_err() {
            // The sink failed; it reports its own error.
            return Ok(());
        }
    }
    Ok(())
}

fn sink_loop<W: Write>(
    mut out: CountingWriter<W>,
    mut index: Vec<BlockRef>,
    sealed: flume::Receiver<Sealed>,
    shared: &Shared,
) -> Result<Written<W>, ArchiveError> {
    let mut chunks: HashMap<u32, Vec<ChunkSeen>> = HashMap::new();
    // Blocks are written in submission order, whichever compressor finishes
    // first: the archive's order is the producers' (critical tables first,
    // contiguous) and the same dump gives the same layout. A block that
    // overtook a slower one waits here; only a few can.
    let mut early: BTreeMap<u64, Sealed> = BTreeMap::new();
    let mut next = TOC_COUNTER + 1;
    for arrived in sealed.iter() {
        early.insert(arrived.counter, arrived);
        while let Some(block) = early.remove(&next) {
            next += 1;
            let (entry, seen, block_ref) = match write_chunk(&mut out, &block) {
                Ok(r) => r,
                Err(e) => {
                    // Senders fail promptly; compressors stop when this receiver drops.
                    shared.failed.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            chunks.entry(entry).or_default().push(seen);
            index.push(block_ref);
        }
    }
    Ok(Written { out, index, chunks })
}

fn write_chunk<W: Write>(
    out: &mut CountingWriter<W>,
    block: &Sealed,
) -> Result<(u32, ChunkSeen, BlockRef), ArchiveError> {
    let block_ref = out.write_block(block)?;
    let seen = ChunkSeen {
        seq: block.header.seq,
        rows: block.header.rows,
        raw_len: block.header.raw_len,
        stored_len: block.header.stored_len,
        hash: block.header.hash,
    };
    Ok((block.header.entry_id, seen, block_ref))
}

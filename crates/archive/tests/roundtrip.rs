mod common;

use common::*;
use pgark_archive::*;
use std::collections::BTreeMap;
use std::io::{Cursor, Write};

/// Three data entries, one without any chunk, chunks interleaved.
fn sample() -> (Vec<TocEntry>, Vec<Chunk>) {
    let chunks = vec![
        chunk(10, 100, 1),
        chunk(11, 50, 2),
        chunk(10, 300, 3),
        chunk(11, 1, 4),
        chunk(10, 0, 5),
    ];
    (toc(3), chunks)
}

#[test]
fn sequential_round_trip_returns_every_chunk_and_checked_trailer() {
    let (toc, chunks) = sample();
    let (bytes, written) = write_archive(&toc, &chunks, options(2, 4));
    let mut reader = ArchiveReader::open(&bytes[..]).unwrap();
    assert_eq!(reader.meta(), &meta());
    assert_eq!(reader.toc(), &toc[..]);
    assert_eq!(reader.format_version(), (FORMAT_MAJOR, FORMAT_MINOR));
    let mut count = 0;
    while let Some(c) = reader.next_chunk().unwrap() {
        assert_eq!(c.decompress().unwrap().len(), c.raw_len as usize);
        count += 1;
    }
    assert_eq!(count, chunks.len());
    assert_eq!(reader.trailer(), Some(&written));
    assert_eq!(reader.position(), bytes.len() as u64);
    // Ok(None) again, not an error, after the end.
    assert!(reader.next_chunk().unwrap().is_none());
    assert_eq!(read_sequential(&bytes).unwrap(), expected(&chunks));
}

#[test]
fn trailer_has_exact_stats_for_every_data_entry() {
    let (toc, chunks) = sample();
    let (_, trailer) = write_archive(&toc, &chunks, options(2, 4));
    assert_eq!(trailer.finished_at, Some(finished_at()));
    let stats: BTreeMap<u32, &TableStats> =
        trailer.tables.iter().map(|t| (t.entry_id, t)).collect();
    assert_eq!(stats.keys().copied().collect::<Vec<_>>(), vec![10, 11, 12]);
    assert_eq!((stats[&10].rows, stats[&10].chunks), (400, 3));
    assert_eq!((stats[&11].rows, stats[&11].chunks), (51, 2));
    assert_eq!(
        (stats[&12].rows, stats[&12].chunks, stats[&12].raw_bytes),
        (0, 0, 0)
    );
    let raw10: u64 = chunks
        .iter()
        .filter(|c| c.entry_id == 10)
        .map(|c| c.data.len() as u64)
        .sum();
    assert_eq!(stats[&10].raw_bytes, raw10);
    assert!(stats[&10].stored_bytes < raw10);
    assert_eq!(stats[&11].row_digest.as_deref(), Some("digest-11"));
    assert_eq!(stats[&10].sha256.len(), 64);
    assert_ne!(stats[&10].sha256, stats[&11].sha256);
    // Index: META, TOC, then the five chunks.
    assert_eq!(trailer.index.len(), 2 + chunks.len());
}

#[test]
fn indexed_round_trip_reads_one_table_directly() {
    let (toc, chunks) = sample();
    let (bytes, written) = write_archive(&toc, &chunks, options(1, 1));
    assert_eq!(read_indexed(&bytes).unwrap(), expected(&chunks));

    let archive = IndexedArchive::open(Cursor::new(&bytes)).unwrap();
    assert_eq!(archive.trailer(), &written);
    assert_eq!(archive.meta(), &meta());
    let refs = archive.chunks_of(11);
    assert_eq!(refs.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 1]);
    // A second handle, as a restore worker would have.
    let mut other = Cursor::new(bytes.clone());
    let c = archive.read_chunk_from(&mut other, &refs[1]).unwrap();
    assert_eq!((c.entry_id, c.seq, c.rows), (11, 1, 1));
    assert_eq!(c.decompress().unwrap(), chunks[3].data);
    assert!(archive.chunks_of(12).is_empty());
    assert!(archive.chunks_of(999).is_empty());
}

#[test]
fn verify_reports_what_it_checked() {
    let (toc, chunks) = sample();
    let (bytes, trailer) = write_archive(&toc, &chunks, options(2, 2));
    let report = verify(&bytes[..]).unwrap();
    assert_eq!(report.bytes, bytes.len() as u64);
    assert_eq!(report.chunks, chunks.len() as u64);
    let raw: usize = chunks.iter().map(|c| c.data.len()).sum();
    assert_eq!(report.raw_bytes, raw as u64);
    assert!(!report.encrypted);
    let contents = report.contents.unwrap();
    assert_eq!(contents.trailer, trailer);
    assert_eq!(contents.toc, toc);
    assert_eq!(contents.meta, meta());
}

#[test]
fn archive_without_data_round_trips() {
    let (bytes, trailer) = write_archive(&toc(0), &[], options(1, 1));
    assert!(trailer.tables.is_empty());
    assert_eq!(read_sequential(&bytes).unwrap(), Contents::new());
    assert_eq!(read_indexed(&bytes).unwrap(), Contents::new());
}

#[test]
fn incompressible_chunk_is_stored_as_is() {
    let chunks = vec![rows_chunk(10, noise(100_000, 7))];
    let (bytes, trailer) = write_archive(&toc(1), &chunks, options(1, 1));
    assert_eq!(trailer.tables[0].stored_bytes, trailer.tables[0].raw_bytes);
    assert_eq!(read_indexed(&bytes).unwrap(), expected(&chunks));
}

#[test]
fn many_producers_and_async_sends_interleave_into_one_file() {
    let toc = toc(4);
    let writer = ArchiveWriter::new(Vec::new(), &meta(), &toc, options(2, 2)).unwrap();
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            let sender = writer.chunk_sender();
            std::thread::spawn(move || {
                for i in 0..20u64 {
                    let data = copy_text(10 + i, u64::from(t) * 100 + i);
                    if i % 2 == 0 {
                        sender.send(10 + t, 10 + i, data).unwrap();
                    } else {
                        futures::executor::block_on(sender.send_async(10 + t, 10 + i, data))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let (bytes, trailer) = writer.finish(finished_at(), BTreeMap::new()).unwrap();
    for t in &trailer.tables {
        assert_eq!(t.chunks, 20);
        assert_eq!(t.rows, (10..30).sum::<u64>());
        assert_eq!(t.row_digest, None);
    }
    let contents = read_indexed(&bytes).unwrap();
    for t in 0..4u32 {
        let want: Vec<(u64, Vec<u8>)> = (0..20u64)
            .map(|i| (10 + i, copy_text(10 + i, u64::from(t) * 100 + i)))
            .collect();
        assert_eq!(contents[&(10 + t)], want);
    }
    verify(&bytes[..]).unwrap();
}

#[test]
fn writer_rejects_chunks_it_cannot_place() {
    let writer = ArchiveWriter::new(Vec::new(), &meta(), &toc(1), options(1, 1)).unwrap();
    let sender = writer.chunk_sender();
    // Entry 1 is the schema: no COPY spec.
    assert!(matches!(
        sender.send(1, 1, b"x\n".to_vec()),
        Err(ArchiveError::Usage(_))
    ));
    assert!(matches!(
        sender.send(77, 1, b"x\n".to_vec()),
        Err(ArchiveError::Usage(_))
    ));
    let huge = vec![0; MAX_CHUNK_BYTES + 1];
    assert!(matches!(
        sender.send(10, 1, huge),
        Err(ArchiveError::Usage(_))
    ));
    let (bytes, trailer) = writer.finish(finished_at(), BTreeMap::new()).unwrap();
    assert_eq!(trailer.tables[0].chunks, 0);
    // A sender kept past finish fails instead of losing data silently.
    assert!(matches!(
        sender.send(10, 1, b"x\n".to_vec()),
        Err(ArchiveError::WriterClosed)
    ));
    verify(&bytes[..]).unwrap();
}

#[test]
fn duplicate_toc_ids_are_refused() {
    let mut toc = toc(1);
    toc[1].id = 1;
    let err = ArchiveWriter::new(Vec::new(), &meta(), &toc, options(1, 1))
        .err()
        .unwrap();
    assert!(matches!(err, ArchiveError::Usage(_)), "{err}");
}

/// A sink that accepts `budget` bytes, then fails like a full disk.
struct FullDisk {
    budget: usize,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.budget == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_error_stops_producers_and_finish_reports_it() {
    let writer = ArchiveWriter::new(
        FullDisk { budget: 3 << 20 },
        &meta(),
        &toc(1),
        options(2, 2),
    )
    .unwrap();
    let sender = writer.chunk_sender();
    let mut sent = 0;
    let err = loop {
        match sender.send(10, 20_000, copy_text(20_000, sent)) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(
            sent < 10_000,
            "producer never learned that the writer failed"
        );
    };
    assert!(matches!(err, ArchiveError::WriterClosed), "{err}");
    let err = writer.finish(finished_at(), BTreeMap::new()).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, ArchiveError::Io { .. }), "{msg}");
    assert!(msg.contains("disk full") && msg.contains("offset"), "{msg}");
}

#[test]
fn write_error_in_the_prologue_is_reported_by_new() {
    let err = ArchiveWriter::new(FullDisk { budget: 10 }, &meta(), &toc(1), options(1, 1))
        .err()
        .unwrap();
    assert!(matches!(err, ArchiveError::Io { .. }), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
}

/// A pipe that hands out a few bytes per read, as a slow network would.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_from_a_pipe_are_handled() {
    let (toc, chunks) = sample();
    let (bytes, trailer) = write_archive(&toc, &chunks, options(2, 2));
    let report = verify(Trickle {
        data: &bytes,
        step: 0,
    })
    .unwrap();
    assert_eq!(report.contents.unwrap().trailer, trailer);
    assert_eq!(report.bytes, bytes.len() as u64);
}

#[test]
fn a_wrong_row_count_stops_the_writer() {
    let writer = ArchiveWriter::new(Vec::new(), &meta(), &toc(1), options(1, 1)).unwrap();
    let sender = writer.chunk_sender();
    sender.send(10, 3, b"1\tx\n2\ty\n".to_vec()).unwrap();
    let err = writer.finish(finished_at(), BTreeMap::new()).err().unwrap();
    assert_eq!(
        err.to_string(),
        "invalid use of the archive writer: chunk 0 of entry 10 holds 2 rows, its header says 3"
    );
    let writer = ArchiveWriter::new(Vec::new(), &meta(), &toc(1), options(1, 1)).unwrap();
    writer
        .chunk_sender()
        .send(10, 1, b"1\tx\n2\ty".to_vec())
        .unwrap();
    let err = writer.finish(finished_at(), BTreeMap::new()).err().unwrap();
    assert!(
        err.to_string().contains("does not end with a whole row"),
        "{err}"
    );
}

#[test]
fn a_cancelled_async_send_fails_the_archive_instead_of_leaving_a_gap() {
    use std::future::Future;
    use std::task::Context;
    let waker = futures::task::noop_waker();
    let writer = ArchiveWriter::new(Vec::new(), &meta(), &toc(1), options(1, 1)).unwrap();
    let sender = writer.chunk_sender();
    // Fill the queue so the next send has to wait, then drop that send.
    let mut pending = None;
    for i in 0..1000 {
        let mut fut = Box::pin(sender.send_async(10, 1000, copy_text(1000, i)));
        if fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            pending = Some(fut);
            break;
        }
    }
    drop(pending.expect("the bounded queue filled up"));
    let err = writer.finish(finished_at(), BTreeMap::new()).err().unwrap();
    assert!(err.to_string().contains("never queued"), "{err}");
}

#[test]
fn finish_flushes_a_buffering_sink() {
    let sink = std::io::BufWriter::with_capacity(1 << 20, Vec::new());
    let writer = ArchiveWriter::new(sink, &meta(), &toc(1), options(1, 1)).unwrap();
    writer
        .chunk_sender()
        .send(10, 100, copy_text(100, 1))
        .unwrap();
    let (sink, _) = writer.finish(finished_at(), BTreeMap::new()).unwrap();
    assert!(sink.buffer().is_empty());
    assert_eq!(verify(&sink.get_ref()[..]).unwrap().chunks, 1);
}

/// A sink the test can still read after the writer has dropped its handle.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_writer_dropped_without_finish_leaves_an_archive_no_reader_accepts() {
    let out = Shared::default();
    let writer = ArchiveWriter::new(out.clone(), &meta(), &toc(1), options(2, 2)).unwrap();
    for i in 0..5 {
        writer
            .chunk_sender()
            .send(10, 50, copy_text(50, i))
            .unwrap();
    }
    drop(writer);
    let bytes = out.0.lock().unwrap().clone();
    let err = verify(&bytes[..]).err().unwrap();
    assert!(matches!(err, ArchiveError::Truncated { .. }), "{err}");
    assert!(IndexedArchive::open(Cursor::new(&bytes)).is_err());
}

//! Writer and reader throughput on synthetic COPY text at the default level.
//! Besides criterion's own lines, prints a summary in MB/s (10^6 bytes of raw
//! COPY text per second), per core for the writer.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgark_archive::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const TOTAL: usize = 64 << 20;

/// Rows like a typical orders table in COPY text: ids, timestamps, amounts,
/// a status word, an email and some free text.
fn copy_text(bytes: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "shipped",
        "pending",
        "delivered",
        "returned",
        "express",
        "standard",
        "gift",
        "wrap",
        "fragile",
        "customer",
        "requested",
        "call",
        "before",
        "delivery",
        "door",
        "code",
    ];
    let mut out = Vec::with_capacity(bytes + 256);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut id = 1_000_000u64;
    while out.len() < bytes {
        let r = next();
        id += 1 + r % 3;
        let secs = 1_700_000_000 + (r >> 8) % 50_000_000;
        let ts =
            chrono::DateTime::from_timestamp(secs as i64, ((r >> 20) % 1_000_000) as u32 * 1000)
                .unwrap_or_default();
        let note: Vec<&str> = (0..(r % 6))
            .map(|i| WORDS[((r >> (i * 4)) % 16) as usize])
            .collect();
        let line = format!(
            "{id}\t{}\t{}\t{}.{:02}\t{}\tuser{}@example.com\t{}\n",
            (r >> 12) % 100_000,
            ts.format("%Y-%m-%d %H:%M:%S%.6f+00"),
            (r >> 24) % 10_000,
            (r >> 40) % 100,
            WORDS[(r % 4) as usize],
            (r >> 32) % 1_000_000,
            if note.is_empty() {
                "\\N".to_string()
            } else {
                note.join(" ")
            },
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn toc() -> Vec<TocEntry> {
    (0..4)
        .map(|i| TocEntry {
            id: 10 + i,
            kind: "TABLE DATA".into(),
            schema: Some("public".into()),
            name: format!("orders{i}"),
            owner: None,
            section: Section::Data,
            create_sql: String::new(),
            owner_sql: None,
            drop_sql: String::new(),
            deps: vec![],
            copy: Some(CopySpec {
                qualified_table: format!("\"public\".\"orders{i}\""),
                columns: vec![],
                format: "text".into(),
                critical: false,
            }),
        })
        .collect()
}

fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
    data.chunks(RECOMMENDED_CHUNK_BYTES)
        .map(<[u8]>::to_vec)
        .collect()
}

fn write<W: std::io::Write + Send + 'static>(out: W, chunks: &[Vec<u8>], threads: usize) -> W {
    let opts = WriterOptions {
        threads,
        queue_depth: 2 * threads,
        ..WriterOptions::default()
    };
    let writer = ArchiveWriter::new(out, &ArchiveMeta::default(), &toc(), opts).unwrap();
    let sender = writer.chunk_sender();
    for (i, c) in chunks.iter().enumerate() {
        sender.send(10 + (i % 4) as u32, 1, c.clone()).unwrap();
    }
    writer.finish(Utc::now(), BTreeMap::new()).unwrap().0
}

fn read(archive: &[u8]) -> u64 {
    let mut reader = ArchiveReader::open(archive).unwrap();
    let mut raw = 0;
    while let Some(c) = reader.next_chunk().unwrap() {
        raw += c.decompress().unwrap().len() as u64;
    }
    raw
}

/// Best of `runs`, in MB/s of `bytes`.
fn rate(bytes: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    let best = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or(Duration::MAX);
    bytes as f64 / best.as_secs_f64() / 1e6
}

fn summary(data: &[u8], chunks: &[Vec<u8>], archive: &[u8]) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hash = rate(data.len(), 5, || {
        black_box(Sha256::digest(data));
    });
    let zstd = rate(data.len(), 3, || {
        for c in chunks {
            black_box(zstd::bulk::compress(c, 1).unwrap());
        }
    });
    let w1 = rate(data.len(), 3, || {
        black_box(write(std::io::sink(), chunks, 1));
    });
    let wn = rate(data.len(), 3, || {
        black_box(write(std::io::sink(), chunks, cores));
    });
    let r = rate(data.len(), 3, || {
        black_box(read(archive));
    });
    println!(
        "--- pgark-archive throughput, zstd level 1, {cores} cores, {} MB of COPY text ---",
        data.len() / 1_000_000
    );
    println!(
        "compression ratio:          {:.2}",
        data.len() as f64 / archive.len() as f64
    );
    println!("sha256 alone:               {hash:.0} MB/s");
    println!("zstd -1 alone, 1 thread:    {zstd:.0} MB/s");
    println!("writer, 1 thread:           {w1:.0} MB/s raw COPY text per core");
    println!(
        "writer, {cores} threads:          {wn:.0} MB/s raw ({:.0} MB/s per core)",
        wn / cores as f64
    );
    println!("reader (verify+decompress): {r:.0} MB/s raw, 1 thread");
}

fn benches(c: &mut Criterion) {
    let data = copy_text(TOTAL);
    let chunks = chunks(&data);
    let archive = write(Vec::new(), &chunks, 2);
    summary(&data, &chunks, &archive);

    let mut g = c.benchmark_group("archive");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("writer_1_thread", |b| {
        b.iter(|| write(std::io::sink(), &chunks, 1))
    });
    g.bench_function("writer_2_threads", |b| {
        b.iter(|| write(std::io::sink(), &chunks, 2))
    });
    g.bench_function("reader", |b| b.iter(|| read(&archive)));
    g.bench_function("sha256", |b| b.iter(|| Sha256::digest(&data)));
    g.finish();
}

criterion_group!(throughput, benches);
criterion_main!(throughput);

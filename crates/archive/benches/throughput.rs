//! Writer and reader throughput on synthetic COPY text at the default level.
//! Besides criterion's own lines, prints a summary in MB/s (10^6 bytes of raw
//! COPY text per second), per core for the writer.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
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

/// (rows, COPY text) chunks.
type Chunks = Vec<(u64, Vec<u8>)>;

/// Chunks of whole rows of about the recommended size, as an exporter makes
/// them (counting its rows as it fills them).
fn chunks(data: &[u8]) -> Chunks {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = match rest.get(RECOMMENDED_CHUNK_BYTES..) {
            Some(tail) => {
                RECOMMENDED_CHUNK_BYTES + tail.iter().position(|&b| b == b'\n').unwrap() + 1
            }
            None => rest.len(),
        };
        let rows = rest[..end].iter().filter(|&&b| b == b'\n').count() as u64;
        out.push((rows, rest[..end].to_vec()));
        rest = &rest[end..];
    }
    out
}

fn write<W: std::io::Write + Send + 'static>(out: W, chunks: Chunks, threads: usize) -> W {
    let opts = WriterOptions {
        threads,
        queue_depth: 2 * threads,
        ..WriterOptions::default()
    };
    let writer = ArchiveWriter::new(out, &ArchiveMeta::default(), &toc(), opts).unwrap();
    let sender = writer.chunk_sender();
    for (i, c) in chunks.into_iter().enumerate() {
        sender.send(10 + (i % 4) as u32, c.0, c.1).unwrap();
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

/// CPU time (user + system) of this process so far, from /proc (Linux; its
/// clock ticks are 1/100 s on x86).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Best wall-clock rate of `runs` runs, and the rate per CPU-second over all
/// of them (what one core does, whatever else runs on the machine), in MB/s.
fn rate(
    bytes: usize,
    runs: usize,
    chunks: &[(u64, Vec<u8>)],
    mut f: impl FnMut(Chunks),
) -> (f64, f64) {
    let (mut best, mut cpu) = (Duration::MAX, 0.0);
    for _ in 0..runs {
        let input = chunks.to_vec();
        let c0 = cpu_seconds().unwrap_or(0.0);
        let t = Instant::now();
        f(input);
        best = best.min(t.elapsed());
        cpu += cpu_seconds().unwrap_or(0.0) - c0;
    }
    let mb = bytes as f64 / 1e6;
    (mb / best.as_secs_f64(), mb * runs as f64 / cpu)
}

fn summary(data: &[u8], chunks: &[(u64, Vec<u8>)], archive: &[u8]) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = 8;
    let (hash, _) = rate(data.len(), runs, &[], |_| {
        black_box(Sha256::digest(data));
    });
    let (zstd, zstd_cpu) = rate(data.len(), runs, &[], |_| {
        for (_, c) in chunks {
            black_box(zstd::bulk::compress(c, 1).unwrap());
        }
    });
    let (w1, w1_cpu) = rate(data.len(), runs, chunks, |input| {
        black_box(write(std::io::sink(), input, 1));
    });
    let (wn, wn_cpu) = rate(data.len(), runs, chunks, |input| {
        black_box(write(std::io::sink(), input, cores));
    });
    let (r, r_cpu) = rate(data.len(), runs, &[], |_| {
        black_box(read(archive));
    });
    let (v, v_cpu) = rate(data.len(), runs, &[], |_| {
        black_box(verify(archive).unwrap());
    });
    let mb = data.len() / 1_000_000;
    println!("--- pgark-archive throughput: zstd level 1, {cores} cores, {mb} MB of COPY text, {RECOMMENDED_CHUNK_BYTES} B chunks ---");
    println!("MB/s of raw COPY text; wall = best of {runs} runs, cpu = per CPU-second (per core) over all runs");
    println!(
        "compression ratio                {:.2}",
        data.len() as f64 / archive.len() as f64
    );
    println!("sha256 alone                     wall {hash:5.0}");
    println!("zstd -1 alone, 1 thread          wall {zstd:5.0}   cpu {zstd_cpu:5.0}");
    println!("writer, 1 compression thread     wall {w1:5.0}   cpu {w1_cpu:5.0}");
    println!("writer, {cores} compression threads    wall {wn:5.0}   cpu {wn_cpu:5.0}");
    println!("reader + decompress, 1 thread    wall {r:5.0}   cpu {r_cpu:5.0}");
    println!("verify(), {cores} decompress threads  wall {v:5.0}   cpu {v_cpu:5.0}");
}

fn benches(c: &mut Criterion) {
    let data = copy_text(TOTAL);
    let chunks = chunks(&data);
    let archive = write(Vec::new(), chunks.clone(), 2);
    summary(&data, &chunks, &archive);

    let mut g = c.benchmark_group("archive");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(data.len() as u64));
    for threads in [1, 2] {
        g.bench_function(format!("writer_{threads}_threads"), |b| {
            b.iter_batched(
                || chunks.clone(),
                |input| write(std::io::sink(), input, threads),
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("reader", |b| b.iter(|| read(&archive)));
    g.bench_function("sha256", |b| b.iter(|| Sha256::digest(&data)));
    g.finish();
}

criterion_group!(throughput, benches);
criterion_main!(throughput);

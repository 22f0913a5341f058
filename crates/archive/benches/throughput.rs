//! Writer and reader throughput on synthetic COPY text at the default level,
//! unencrypted and encrypted (AES-256-GCM, a key file's key). Besides
//! criterion's own lines, prints a summary in MB/s (10^6 bytes of raw COPY
//! text per second), per core for the writer, and what encryption costs.

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

fn write<W: std::io::Write + Send + 'static>(
    out: W,
    chunks: Chunks,
    threads: usize,
    key: Option<&Key>,
) -> W {
    let opts = WriterOptions {
        threads,
        queue_depth: 2 * threads,
        encryption: key.cloned(),
        ..WriterOptions::default()
    };
    let writer = ArchiveWriter::new(out, &ArchiveMeta::default(), &toc(), opts).unwrap();
    let sender = writer.chunk_sender();
    for (i, c) in chunks.into_iter().enumerate() {
        sender.send(10 + (i % 4) as u32, c.0, c.1).unwrap();
    }
    writer.finish(Utc::now(), BTreeMap::new()).unwrap().0
}

fn read(archive: &[u8], key: Option<&Key>) -> u64 {
    let mut reader = ArchiveReader::open_with_key(archive, key).unwrap();
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

/// What is measured, unencrypted and encrypted: (wall, cpu) per case.
struct Rates {
    writer_1: (f64, f64),
    writer_n: (f64, f64),
    reader: (f64, f64),
    verify: (f64, f64),
}

fn rates(data: &[u8], chunks: &[(u64, Vec<u8>)], archive: &[u8], key: Option<&Key>) -> Rates {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = 8;
    Rates {
        writer_1: rate(data.len(), runs, chunks, |input| {
            black_box(write(std::io::sink(), input, 1, key));
        }),
        writer_n: rate(data.len(), runs, chunks, |input| {
            black_box(write(std::io::sink(), input, cores, key));
        }),
        reader: rate(data.len(), runs, &[], |_| {
            black_box(read(archive, key));
        }),
        verify: rate(data.len(), runs, &[], |_| {
            black_box(verify_with_key(archive, key).unwrap());
        }),
    }
}

/// AES-256-GCM alone (ring, as the writer uses it) over the data in chunks,
/// one thread.
fn aes_gcm_alone(data: &[u8], chunks: &[(u64, Vec<u8>)]) -> f64 {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    rate(data.len(), 8, &[], |_| {
        for (_, c) in chunks {
            let mut buf = c.clone();
            let nonce = Nonce::assume_unique_for_key([0u8; 12]);
            let tag = key.seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf);
            black_box(tag.unwrap().as_ref()[0]);
        }
    })
    .0
}

fn summary(data: &[u8], chunks: &[(u64, Vec<u8>)], archive: &[u8], sealed: &[u8], key: &Key) {
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
    let aes = aes_gcm_alone(data, chunks);
    let plain = rates(data, chunks, archive, None);
    let enc = rates(data, chunks, sealed, Some(key));
    let mb = data.len() / 1_000_000;
    println!("--- pgark-archive throughput: zstd level 1, {cores} cores, {mb} MB of COPY text, {RECOMMENDED_CHUNK_BYTES} B chunks ---");
    println!("MB/s of raw COPY text; wall = best of {runs} runs, cpu = per CPU-second (per core) over all runs");
    println!("encrypted = AES-256-GCM with a key file's key; cost = encrypted / unencrypted - 1");
    println!(
        "compression ratio                {:.2}",
        data.len() as f64 / archive.len() as f64
    );
    println!("sha256 alone                     wall {hash:5.0}");
    println!("zstd -1 alone, 1 thread          wall {zstd:5.0}   cpu {zstd_cpu:5.0}");
    println!("AES-256-GCM alone, 1 thread      wall {aes:5.0}");
    println!("                                 unencrypted        encrypted          cost");
    let row = |name: &str, (pw, pc): (f64, f64), (ew, ec): (f64, f64)| {
        println!(
            "{name:<32} wall {pw:5.0} cpu {pc:5.0}   wall {ew:5.0} cpu {ec:5.0}   wall {:+4.0}% cpu {:+4.0}%",
            (ew / pw - 1.0) * 100.0,
            (ec / pc - 1.0) * 100.0
        )
    };
    row("writer, 1 compression thread", plain.writer_1, enc.writer_1);
    row(
        &format!("writer, {cores} compression threads"),
        plain.writer_n,
        enc.writer_n,
    );
    row("reader + decompress, 1 thread", plain.reader, enc.reader);
    row(
        &format!("verify(), {cores} decompress threads"),
        plain.verify,
        enc.verify,
    );
}

fn benches(c: &mut Criterion) {
    let data = copy_text(TOTAL);
    let chunks = chunks(&data);
    let key = Key::from_bytes([0x5a; 32]);
    let archive = write(Vec::new(), chunks.clone(), 2, None);
    let sealed = write(Vec::new(), chunks.clone(), 2, Some(&key));
    summary(&data, &chunks, &archive, &sealed, &key);

    let mut g = c.benchmark_group("archive");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, key) in [("", None), ("_encrypted", Some(&key))] {
        for threads in [1, 2] {
            g.bench_function(format!("writer_{threads}_threads{name}"), |b| {
                b.iter_batched(
                    || chunks.clone(),
                    |input| write(std::io::sink(), input, threads, key),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.bench_function("reader", |b| b.iter(|| read(&archive, None)));
    g.bench_function("reader_encrypted", |b| b.iter(|| read(&sealed, Some(&key))));
    g.bench_function("sha256", |b| b.iter(|| Sha256::digest(&data)));
    g.finish();
}

criterion_group!(throughput, benches);
criterion_main!(throughput);

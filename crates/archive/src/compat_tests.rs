//! Forward compatibility: an archive of a later minor version, with fields this
//! version does not know in every JSON section, must read.

use crate::layout::{BlockHeader, FileHeader, Footer, BLOCK_HEADER_LEN, FOOTER_LEN, HEADER_LEN};
use crate::model::*;
use crate::{verify, ArchiveReader};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn with_extra(value: impl serde::Serialize) -> Vec<u8> {
    let mut v = serde_json::to_value(value).unwrap();
    v.as_object_mut()
        .unwrap()
        .insert("added_in_1_7".into(), json!({"x": [1, 2]}));
    serde_json::to_vec(&v).unwrap()
}

fn block(
    out: &mut Vec<u8>,
    id: &[u8; 16],
    kind: BlockKind,
    entry_id: u32,
    rows: u64,
    payload: &[u8],
) -> BlockRef {
    let mut h = BlockHeader {
        kind,
        flags: 0,
        entry_id,
        seq: 0,
        raw_len: payload.len() as u32,
        stored_len: payload.len() as u32,
        rows,
        nonce: [0; 12],
        hash: [0; 32],
    };
    let offset = out.len() as u64;
    out.extend_from_slice(&h.seal(id, payload));
    out.extend_from_slice(payload);
    BlockRef {
        offset,
        kind,
        entry_id,
        seq: 0,
        rows,
        raw_len: h.raw_len,
        stored_len: h.stored_len,
    }
}

#[test]
fn later_minor_version_with_unknown_fields_is_read() {
    let id = [7u8; 16];
    let header = FileHeader {
        major: 1,
        minor: 7,
        flags: 0,
        archive_id: id,
    };
    let mut out = header.encode().to_vec();
    assert_eq!(out.len(), HEADER_LEN);

    let meta = ArchiveMeta {
        database: "shop".into(),
        ..Default::default()
    };
    let entry = TocEntry {
        id: 5,
        kind: "TABLE DATA".into(),
        schema: None,
        name: "t".into(),
        owner: None,
        section: Section::Data,
        create_sql: String::new(),
        owner_sql: None,
        drop_sql: String::new(),
        deps: vec![],
        copy: Some(CopySpec {
            qualified_table: "t".into(),
            columns: vec![],
            format: "text".into(),
            critical: false,
        }),
    };
    let toc = serde_json::to_vec(&Value::Array(vec![serde_json::from_slice(&with_extra(
        &entry,
    ))
    .unwrap()]))
    .unwrap();
    let mut index = vec![
        block(&mut out, &id, BlockKind::Meta, 0, 0, &with_extra(&meta)),
        block(&mut out, &id, BlockKind::Toc, 0, 0, &toc),
    ];
    let chunk = block(&mut out, &id, BlockKind::Data, 5, 1, b"1\n");
    index.push(chunk);

    let mut chunk_hash = Sha256::new();
    let header_bytes = &out[chunk.offset as usize..chunk.offset as usize + BLOCK_HEADER_LEN];
    chunk_hash.update(&header_bytes[48..80]);
    let stats = TableStats {
        entry_id: 5,
        rows: 1,
        raw_bytes: 2,
        stored_bytes: 2,
        chunks: 1,
        sha256: crate::layout::hex(&chunk_hash.finalize()),
        row_digest: None,
    };
    let trailer = Trailer {
        finished_at: None,
        tables: vec![stats],
        index,
    };
    let mut trailer_json = serde_json::to_value(&trailer).unwrap();
    trailer_json["tables"][0]["added_in_1_7"] = json!(true);
    trailer_json["index"][2]["added_in_1_7"] = json!("x");
    trailer_json["added_in_1_7"] = json!(null);
    let trailer_offset = out.len() as u64;
    block(
        &mut out,
        &id,
        BlockKind::Trailer,
        0,
        0,
        &serde_json::to_vec(&trailer_json).unwrap(),
    );
    let total_len = out.len() as u64 + FOOTER_LEN as u64;
    out.extend_from_slice(
        &Footer {
            trailer_offset,
            total_len,
        }
        .encode(),
    );

    let report = verify(&out[..]).unwrap();
    assert_eq!(report.format_version, (1, 7));
    let contents = report.contents.unwrap();
    assert_eq!(contents.meta, meta);
    assert_eq!(contents.toc, vec![entry]);
    assert_eq!(contents.trailer, trailer);
    let mut reader = ArchiveReader::open(&out[..]).unwrap();
    assert_eq!(
        reader.next_chunk().unwrap().unwrap().decompress().unwrap(),
        b"1\n"
    );
    let mut seekable = crate::IndexedArchive::open(std::io::Cursor::new(&out)).unwrap();
    let at = seekable.chunks_of(5)[0];
    assert_eq!(
        seekable.read_chunk(&at).unwrap().decompress().unwrap(),
        b"1\n"
    );
}

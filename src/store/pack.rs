//! Many objects at once as one pack file and its index, instead of one
//! loose file per object: a 10,000-task plan is ~40,000 objects, and on a
//! slow disk creating that many files is what an import costs.
//!
//! The pack holds only whole objects (no deltas), each deflated on its own;
//! the index is git's version 2. Both are written to temporary files and
//! renamed into `objects/pack/`, the index last: readers find a pack through
//! its index, so they never see half of one.

use anyhow::{bail, Context, Result};
use gix::objs::Kind;
use gix::odb::pack::data::entry::Header;
use gix::zlib::stream::deflate::{Compress, FlushCompress};
use gix::ObjectId;
use std::io::Write;
use std::path::Path;

/// One object to store: its kind, its encoded body and its id.
pub(super) struct Object {
    pub kind: Kind,
    pub data: Vec<u8>,
    pub id: ObjectId,
}

/// Where an object landed in the pack, for the index.
struct Entry {
    id: ObjectId,
    offset: u64,
    crc32: u32,
}

/// Write `objects` (distinct ids) as one pack with its index into
/// `objects_dir/pack`. Returns the pack's checksum, which names both files.
pub(super) fn write(objects_dir: &Path, objects: &[Object]) -> Result<ObjectId> {
    let hash_kind = objects
        .first()
        .map(|o| o.id.kind())
        .context("no objects to pack")?;
    let (pack, mut entries) = encode_pack(objects, hash_kind)?;
    let checksum = ObjectId::from_bytes_or_panic(&pack[pack.len() - hash_kind.len_in_bytes()..]);
    let index = encode_index(&mut entries, checksum)?;
    let dir = objects_dir.join("pack");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = format!("pack-{checksum}");
    persist(&dir, &pack, &dir.join(format!("{name}.pack")))?;
    persist(&dir, &index, &dir.join(format!("{name}.idx")))?;
    Ok(checksum)
}

/// Write `bytes` to a temporary file in `dir` and rename it to `target`,
/// read-only as git keeps its packs. A file already at `target` has the same
/// content (the name is the checksum) and is kept.
fn persist(dir: &Path, bytes: &[u8], target: &Path) -> Result<()> {
    if target.exists() {
        return Ok(());
    }
    let mut tmp = tempfile::Builder::new()
        .prefix("tmp_pack_")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let read_only = std::fs::Permissions::from_mode(0o444);
        tmp.as_file().set_permissions(read_only)?;
    }
    tmp.persist(target)
        .with_context(|| format!("renaming into {}", target.display()))?;
    Ok(())
}

/// The pack file (header, entries, checksum trailer) and where each object is.
fn encode_pack(objects: &[Object], hash_kind: gix::hash::Kind) -> Result<(Vec<u8>, Vec<Entry>)> {
    let count = u32::try_from(objects.len()).context("too many objects for one pack")?;
    let size: usize = objects.iter().map(|o| o.data.len()).sum();
    let mut pack = Vec::with_capacity(size / 2 + 1024);
    pack.extend_from_slice(&gix::odb::pack::data::header::encode(
        gix::odb::pack::data::Version::V2,
        count,
    ));
    let mut zlib = Compress::new(gix::zlib::Compression::BEST_SPEED);
    let mut entries = Vec::with_capacity(objects.len());
    for object in objects {
        let offset = pack.len();
        entry_header(object.kind).write_to(object.data.len() as u64, &mut pack)?;
        deflate(&mut zlib, &object.data, &mut pack)?;
        entries.push(Entry {
            id: object.id,
            offset: offset as u64,
            crc32: crc32(&pack[offset..]),
        });
    }
    let mut hasher = gix::hash::hasher(hash_kind);
    hasher.update(&pack);
    let checksum = hasher.try_finalize().context("hashing the pack")?;
    pack.extend_from_slice(checksum.as_slice());
    Ok((pack, entries))
}

fn entry_header(kind: Kind) -> Header {
    match kind {
        Kind::Blob => Header::Blob,
        Kind::Tree => Header::Tree,
        Kind::Commit => Header::Commit,
        Kind::Tag => Header::Tag,
    }
}

/// Append `data` to `out` as one complete zlib stream.
fn deflate(zlib: &mut Compress, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    zlib.reset();
    let mut input = data;
    loop {
        let start = out.len();
        // Small JSON compresses; the slack covers incompressible input.
        out.resize(start + input.len() + 64, 0);
        let (read, written) = (zlib.total_in(), zlib.total_out());
        let status = zlib
            .compress(input, &mut out[start..], FlushCompress::Finish)
            .map_err(|e| anyhow::anyhow!("compressing an object: {e}"))?;
        out.truncate(start + (zlib.total_out() - written) as usize);
        input = &input[(zlib.total_in() - read) as usize..];
        if matches!(status, gix::zlib::Status::StreamEnd) {
            return Ok(());
        }
    }
}

/// A version 2 pack index of `entries` (sorted here by id): fan-out table,
/// ids, CRC-32s, offsets, the pack's checksum, and the index's own.
fn encode_index(entries: &mut [Entry], pack_checksum: ObjectId) -> Result<Vec<u8>> {
    entries.sort_unstable_by_key(|e| e.id);
    if entries.windows(2).any(|w| w[0].id == w[1].id) {
        bail!("a pack must not hold the same object twice");
    }
    let mut index = Vec::with_capacity(8 + 1024 + entries.len() * 32 + 64);
    index.extend_from_slice(b"\xfftOc");
    index.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for entry in entries.iter() {
        fanout[usize::from(entry.id.as_slice()[0])] += 1;
    }
    let mut total = 0;
    for count in fanout {
        total += count;
        index.extend_from_slice(&total.to_be_bytes());
    }
    for entry in entries.iter() {
        index.extend_from_slice(entry.id.as_slice());
    }
    for entry in entries.iter() {
        index.extend_from_slice(&entry.crc32.to_be_bytes());
    }
    // Offsets past 2 GiB go into a table of 64-bit offsets, referred to by
    // position with the high bit set.
    let mut large = Vec::new();
    for entry in entries.iter() {
        let small = match u32::try_from(entry.offset) {
            Ok(offset) if offset < 0x8000_0000 => offset,
            _ => {
                large.push(entry.offset);
                0x8000_0000 | u32::try_from(large.len() - 1).context("pack too large")?
            }
        };
        index.extend_from_slice(&small.to_be_bytes());
    }
    for offset in large {
        index.extend_from_slice(&offset.to_be_bytes());
    }
    index.extend_from_slice(pack_checksum.as_slice());
    let mut hasher = gix::hash::hasher(pack_checksum.kind());
    hasher.update(&index);
    let own = hasher.try_finalize().context("hashing the pack index")?;
    index.extend_from_slice(own.as_slice());
    Ok(index)
}

/// CRC-32 (IEEE, as zlib computes it), which the index keeps per entry so
/// that `git repack` can copy entries without inflating them.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |c, b| {
        TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}

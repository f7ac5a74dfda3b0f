//! Objects as one pack file and its index instead of one loose file per
//! object. Creating a file is the dearest thing a write does on a busy disk:
//! a 10,000-task plan is ~40,000 objects, and a claim is five, which as a
//! pack are two files.
//!
//! The pack holds only whole objects (no deltas), each deflated on its own;
//! the index is git's version 2. Both are written to temporary files and
//! renamed into `objects/pack/`, the index last: readers find a pack through
//! its index, so they never see half of one.
//!
//! Small packs add up, and every pack costs each object lookup a search of
//! its index, so [`roll_up`] merges them the way `git repack --geometric=2`
//! does, touching only small packs.

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

/// Packs up to this size may be merged; larger ones are left as they are,
/// so that no single write ever rewrites more than this.
const SMALL_PACK: u64 = 32 << 20;

/// Merge only once this many small packs exist: most writes pay for no
/// merge, and a process that opened the repository with few packs never
/// meets more than gix has room for (32 indices at least).
const ROLL_UP_FROM: usize = 16;

/// A lock older than this was left by a killed process.
const STALE_LOCK: std::time::Duration = std::time::Duration::from_secs(10);

/// A small pack on disk.
struct Small {
    /// `objects/pack/pack-<checksum>`, without extension.
    stem: std::path::PathBuf,
    size: u64,
}

/// Merge small packs once there are [`ROLL_UP_FROM`] of them: sorted by
/// size, the smallest ones that do not already grow geometrically (each at
/// least twice the one before it) become one pack, which is then the only
/// copy of their objects. Only packs of whole objects take part: a pack of
/// deltas (git's own) would lose its compression written out whole.
///
/// Readers keep working: the merged pack is in place before the old ones
/// go (index first), and a reader whose pack vanished looks again. Returns
/// how many packs were merged (0 if none, or another process is at it).
pub(super) fn roll_up(repo: &gix::Repository) -> Result<usize> {
    let objects_dir = repo.objects.store_ref().path();
    let dir = objects_dir.join("pack");
    let small = small_packs(&dir)?;
    if small.len() < ROLL_UP_FROM {
        return Ok(0);
    }
    let Some(_lock) = RollUpLock::take(&dir)? else {
        return Ok(0);
    };
    let hash = repo.object_hash();
    let mut whole = Vec::with_capacity(small.len());
    for pack in small {
        if let Some(opened) = Opened::whole(pack, hash)? {
            whole.push(opened);
        }
    }
    whole.sort_by_key(|p| p.pack.size);
    let sizes: Vec<u64> = whole.iter().map(|p| p.pack.size).collect();
    let merge = geometric_split(&sizes);
    if merge < 2 {
        return Ok(0);
    }
    let mut objects = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for pack in &whole[..merge] {
        pack.read_into(&mut objects, &mut seen)?;
    }
    let merged = write(objects_dir, &objects)?;
    for opened in &whole[..merge] {
        let stem = &opened.pack.stem;
        if stem.ends_with(format!("pack-{merged}")) {
            continue;
        }
        // The index first: without it no reader finds the pack.
        for ext in ["idx", "rev", "pack"] {
            let _ = std::fs::remove_file(stem.with_extension(ext));
        }
    }
    Ok(merge)
}

/// A small pack opened for merging: its index and its data.
struct Opened {
    pack: Small,
    index: gix::odb::pack::index::File,
    data: gix::odb::pack::data::File,
}

impl Opened {
    /// Open `pack`; `None` if any of its entries is a delta.
    fn whole(pack: Small, hash: gix::hash::Kind) -> Result<Option<Opened>> {
        let index = gix::odb::pack::index::File::at(pack.stem.with_extension("idx"), hash)
            .map_err(|e| anyhow::anyhow!("reading {}.idx: {e}", pack.stem.display()))?;
        let data = gix::odb::pack::data::File::at(pack.stem.with_extension("pack"), hash)
            .map_err(|e| anyhow::anyhow!("reading {}.pack: {e}", pack.stem.display()))?;
        for entry in index.iter() {
            let header = data
                .entry(entry.pack_offset)
                .map_err(|e| anyhow::anyhow!("reading {}.pack: {e}", pack.stem.display()))?
                .header;
            if header.is_delta() {
                return Ok(None);
            }
        }
        Ok(Some(Opened { pack, index, data }))
    }

    /// Add the pack's objects not in `seen` to `objects`.
    fn read_into(
        &self,
        objects: &mut Vec<Object>,
        seen: &mut std::collections::HashSet<ObjectId>,
    ) -> Result<()> {
        let mut inflate = gix::zlib::Inflate::default();
        let broken = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("reading {}.pack: {e}", self.pack.stem.display())
        };
        for entry in self.index.iter() {
            if !seen.insert(entry.oid) {
                continue;
            }
            let found = self.data.entry(entry.pack_offset).map_err(|e| broken(&e))?;
            let kind = found
                .header
                .as_kind()
                .ok_or_else(|| broken(&"a delta where none was"))?;
            let size = usize::try_from(found.decompressed_size).map_err(|e| broken(&e))?;
            let mut body = vec![0; size];
            self.data
                .decompress_entry(&found, &mut inflate, &mut body)
                .map_err(|e| broken(&e))?;
            objects.push(Object {
                kind,
                data: body,
                id: entry.oid,
            });
        }
        Ok(())
    }
}

/// How many of `sizes` (ascending) to merge so that what is left, with the
/// merged pack, grows geometrically by a factor of two (git's
/// `--geometric=2` split).
fn geometric_split(sizes: &[u64]) -> usize {
    let mut split = 0;
    for i in (1..sizes.len()).rev() {
        if sizes[i] < 2 * sizes[i - 1] {
            split = i + 1;
            break;
        }
    }
    // The merged pack may now outgrow the packs above it: take those too.
    let mut total: u64 = sizes[..split].iter().sum();
    while split < sizes.len() && sizes[split] < 2 * total {
        total += sizes[split];
        split += 1;
    }
    split
}

/// The packs in `dir` that may be merged: small, and neither kept
/// (`.keep`) nor from a partial clone (`.promisor`). Also removes pack
/// files whose index is gone for over an hour (a merge killed half way).
fn small_packs(dir: &Path) -> Result<Vec<Small>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut small = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_pack_file = |ext: &str| {
            path.extension().is_some_and(|e| e == ext)
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("pack-"))
        };
        if is_pack_file("pack") && !path.with_extension("idx").exists() {
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        if !is_pack_file("idx") {
            continue;
        }
        let stem = path.with_extension("");
        if ["keep", "promisor"]
            .iter()
            .any(|ext| stem.with_extension(ext).exists())
        {
            continue;
        }
        let Ok(meta) = std::fs::metadata(stem.with_extension("pack")) else {
            continue;
        };
        if meta.len() <= SMALL_PACK {
            small.push(Small {
                stem,
                size: meta.len(),
            });
        }
    }
    Ok(small)
}

/// `objects/pack/git-agent-roll-up.lock`: one merge at a time. Merges that
/// overlap would still be safe (each removes only packs whose objects it has
/// written), only wasteful.
struct RollUpLock(std::path::PathBuf);

impl RollUpLock {
    fn take(dir: &Path) -> Result<Option<RollUpLock>> {
        let path = dir.join("git-agent-roll-up.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Some(RollUpLock(path))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if !stale {
                        return Ok(None);
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Ok(None)
    }
}

impl Drop for RollUpLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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

    fn blob(repo: &gix::Repository, content: &[u8]) -> Object {
        let id = gix::objs::compute_hash(repo.object_hash(), Kind::Blob, content).unwrap();
        Object {
            kind: Kind::Blob,
            data: content.to_vec(),
            id,
        }
    }

    fn packs(repo: &gix::Repository) -> Vec<String> {
        let dir = repo.objects.store_ref().path().join("pack");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".idx"))
            .collect();
        names.sort();
        names
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn small_packs_roll_up_into_one_that_git_reads() {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init(dir.path()).unwrap();
        let objects_dir = repo.objects.store_ref().path().to_path_buf();
        let mut ids = Vec::new();
        for i in 0..ROLL_UP_FROM - 1 {
            let object = blob(&repo, format!("object {i}").as_bytes());
            ids.push(object.id);
            write(&objects_dir, &[object]).unwrap();
        }
        assert_eq!(roll_up(&repo).unwrap(), 0, "too few packs to merge");
        assert_eq!(packs(&repo).len(), ROLL_UP_FROM - 1);
        let last = blob(&repo, b"the last one");
        ids.push(last.id);
        write(&objects_dir, &[last]).unwrap();
        assert_eq!(roll_up(&repo).unwrap(), ROLL_UP_FROM);
        assert_eq!(packs(&repo).len(), 1);
        assert!(!objects_dir.join("pack/git-agent-roll-up.lock").exists());
        git(dir.path(), &["fsck", "--strict", "--no-dangling"]);
        let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
        let mut check = std::process::Command::new("git")
            .args(["cat-file", "--batch-check"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        check
            .stdin
            .take()
            .unwrap()
            .write_all(list.as_bytes())
            .unwrap();
        let out = String::from_utf8(check.wait_with_output().unwrap().stdout).unwrap();
        assert_eq!(out.lines().filter(|l| l.ends_with(" blob 8")).count(), 10);
        assert!(!out.contains("missing"), "{out}");
        assert_eq!(out.lines().count(), ids.len());
    }

    #[test]
    fn packs_of_deltas_and_kept_packs_are_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init(dir.path()).unwrap();
        // git's own pack, of deltas: two similar versions of one file.
        let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join("f"), &text).unwrap();
        let commit = |message| {
            git(dir.path(), &["add", "f"]);
            let who = ["-c", "user.name=t", "-c", "user.email=t@t"];
            git(
                dir.path(),
                &[&who[..], &["commit", "-qm", message]].concat(),
            );
        };
        commit("one");
        std::fs::write(dir.path().join("f"), format!("{text}one more\n")).unwrap();
        commit("two");
        git(dir.path(), &["repack", "-adq"]);
        let gits = packs(&repo);
        assert_eq!(gits.len(), 1);
        let objects_dir = repo.objects.store_ref().path().to_path_buf();
        let kept = write(&objects_dir, &[blob(&repo, b"kept")]).unwrap();
        std::fs::write(objects_dir.join(format!("pack/pack-{kept}.keep")), "").unwrap();
        for i in 0..ROLL_UP_FROM {
            write(
                &objects_dir,
                &[blob(&repo, format!("object {i}").as_bytes())],
            )
            .unwrap();
        }
        let repo = gix::open(dir.path()).unwrap();
        assert_eq!(roll_up(&repo).unwrap(), ROLL_UP_FROM);
        let after = packs(&repo);
        assert!(after.contains(&gits[0]), "git's pack of deltas is kept");
        assert!(
            after.contains(&format!("pack-{kept}.idx")),
            ".keep is honoured"
        );
        assert_eq!(after.len(), 3);
        git(dir.path(), &["fsck", "--strict"]);
    }

    #[test]
    fn the_geometric_split_merges_what_breaks_the_progression() {
        assert_eq!(geometric_split(&[2; 8]), 8);
        assert_eq!(geometric_split(&[2, 2, 100]), 2);
        assert_eq!(geometric_split(&[2, 4, 8, 16]), 0, "already geometric");
        // Merging the two 2s makes 4, which the 5 above no longer doubles.
        assert_eq!(geometric_split(&[2, 2, 5, 100]), 3);
        assert_eq!(geometric_split(&[]), 0);
        assert_eq!(geometric_split(&[7]), 0);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}

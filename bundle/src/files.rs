//! Reading a bundle as untrusted input: each file the manifest lists is read
//! once, from a regular file inside the bundle directory and within a size
//! bound, hashed, and handed on as those same bytes — nothing is reopened by
//! path after its checksum was verified, so a file swapped during the load
//! cannot slip in.

use crate::digest::Digest;
use crate::exit::ExitPolicy;
use crate::manifest::{check_file_name, limits, sha256_hex, write_bundle_with, BundleError, Manifest, MANIFEST};
use crate::parallel::in_parallel;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A verified bundle in memory: its manifest and the bytes of every file the
/// manifest checksums (the graphs, the tokenizer, vocab.txt, ...).
#[derive(Debug, Clone)]
pub struct BundleFiles {
    pub manifest: Manifest,
    /// Where the bundle came from, for error messages.
    pub origin: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
    /// sha256 of the manifest's own bytes, for the bundle's digest.
    manifest_sha256: String,
}

impl BundleFiles {
    /// Reads the bundle in `dir`: the manifest, then every file it
    /// checksums, each checked against its sha256.
    pub fn read(dir: &Path) -> Result<Self, BundleError> {
        let root = fs::canonicalize(dir).map_err(|error| BundleError::Io { path: dir.to_path_buf(), error })?;
        let manifest_bytes = read_inside(&root, dir, MANIFEST, limits::MANIFEST_BYTES)?;
        let manifest = Manifest::parse(&manifest_bytes, &dir.join(MANIFEST))?;
        let mut files = BTreeMap::new();
        for name in manifest.sha256.keys() {
            files.insert(name.clone(), read_inside(&root, dir, name, limits::FILE_BYTES)?);
        }
        Self::verified(manifest, &manifest_bytes, files, dir)
    }

    /// A bundle given as bytes (a download held in memory, a fuzzer's
    /// input): the same checks as [`BundleFiles::read`], `origin` naming it in errors.
    pub fn from_memory(manifest_json: &[u8], mut files: BTreeMap<String, Vec<u8>>, origin: &Path) -> Result<Self, BundleError> {
        if manifest_json.len() as u64 > limits::MANIFEST_BYTES {
            return Err(too_large(&origin.join(MANIFEST), manifest_json.len() as u64, limits::MANIFEST_BYTES));
        }
        let manifest = Manifest::parse(manifest_json, &origin.join(MANIFEST))?;
        files.retain(|name, _| manifest.sha256.contains_key(name));
        for name in manifest.sha256.keys() {
            match files.get(name) {
                None => {
                    let error = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file in the bundle");
                    return Err(BundleError::Io { path: origin.join(name), error });
                }
                Some(bytes) if bytes.len() as u64 > limits::FILE_BYTES => {
                    return Err(too_large(&origin.join(name), bytes.len() as u64, limits::FILE_BYTES))
                }
                Some(_) => {}
            }
        }
        Self::verified(manifest, manifest_json, files, origin)
    }

    fn verified(manifest: Manifest, manifest_bytes: &[u8], files: BTreeMap<String, Vec<u8>>, origin: &Path) -> Result<Self, BundleError> {
        // Hashing is most of reading a large bundle on a board without SHA
        // instructions (a Pi 4's Cortex-A72 has none): one file per core at a time.
        let contents: Vec<&[u8]> = manifest.sha256.keys().map(|name| files[name].as_slice()).collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for ((name, expected), found) in manifest.sha256.iter().zip(in_parallel(contents, cores, sha256_hex)) {
            if &found != expected {
                return Err(BundleError::Checksum { path: origin.join(name), expected: expected.clone(), found });
            }
        }
        Ok(Self { manifest, origin: origin.to_path_buf(), files, manifest_sha256: sha256_hex(manifest_bytes) })
    }

    /// The verified bytes of `name`, one of the files the manifest checksums.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// Where `name` sits, for error messages.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.origin.join(name)
    }

    /// Rewrites the bundle into `dir` from these verified bytes, with the
    /// manifest changed by `edit` and `reports` (name, bytes) added; other
    /// files already in `dir` that the manifest does not list (earlier
    /// reports) are carried over. The new directory is written beside `dir`
    /// and swapped in whole, so a kill at any point leaves the old bundle or
    /// the new one at the path.
    pub fn rewrite(&self, dir: &Path, reports: &[(&str, Vec<u8>)], edit: impl FnOnce(&mut Manifest)) -> Result<Manifest, BundleError> {
        let reports: Vec<(String, Vec<u8>)> = reports.iter().map(|(n, b)| (n.to_string(), b.clone())).collect();
        Ok(self.rewrite_reporting(dir, edit, |_| reports)?.0)
    }

    /// [`BundleFiles::rewrite`], with the reports made from the new bundle's
    /// digest (so a report can record which bundle it describes); returns the
    /// new manifest and digest.
    pub fn rewrite_reporting(
        &self,
        dir: &Path,
        edit: impl FnOnce(&mut Manifest),
        reports: impl FnOnce(&Digest) -> Vec<(String, Vec<u8>)>,
    ) -> Result<(Manifest, Digest), BundleError> {
        let mut manifest = self.manifest.clone();
        edit(&mut manifest);
        let carried = unlisted_regular_files(dir, &manifest)?;
        let listed: Vec<(&str, &[u8])> = self.files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let mut digest = None;
        let manifest = write_bundle_with(dir, manifest, &listed, |tmp| -> Result<(), BundleError> {
            let new = written_digest(tmp)?;
            let reports = reports(&new);
            for (name, _) in &reports {
                check_file_name(name).map_err(|what| BundleError::Unsafe { path: dir.to_path_buf(), what: format!("report {what}") })?;
            }
            // A report replaces an earlier file of its name.
            let carried = carried.iter().filter(|(n, _)| !reports.iter().any(|(r, _)| r == n));
            for (name, bytes) in reports.iter().chain(carried) {
                let path = tmp.join(name);
                fs::write(&path, bytes).map_err(|error| BundleError::Io { path, error })?;
            }
            digest = Some(new);
            Ok(())
        })?;
        Ok((manifest, digest.expect("the bundle was written")))
    }
}

/// The digest of a bundle this process has just written into `dir` (its
/// manifest holds the checksums the writer computed), from the manifest
/// alone: the files are not read and hashed a second time. A bundle from
/// elsewhere is read with [`BundleFiles::read`], which verifies every file.
pub fn written_digest(dir: &Path) -> Result<Digest, BundleError> {
    let root = fs::canonicalize(dir).map_err(|error| BundleError::Io { path: dir.to_path_buf(), error })?;
    let bytes = read_inside(&root, dir, MANIFEST, limits::MANIFEST_BYTES)?;
    let manifest = Manifest::parse(&bytes, &dir.join(MANIFEST))?;
    Ok(Digest::of_listing(&sha256_hex(&bytes), &manifest.sha256))
}

impl BundleFiles {
    /// The bundle's digest: one sha256 over the manifest and every file it
    /// names (see [`crate::digest`]). The files' hashes are the manifest's,
    /// which every file was verified against.
    pub fn digest(&self) -> Digest {
        Digest::of_listing(&self.manifest_sha256, &self.manifest.sha256)
    }

    /// Refuses the bundle unless its digest is `expected`, naming both.
    pub fn check_digest(&self, expected: &Digest) -> Result<(), BundleError> {
        let found = self.digest();
        if &found != expected {
            return Err(BundleError::Digest { path: self.origin.clone(), expected: expected.to_string(), found: found.to_string() });
        }
        Ok(())
    }
}

impl Manifest {
    /// Reads and checks a bundle's manifest: version, consistency, and the
    /// sha256 of every file it lists (see [`BundleFiles`], which also keeps
    /// the verified bytes).
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        Ok(BundleFiles::read(dir)?.manifest)
    }
}

/// Replaces the bundle's default exit policy (what `classify` uses without a
/// policy flag), recording why in the provenance, and adds the reports made
/// from the new bundle's digest beside it; the bundle is rewritten whole (see
/// [`BundleFiles::rewrite_reporting`]). Returns the new manifest and digest.
/// A policy the bundle's exits cannot run is refused by the manifest's checks.
pub fn set_default_policy(
    dir: &Path,
    policy: ExitPolicy,
    why: &str,
    reports: impl FnOnce(&Digest) -> Vec<(String, Vec<u8>)>,
) -> Result<(Manifest, Digest), BundleError> {
    let bundle = BundleFiles::read(dir)?;
    let edit = |m: &mut Manifest| {
        m.default_policy = policy;
        m.provenance.insert("default_policy".into(), why.to_string());
    };
    bundle.rewrite_reporting(dir, edit, reports)
}

/// Regular files of `dir` that the manifest does not name (small reports
/// written by earlier stages), with their bytes.
fn unlisted_regular_files(dir: &Path, m: &Manifest) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    if !dir.exists() {
        return Ok(Vec::new()); // a new bundle: nothing to carry over
    }
    let root = fs::canonicalize(dir).map_err(|error| BundleError::Io { path: dir.to_path_buf(), error })?;
    let entries = fs::read_dir(&root).map_err(|error| BundleError::Io { path: dir.to_path_buf(), error })?;
    let mut carried = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else { continue };
        let listed = name == MANIFEST || m.sha256.contains_key(&name);
        if listed || check_file_name(&name).is_err() || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        carried.push((name.clone(), read_inside(&root, dir, &name, limits::MANIFEST_BYTES)?));
    }
    Ok(carried)
}

fn too_large(path: &Path, size: u64, limit: u64) -> BundleError {
    BundleError::Unsafe { path: path.to_path_buf(), what: format!("{size} bytes, over the {limit}-byte limit") }
}

/// Reads `name` from the bundle whose canonical directory is `root` (`dir` as
/// the user gave it, for messages): the name must resolve inside `root`
/// (a link may point elsewhere in the bundle, not out of it), to a regular
/// file of at most `limit` bytes. Opened without blocking, so a FIFO put in
/// a file's place cannot hang the load, and checked on the open handle, so
/// what is checked is what is read.
fn read_inside(root: &Path, dir: &Path, name: &str, limit: u64) -> Result<Vec<u8>, BundleError> {
    let shown = dir.join(name);
    let refused = |what: &str| BundleError::Unsafe { path: shown.clone(), what: what.to_string() };
    let io = |error| BundleError::Io { path: shown.clone(), error };
    let real = fs::canonicalize(root.join(name)).map_err(io)?;
    if real.parent() != Some(root) {
        return Err(refused("resolves outside the bundle directory"));
    }
    let mut file = open_no_block(&real).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(refused("not a regular file"));
    }
    if meta.len() > limit {
        return Err(too_large(&shown, meta.len(), limit));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The size can change between the check and the read: bound the read too.
    (&mut file).take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(&shown, bytes.len() as u64, limit));
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_no_block(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path)
}

#[cfg(not(unix))]
fn open_no_block(path: &Path) -> std::io::Result<fs::File> {
    fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_on_all_cores_gives_each_file_its_own_hash_in_order() {
        let items: Vec<Vec<u8>> = (0..40).map(|i| if i % 7 == 0 { Vec::new() } else { vec![i as u8; i * 1000] }).collect();
        let slices: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        let one_by_one: Vec<String> = slices.iter().map(|b| sha256_hex(b)).collect();
        assert_eq!(in_parallel(slices, 4, sha256_hex), one_by_one);
        assert!(in_parallel(Vec::<&[u8]>::new(), 4, sha256_hex).is_empty());
    }
}

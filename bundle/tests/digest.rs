//! The bundle digest pins exactly one bundle: recomputable with `sha256sum`,
//! and changed by any byte of any file (the manifest included) or by two
//! files trading places, even when the manifest is resealed to match.

use bundle::manifest::{write_bundle, BundleError, Manifest};
use bundle::{BundleFiles, Digest};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle")
}

fn parts() -> (Manifest, Vec<(String, Vec<u8>)>) {
    let b = BundleFiles::read(&fixture()).unwrap();
    let files = b.manifest.sha256.keys().map(|f| (f.clone(), b.bytes(f).unwrap().to_vec())).collect();
    (b.manifest, files)
}

/// Writes a resealed copy (fresh checksums for whatever the files now hold) and returns its digest.
fn resealed_digest(dir: &Path, manifest: Manifest, files: &[(String, Vec<u8>)]) -> Digest {
    write_bundle(dir, manifest, files).unwrap();
    BundleFiles::read(dir).unwrap().digest()
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn the_digest_is_the_sha256_of_the_sha256sum_listing() {
    let dir = fixture();
    let b = BundleFiles::read(&dir).unwrap();
    let mut listing = format!("{}  manifest.json\n", hex_sha256(&std::fs::read(dir.join("manifest.json")).unwrap()));
    let mut names: Vec<&String> = b.manifest.sha256.keys().collect();
    names.sort(); // byte order, as `jq -r '.sha256 | keys[]'` lists them
    for name in names {
        listing += &format!("{}  {name}\n", hex_sha256(&std::fs::read(dir.join(name)).unwrap()));
    }
    assert_eq!(b.digest().to_string(), hex_sha256(listing.as_bytes()));
    b.check_digest(&b.digest()).unwrap();
}

#[test]
fn a_changed_byte_in_any_file_changes_the_digest_and_is_refused_naming_both() {
    let pinned = BundleFiles::read(&fixture()).unwrap().digest();
    let tmp = tempfile::tempdir().unwrap();
    let (manifest, files) = parts();
    for i in 0..files.len() {
        let mut changed = files.clone();
        let bytes = &mut changed[i].1;
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        let dir = tmp.path().join(format!("byte-{i}"));
        write_bundle(&dir, manifest.clone(), &changed).unwrap();
        let b = BundleFiles::read(&dir).unwrap(); // resealed: every checksum matches
        let e = b.check_digest(&pinned).unwrap_err();
        let shown = e.to_string();
        assert!(matches!(e, BundleError::Digest { .. }), "{} changed: {shown}", changed[i].0);
        assert!(shown.contains(&pinned.to_string()) && shown.contains(&b.digest().to_string()), "{shown}");
        assert!(shown.contains(&dir.display().to_string()), "{shown}");
    }
}

#[test]
fn a_manifest_edited_to_stay_self_consistent_is_refused() {
    let pinned = BundleFiles::read(&fixture()).unwrap().digest();
    let tmp = tempfile::tempdir().unwrap();
    let (manifest, files) = parts();
    type Edit = (&'static str, fn(&mut Manifest));
    let edits: [Edit; 3] = [
        ("labels swapped", |m| m.labels.reverse()),
        ("max_seq_len lowered", |m| m.max_seq_len -= 1),
        ("provenance note", |m| {
            m.provenance.insert("note".into(), "copied".into());
        }),
    ];
    for (what, edit) in edits {
        let mut m = manifest.clone();
        edit(&mut m);
        let dir = tmp.path().join(what.replace(' ', "-"));
        let found = resealed_digest(&dir, m, &files);
        assert_ne!(found, pinned, "{what}");
        let e = BundleFiles::read(&dir).unwrap().check_digest(&pinned).unwrap_err().to_string();
        assert!(e.contains(&pinned.to_string()) && e.contains(&found.to_string()), "{what}: {e}");
    }
}

#[test]
fn two_files_trading_places_change_the_digest() {
    let pinned = BundleFiles::read(&fixture()).unwrap().digest();
    let tmp = tempfile::tempdir().unwrap();
    let (manifest, files) = parts();
    let find = |name: &str| files.iter().position(|(n, _)| n == name).unwrap();
    let (a, b) = (find("layer_00.onnx"), find("layer_01.onnx"));
    let mut swapped = files.clone();
    let (x, y) = (swapped[a].1.clone(), swapped[b].1.clone());
    (swapped[a].1, swapped[b].1) = (y, x);
    let found = resealed_digest(&tmp.path().join("swapped"), manifest.clone(), &swapped);
    assert_ne!(found, pinned);
    // Written back unchanged, it is the same bundle again.
    assert_eq!(resealed_digest(&tmp.path().join("same"), manifest, &files), pinned);
}

#[test]
fn the_digest_of_a_bundle_just_written_is_the_verified_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (manifest, files) = parts();
    let dir = tmp.path().join("written");
    write_bundle(&dir, manifest, &files).unwrap();
    assert_eq!(bundle::files::written_digest(&dir).unwrap(), BundleFiles::read(&dir).unwrap().digest());
}

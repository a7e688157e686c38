//! A bundle's digest: one sha256 that pins the manifest and every file it
//! names, so a deployment can refuse any bundle but the one it tested. No
//! check inside a bundle can catch a manifest edited to stay self-consistent
//! (labels swapped, layer files swapped, `max_seq_len` lowered), because the
//! manifest holds the checksums; the digest, kept outside the bundle, does.
//!
//! It is the sha256 of the `sha256sum` listing of `manifest.json` followed by
//! every file the manifest checksums, in the manifest's (byte-wise sorted)
//! order, so standard tools recompute it:
//!
//! ```text
//! cd BUNDLE && sha256sum manifest.json $(jq -r '.sha256 | keys[]' manifest.json) | sha256sum
//! ```

use crate::manifest::MANIFEST;
use std::fmt;
use std::str::FromStr;

/// A sha256, written and parsed as 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for Digest {
    type Err = String;

    /// 64 hex digits (either case; surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(s, &mut bytes) {
            Ok(()) => Ok(Self(bytes)),
            Err(_) => Err(format!("{s:?} is not a bundle digest (64 hex digits, as `edge-runtime inspect` prints)")),
        }
    }
}

impl Digest {
    /// The digest of a bundle whose manifest's own bytes hash to
    /// `manifest_sha256` and whose files hash to `files` (name → sha256 hex,
    /// in the manifest's order).
    pub fn of_listing<'a>(manifest_sha256: &str, files: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut listing = format!("{manifest_sha256}  {MANIFEST}\n");
        for (name, sum) in files {
            listing.push_str(&format!("{sum}  {name}\n"));
        }
        Digest(<sha2::Sha256 as sha2::Digest>::digest(listing.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_reads_back_what_it_prints_and_refuses_anything_else() {
        let d = Digest([0xab; 32]);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.to_string().to_uppercase().parse::<Digest>().unwrap(), d);
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
            let e = bad.parse::<Digest>().unwrap_err();
            assert!(e.contains("not a bundle digest"), "{e}");
        }
    }
}

//! Manifest bytes: parsing and every field check. Never a panic; a manifest
//! that passes obeys the limits the runtime relies on.
#![no_main]

use bundle::manifest::{limits, Manifest};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data, Path::new("manifest.json")) {
        assert!(m.num_layers >= 1 && m.num_layers <= limits::LAYERS);
        assert!(m.max_seq_len >= 3 && m.hidden_size >= 1);
        assert!(m.files().iter().all(|f| bundle::manifest::check_file_name(f).is_ok()));
    }
});

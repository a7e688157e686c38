//! Where a bundle's load goes, phase by phase, over a few rounds:
//!
//!     cargo run --release -p edge-runtime --example load_phases -- BUNDLE [ROUNDS] [TEXT]
//!
//! read + verify (every file read and its sha256 checked; the hashing alone
//! too), for an NNEF twin the parse of each archive's `graph.nnef` text by
//! tract's parser, then the whole build (parse, check, optimize, dry run) and
//! the time to the first answer (load + one text under the bundle's default
//! policy), on one thread and on all cores, with every plan built at load and
//! with lazy plans (`--lazy-plans`), and the layers each had planned by then.

use std::time::Instant;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The `graph.nnef` text of each NNEF archive of the bundle.
fn nnef_texts(bundle: &bundle::BundleFiles) -> Vec<String> {
    let graphs = bundle.manifest.graphs();
    let archives = graphs.iter().filter(|g| g.ends_with(".nnef.tar")).filter_map(|g| bundle.bytes(g));
    archives
        .filter_map(|bytes| {
            let mut archive = tar::Archive::new(bytes);
            let mut entries = archive.entries().ok()?;
            entries.find_map(|e| {
                let mut e = e.ok()?;
                let is_graph = e.path().ok()?.to_str()? == "graph.nnef";
                let mut text = String::new();
                (is_graph && std::io::Read::read_to_string(&mut e, &mut text).is_ok()).then_some(text)
            })
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("usage: load_phases BUNDLE [ROUNDS] [TEXT]"))?);
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let args_text = args.next().unwrap_or_else(|| "很好".to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for round in 1..=rounds {
        let t = Instant::now();
        let bundle = bundle::BundleFiles::read(&dir)?;
        let read = ms(t);
        let t = Instant::now();
        for name in bundle.manifest.sha256.keys() {
            std::hint::black_box(bundle::manifest::sha256_hex(bundle.bytes(name).unwrap_or_default()));
        }
        let hashing = ms(t);
        let texts = nnef_texts(&bundle);
        let t = Instant::now();
        for text in &texts {
            tract_nnef::ast::parse::parse_document(text)?;
        }
        let parse = ms(t);
        let mut builds = Vec::new();
        let text = args_text.as_str();
        for (lazy_plans, threads) in [(false, 1), (false, cores), (true, 1), (true, cores)] {
            let options = edge_runtime::LoadOptions { load_threads: threads, lazy_plans, ..Default::default() };
            let t = Instant::now();
            let model = edge_runtime::EdgeClassifier::from_bundle_with_options(&bundle, options)?;
            let load = ms(t);
            let answer = model.classify(text, model.manifest.default_policy)?;
            builds.push(format!(
                "{} on {threads} thread(s): load {load:.1} ms, first answer at {:.1} ms (exit after layer {}, {} of {} layers planned)",
                if lazy_plans { "lazy" } else { "eager" },
                ms(t),
                answer.exit_layer,
                model.layers_planned(),
                model.manifest.num_layers
            ));
        }
        println!(
            "round {round}: read + verify {read:.1} ms (hashing one by one {hashing:.1} ms); {} graph.nnef texts parsed in {parse:.1} ms; {}",
            texts.len(),
            builds.join(", ")
        );
    }
    Ok(())
}

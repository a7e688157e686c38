//! What the stages' command lines share.

/// Ends a CLI run: an error is printed with its causes and exits 1; a closed
/// stdout (`| head`) is the reader's choice and exits 0 quietly.
pub fn exit_with(result: anyhow::Result<()>) {
    if let Err(e) = result {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return;
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

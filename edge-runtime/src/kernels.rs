//! What tract runs on this CPU: the instruction-set features it detected and
//! the matrix-multiply kernels those allow (NEON / fp16 / dot-product on ARM,
//! AVX2 / FMA / AVX-512 on x86), for `edge-runtime --version --verbose`.

use tract_linalg::isa::native;
use tract_linalg::mmm_routines::runnable_for;

pub fn describe() -> String {
    let isa = native();
    let mut s = format!("target: {} {}\n", std::env::consts::ARCH, std::env::consts::OS);
    s += &format!("cpu features tract detected: {isa:?}\n");
    let kernels: Vec<String> = runnable_for(&isa).iter().map(|k| k.name().to_string()).collect();
    s += &format!("matrix kernels usable here ({}):\n", kernels.len());
    for k in kernels {
        s += &format!("  {k}\n");
    }
    s
}

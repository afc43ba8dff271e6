// Measured by bench/variants.sh ("no runtime start-up"): -0.04 to -0.07 ms.
// Not adopted; a drop-in src/main.rs if the lead wants it.
#![no_main]

/// C's main: std's runtime start-up is skipped; args still work (glibc hands
/// them to std through .init_array). process::exit flushes stdout.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // Keep std's behaviour for writes to a closed pipe: an error, not a signal.
    unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN) };
    std::process::exit(courier_run::cli::main())
}

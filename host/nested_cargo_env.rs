// Shared by host/build.rs and tests/e2e/newcomer.rs (through `include!`), the two places
// that run a nested `cargo build --target wasm32-wasip2`.

/// Variables of the outer build that must not reach a nested wasm build: flags meant for
/// the host (coverage, sanitizers), compiler wrappers, a forced target.
const HOST_ONLY_BUILD_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
];

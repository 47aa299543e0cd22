//! Built-in modules: the shipped guest modules, built for wasm32-wasip2 by `host/build.rs`
//! and embedded in the binary. A file of the same module name in a personality's
//! `modules/` folder takes precedence.

include!(concat!(env!("OUT_DIR"), "/builtin_modules.rs"));

/// The component bytes of the built-in module `name`.
pub fn get(name: &str) -> Option<&'static [u8]> {
    BUILTIN_MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of all built-in modules.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN_MODULES.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn echo_is_built_in_and_is_a_component() {
        let echo = super::get("echo").expect("echo is shipped");
        // A component's preamble: magic, then version 0x0d and layer 1.
        assert_eq!(&echo[..8], b"\0asm\x0d\0\x01\0");
    }
}

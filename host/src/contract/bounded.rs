//! A `list<string>` a guest export returns, lifted within bounds the host sets.
//!
//! wasmtime lifts a `list<string>` into a `Vec<String>` by copying every string, and the
//! canonical ABI lets every entry point at the same bytes: a million entries over one
//! 16 MiB buffer would be 16 TiB of host memory for a single call, before the host sees
//! any of it. An export's result cannot be read lazily instead (`WasmList`): the guest's
//! `post-return` runs, and frees it, before the call returns to the host. So this type
//! lifts itself: it reads the list's entries straight from guest memory and copies at
//! most `LINES` strings of at most `BYTES` bytes each.
//!
//! It implements wasmtime's lifting traits by hand, through their hidden items (the same
//! ones `#[derive(Lift)]` uses), for the wasmtime version in `Cargo.lock`.

use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};
use wasmtime::{Result, bail};

/// The first `LINES` strings of a `list<string>`, each cut to `BYTES` bytes (on a
/// character boundary).
#[derive(Debug, Clone, PartialEq)]
pub struct BoundedLines<const LINES: usize, const BYTES: usize>(pub Vec<String>);

// SAFETY: the ABI and lowered form are those of `list<string>` (`[T]`'s, which this
// delegates to), and the type check accepts only `list<string>`.
unsafe impl<const LINES: usize, const BYTES: usize> ComponentType for BoundedLines<LINES, BYTES> {
    type Lower = <[String] as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <[String] as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <[String] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads only through `cx.memory()`, bounds-checking every pointer and length.
unsafe impl<const LINES: usize, const BYTES: usize> Lift for BoundedLines<LINES, BYTES> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        src: &Self::Lower,
    ) -> Result<Self> {
        let [ptr, len] = src;
        Self::read(cx, ptr.get_u32() as usize, len.get_u32() as usize)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        bytes: &[u8],
    ) -> Result<Self> {
        let ptr = u32::from_le_bytes(bytes[..4].try_into()?) as usize;
        let len = u32::from_le_bytes(bytes[4..8].try_into()?) as usize;
        Self::read(cx, ptr, len)
    }
}

/// Set in a compact-UTF-16 string's length when it holds UTF-16 rather than Latin-1.
const UTF16_TAG: usize = 1 << 31;

impl<const LINES: usize, const BYTES: usize> BoundedLines<LINES, BYTES> {
    /// The list of `len` (pointer, length) pairs at `ptr`.
    fn read(cx: &mut LiftContext<'_>, ptr: usize, len: usize) -> Result<Self> {
        let encoding = cx.options().string_encoding;
        let memory = cx.memory();
        let entries = slice(memory, ptr, len.checked_mul(8), 4, "list")?;
        let lines = entries
            .chunks_exact(8)
            .take(LINES)
            .map(|entry| {
                let ptr = u32::from_le_bytes(entry[..4].try_into().unwrap()) as usize;
                let len = u32::from_le_bytes(entry[4..].try_into().unwrap()) as usize;
                string_prefix(memory, encoding, ptr, len, BYTES)
            })
            .collect::<Result<_>>()?;
        Ok(BoundedLines(lines))
    }
}

/// `memory[ptr..ptr + len]`, checked as the canonical ABI requires.
fn slice<'a>(
    memory: &'a [u8],
    ptr: usize,
    len: Option<usize>,
    align: usize,
    what: &str,
) -> Result<&'a [u8]> {
    if !ptr.is_multiple_of(align) {
        bail!("{what} pointer not aligned to {align}");
    }
    match len.and_then(|len| Some((len, ptr.checked_add(len)?))) {
        Some((len, end)) if end <= memory.len() => Ok(&memory[ptr..][..len]),
        _ => bail!("{what} pointer/length out of bounds of memory"),
    }
}

/// At most `max` bytes of the string at `ptr` (`len` code units in `encoding`), as UTF-8.
fn string_prefix(
    memory: &[u8],
    encoding: StringEncoding,
    ptr: usize,
    len: usize,
    max: usize,
) -> Result<String> {
    let (latin1, units) = match encoding {
        StringEncoding::Utf8 => {
            let bytes = slice(memory, ptr, Some(len), 1, "string")?;
            return Ok(utf8_prefix(bytes, max));
        }
        StringEncoding::Utf16 => (false, len),
        StringEncoding::CompactUtf16 if len & UTF16_TAG == 0 => (true, len),
        StringEncoding::CompactUtf16 => (false, len ^ UTF16_TAG),
    };
    if latin1 {
        let bytes = slice(memory, ptr, Some(units), 2, "string")?;
        return Ok(cut(bytes.iter().map(|&b| char::from(b)), max));
    }
    let bytes = slice(memory, ptr, units.checked_mul(2), 2, "string")?;
    let units = bytes
        .chunks_exact(2)
        .map(|unit| u16::from_le_bytes([unit[0], unit[1]]));
    Ok(cut(
        char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)),
        max,
    ))
}

/// The longest prefix of `bytes` of at most `max` bytes ending on a character boundary,
/// invalid UTF-8 replaced.
fn utf8_prefix(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    // Three more bytes finish a character the bound cuts.
    let end = bytes.len().min(max + 3);
    crate::text::truncate(&String::from_utf8_lossy(&bytes[..end]), max).to_string()
}

/// The characters of `chars` that fit in `max` bytes of UTF-8.
fn cut(chars: impl Iterator<Item = char>, max: usize) -> String {
    let mut text = String::new();
    for c in chars {
        if text.len() + c.len_utf8() > max {
            break;
        }
        text.push(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_on_a_character_boundary_within_the_bound() {
        assert_eq!(utf8_prefix(b"short", 200), "short");
        assert_eq!(utf8_prefix("aé".repeat(100).as_bytes(), 4), "aéa");
        assert_eq!(utf8_prefix(&[b'a', 0xff, b'b', b'c'], 5), "a\u{fffd}bc");
        assert_eq!(utf8_prefix(&[b'a', 0xff, b'b', b'c', b'd'], 3), "a");
        let utf16: Vec<u8> = "héllo".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(
            string_prefix(&utf16, StringEncoding::Utf16, 0, 5, 3).unwrap(),
            "hé"
        );
        assert_eq!(
            string_prefix(b"latin", StringEncoding::CompactUtf16, 0, 5, 200).unwrap(),
            "latin"
        );
        assert!(string_prefix(b"abc", StringEncoding::Utf8, 1, 5, 200).is_err());
    }
}

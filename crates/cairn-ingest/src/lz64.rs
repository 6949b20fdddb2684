//! lz-string's base64 transport (`compression=lz64`, sent by older
//! posthog-js), decompressed with a bound on the output.
//!
//! Why not the `lz-str` crate's decoder: it has no output bound, and it keeps
//! every dictionary entry as its own `Vec`. A stream whose every code names
//! the entry being defined ("w + w[0]") makes entries one unit longer each
//! time, so n codes expand to n²/2 units, held twice: a few hundred KB become
//! gigabytes before any caller can look at the size. This decoder stops as
//! soon as the output would pass its bound, and stores each dictionary entry
//! as a range of the output it already wrote (every entry is an earlier
//! output run, or that run plus the unit written right after it), so its
//! memory stays proportional to the bounded output. It reads exactly what
//! lz-str writes: the tests check it against `lz_str::compress_to_base64` and
//! against `lz_str::decompress_from_base64` on arbitrary input.

use thiserror::Error;

/// lz-string's base64 alphabet; `=` (64) pads and reads as zero bits.
const KEY: &[u8; 65] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
/// Each byte's value in [`KEY`], or `NOT_IN_KEY`.
const VALUES: [u8; 256] = {
    let mut values = [NOT_IN_KEY; 256];
    let mut i = 0;
    while i < KEY.len() {
        values[KEY[i] as usize] = i as u8;
        i += 1;
    }
    values
};
const NOT_IN_KEY: u8 = u8::MAX;
/// Bits carried by one base64 character.
const BITS_PER_CHAR: u32 = 6;
const CODE_U8: u32 = 0;
const CODE_U16: u32 = 1;
const CODE_END: u32 = 2;
/// Output units held before growing to the bound: most payloads fit.
const FIRST_BUFFER_UNITS: usize = 1 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Lz64Error {
    #[error("the data is not an lz-string stream")]
    Invalid,
    #[error("the decompressed data exceeds {0} UTF-16 units")]
    TooLarge(usize),
}

/// Decompresses lz-string base64 text into UTF-16 units, refusing to
/// produce more than `max_units`. Characters outside the alphabet are
/// skipped, as lz-string does.
pub fn decompress_from_base64(text: &[u8], max_units: usize) -> Result<Vec<u16>, Lz64Error> {
    let values = text
        .iter()
        .map(|&b| VALUES[b as usize])
        .filter(|&v| v != NOT_IN_KEY)
        .map(u32::from);
    Decoder::new(max_units).run(values)
}

/// Reads codes of a growing width, least significant bit first, from 6-bit
/// values taken most significant bit first.
struct Bits<I> {
    values: I,
    value: u32,
    /// The bit of `value` read next.
    mask: u32,
}

impl<I: Iterator<Item = u32>> Bits<I> {
    /// `None` for an empty input.
    fn new(mut values: I) -> Option<Self> {
        let value = values.next()?;
        Some(Self {
            values,
            value,
            mask: 1 << (BITS_PER_CHAR - 1),
        })
    }

    /// Like lz-string, fetches the next character as soon as one is used
    /// up, so a stream must not end right after its last bit.
    fn bit(&mut self) -> Result<u32, Lz64Error> {
        let bit = u32::from(self.value & self.mask != 0);
        self.mask >>= 1;
        if self.mask == 0 {
            self.mask = 1 << (BITS_PER_CHAR - 1);
            self.value = self.values.next().ok_or(Lz64Error::Invalid)?;
        }
        Ok(bit)
    }

    fn read(&mut self, width: u32) -> Result<u32, Lz64Error> {
        let mut code = 0;
        for position in 0..width {
            code |= self.bit()? << position;
        }
        Ok(code)
    }
}

struct Decoder {
    max_units: usize,
    out: Vec<u16>,
    /// Entry `i` is `out[start..start + len]` as `(start, len)`; entries
    /// 0..3 are the control codes and never read. `u32` halves the memory
    /// of a stream of tiny entries; the output bound keeps offsets below it.
    dictionary: Vec<(u32, u32)>,
}

impl Decoder {
    fn new(max_units: usize) -> Self {
        Self {
            max_units: max_units.min(u32::MAX as usize),
            out: Vec::new(),
            dictionary: vec![(0, 0); 3],
        }
    }

    fn run(mut self, values: impl Iterator<Item = u32>) -> Result<Vec<u16>, Lz64Error> {
        let Some(mut bits) = Bits::new(values) else {
            return Ok(Vec::new());
        };
        let first = match bits.read(2)? {
            CODE_U8 => bits.read(8)?,
            CODE_U16 => bits.read(16)?,
            CODE_END => return Ok(Vec::new()),
            _ => return Err(Lz64Error::Invalid),
        };
        self.push(first)?;
        self.dictionary.push((0, 1));
        // The previous entry, as a range of `out`.
        let mut previous: (u32, u32) = (0, 1);
        let mut width = 3;
        let mut enlarge_in: u64 = 4;
        loop {
            let code = bits.read(width)?;
            let start = self.out.len() as u32;
            let len = match code {
                CODE_U8 | CODE_U16 => {
                    let unit = bits.read(if code == CODE_U8 { 8 } else { 16 })?;
                    self.push(unit)?;
                    self.dictionary.push((start, 1));
                    enlarge_in -= 1;
                    if enlarge_in == 0 {
                        enlarge_in = 1 << width;
                        width += 1;
                    }
                    1
                }
                CODE_END => return Ok(self.out),
                code => {
                    let code = code as usize;
                    let (from, len) = if code < self.dictionary.len() {
                        self.dictionary[code]
                    } else if code == self.dictionary.len() {
                        // The entry being defined: previous + its first unit.
                        (previous.0, previous.1 + 1)
                    } else {
                        return Err(Lz64Error::Invalid);
                    };
                    self.reserve(len as usize)?;
                    let (from, len) = (from as usize, len as usize);
                    // The entry being defined ends with its own first unit,
                    // which the copy of the rest has just written.
                    let written = len.min(self.out.len() - from);
                    self.out.extend_from_within(from..from + written);
                    if written < len {
                        self.out.push(self.out[from]);
                    }
                    len as u32
                }
            };
            // The previous entry plus this entry's first unit, which `out`
            // holds right after the previous entry.
            self.dictionary.push((previous.0, previous.1 + 1));
            enlarge_in -= 1;
            previous = (start, len);
            if enlarge_in == 0 {
                enlarge_in = 1 << width;
                width += 1;
            }
            // Codes wider than 31 bits need more entries than any bounded
            // output can define.
            if width > 31 {
                return Err(Lz64Error::Invalid);
            }
        }
    }

    /// Makes room for `units` more. Past a first small buffer the output
    /// grows to the bound in one step: growing by doubling would leave each
    /// outgrown buffer with the allocator of the decoding thread, several
    /// times the bound in all, and only the touched part of the one big
    /// buffer becomes resident.
    fn reserve(&mut self, units: usize) -> Result<(), Lz64Error> {
        let needed = self.out.len().saturating_add(units);
        if needed > self.max_units {
            return Err(Lz64Error::TooLarge(self.max_units));
        }
        if needed > self.out.capacity() {
            let capacity = if needed <= FIRST_BUFFER_UNITS {
                FIRST_BUFFER_UNITS
            } else {
                self.max_units
            };
            self.out
                .reserve_exact(capacity.min(self.max_units) - self.out.len());
        }
        Ok(())
    }

    fn push(&mut self, unit: u32) -> Result<(), Lz64Error> {
        self.reserve(1)?;
        self.out.push(unit as u16);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(text: &str) -> Result<Vec<u16>, Lz64Error> {
        decompress_from_base64(text.as_bytes(), usize::MAX)
    }

    /// lz-string's bit writer, to build streams lz-str's compressor never
    /// writes: a code naming the entry being defined, again and again.
    fn bomb(codes: usize) -> String {
        let mut chars = Vec::new();
        let (mut buffer, mut filled) = (0u8, 0);
        let mut write = |width: u32, value: u32| {
            for position in 0..width {
                buffer = (buffer << 1) | ((value >> position) & 1) as u8;
                filled += 1;
                if filled == 6 {
                    chars.push(KEY[buffer as usize]);
                    (buffer, filled) = (0, 0);
                }
            }
        };
        write(2, CODE_U8);
        write(8, u32::from(b'a'));
        let (mut entries, mut width, mut enlarge_in) = (4u32, 3, 4u64);
        for _ in 0..codes {
            write(width, entries);
            entries += 1;
            enlarge_in -= 1;
            if enlarge_in == 0 {
                enlarge_in = 1 << width;
                width += 1;
            }
        }
        write(width, CODE_END);
        write(6, 0);
        String::from_utf8(chars).unwrap()
    }

    #[test]
    fn known_streams() {
        let text = "hello, hello, hello lz-string";
        let units: Vec<u16> = text.encode_utf16().collect();
        assert_eq!(decode(&lz_str::compress_to_base64(text)), Ok(units));
        assert_eq!(decode(""), Ok(vec![]));
        assert_eq!(decode("w"), Err(Lz64Error::Invalid));
    }

    #[test]
    fn a_bomb_stops_at_the_bound() {
        // 20,000 codes would expand to 200 million units.
        let big = bomb(20_000);
        assert!(big.len() < 60_000, "{} bytes", big.len());
        assert_eq!(
            decompress_from_base64(big.as_bytes(), 1_000_000),
            Err(Lz64Error::TooLarge(1_000_000))
        );
        // Small enough to check against lz-str.
        let small = bomb_output(300);
        assert_eq!(decode(&bomb(300)).unwrap(), small);
        assert_eq!(lz_str::decompress_from_base64(&bomb(300)).unwrap(), small);
    }

    fn bomb_output(codes: usize) -> Vec<u16> {
        let total = (codes + 1) * (codes + 2) / 2;
        vec![u16::from(b'a'); total]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn round_trips_what_lz_str_compresses(text in "\\PC{0,300}|[ab{}\":,]{0,2000}") {
            let units: Vec<u16> = text.encode_utf16().collect();
            let compressed = lz_str::compress_to_base64(text.as_str());
            prop_assert_eq!(decode(&compressed), Ok(units.clone()));
            if !units.is_empty() {
                prop_assert_eq!(
                    decompress_from_base64(compressed.as_bytes(), units.len() - 1),
                    Err(Lz64Error::TooLarge(units.len() - 1))
                );
            }
        }

        #[test]
        fn reads_arbitrary_text_as_lz_str_does(text in "[A-Za-z0-9+/= %-]{0,120}") {
            let theirs = lz_str::decompress_from_base64(&text);
            prop_assert_eq!(decode(&text).ok(), theirs);
        }
    }
}

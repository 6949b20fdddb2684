//! How PostHog's SDKs wrap a request body, undone: form-encoded `data=`,
//! base64 (said or not), gzip (by hint or by magic bytes), lz-string base64,
//! and `?data=` on GET. Capture and `/flags` share these transports; what the
//! JSON inside means is theirs.

use std::io::Read;

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine;

use crate::lz64::Lz64Error;
use crate::CaptureError;

/// Decompressed payloads are capped too, checked while decompressing, so
/// that a small gzip or lz64 bomb cannot inflate into gigabytes.
pub(crate) const MAX_DECOMPRESSED_BYTES: usize = 20 * 1024 * 1024;
/// Plain JSON bodies up to this size are cheap enough to decode in place.
const CHEAP_JSON_BYTES: usize = 256 * 1024;

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A request body and what its query and headers say about its wrapping.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transport<'a> {
    pub body: &'a [u8],
    /// `?data=`: the payload itself, in place of the body (legacy GET).
    pub data: Option<&'a str>,
    /// `?compression=`.
    pub compression: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Compression {
    Gzip,
    Lz64,
    Base64,
    None,
}

impl Compression {
    fn from_hint(hint: &str) -> Self {
        match hint.trim().to_ascii_lowercase().as_str() {
            "gzip" | "gzip-js" => Self::Gzip,
            "lz64" | "lz-string" => Self::Lz64,
            "base64" | "b64" => Self::Base64,
            _ => Self::None,
        }
    }
}

impl Transport<'_> {
    /// Whether decoding is as cheap as reading the body once: a small plain
    /// JSON body without any compression or encoding hint. Anything else
    /// (gzip, lz64, base64, forms, `?data=`, large bodies) may cost tens of
    /// milliseconds of CPU up to the decompression bound, so callers run it
    /// off their async workers.
    pub fn is_cheap_to_decode(&self) -> bool {
        self.body.len() <= CHEAP_JSON_BYTES
            && self.data.is_none()
            && self.compression.is_none()
            && self.content_encoding.is_none()
            && !is_form(self.content_type)
            && matches!(self.body.trim_ascii_start().first(), Some(b'{' | b'['))
    }

    /// The JSON text inside, every wrapping undone. `unwrap_base64_again`:
    /// legacy paths (and `/flags`) accept a payload still base64 after that.
    pub(crate) fn decode(&self, unwrap_base64_again: bool) -> Result<Vec<u8>, CaptureError> {
        let from_query = self.data.filter(|d| !d.is_empty());
        let mut raw: Vec<u8> = match from_query {
            Some(data) => data.replace(' ', "+").into_bytes(),
            None => self.body.to_vec(),
        };
        if raw.is_empty() {
            return Err(CaptureError::EmptyPayload);
        }

        let mut hint = None;
        if is_form(self.content_type) && from_query.is_none() {
            let (data, compression) = parse_form(&raw)?;
            raw = data.into_bytes();
            hint = compression;
        } else if let Some(decoded) = decode_base64_optimistically(&raw) {
            raw = decoded;
        }

        let compression = hint
            .as_deref()
            .or(self.compression)
            .map(Compression::from_hint)
            .or_else(|| self.content_encoding.map(Compression::from_hint))
            .unwrap_or(Compression::None);

        let mut text = if compression == Compression::Gzip || raw.starts_with(&GZIP_MAGIC) {
            gunzip(&raw)?
        } else if compression == Compression::Lz64 {
            lz64(&raw)?
        } else if compression == Compression::Base64 {
            BASE64.decode(raw.trim_ascii()).map_err(|e| {
                CaptureError::Malformed(format!("body marked base64 does not decode: {e}"))
            })?
        } else {
            raw
        };
        if text.len() > MAX_DECOMPRESSED_BYTES {
            return Err(too_large_decompressed());
        }
        if unwrap_base64_again {
            if let Some(decoded) = decode_base64_optimistically(&text) {
                text = decoded;
            }
        }
        Ok(text)
    }
}

/// A `/flags` or `/decide` body as JSON text: capture's transports, the
/// body only (no `?data=`), a payload still base64 unwrapped once more.
pub fn decode_flags_body(transport: &Transport<'_>) -> Result<Vec<u8>, CaptureError> {
    Transport {
        data: None,
        ..*transport
    }
    .decode(true)
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.trim_start()
            .starts_with("application/x-www-form-urlencoded")
    })
}

fn parse_form(raw: &[u8]) -> Result<(String, Option<String>), CaptureError> {
    let mut data = None;
    let mut compression = None;
    for (key, value) in form_urlencoded::parse(raw) {
        match key.as_ref() {
            // A `+` of base64 arrives as a space when the sender did not escape it.
            "data" => data = Some(value.replace(' ', "+")),
            "compression" => compression = Some(value.into_owned()),
            _ => {}
        }
    }
    match data {
        Some(data) if !data.is_empty() => Ok((data, compression)),
        _ => Err(CaptureError::Malformed(
            "expected form data with a `data` field (Content-Type is application/x-www-form-urlencoded)"
                .into(),
        )),
    }
}

/// posthog-js and older SDKs send base64 without saying so; JSON never looks
/// like base64 because it starts with `{` or `[`.
fn decode_base64_optimistically(raw: &[u8]) -> Option<Vec<u8>> {
    let trimmed = raw.trim_ascii();
    let looks_like_base64 = !trimmed.is_empty()
        && trimmed
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if !looks_like_base64 {
        return None;
    }
    BASE64.decode(trimmed).ok()
}

fn gunzip(raw: &[u8]) -> Result<Vec<u8>, CaptureError> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut decoder = flate2::read::GzDecoder::new(raw).take(MAX_DECOMPRESSED_BYTES as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| CaptureError::Malformed(format!("body is not valid gzip: {e}")))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(too_large_decompressed());
    }
    Ok(out)
}

fn lz64(raw: &[u8]) -> Result<Vec<u8>, CaptureError> {
    let units =
        crate::lz64::decompress_from_base64(raw, MAX_DECOMPRESSED_BYTES).map_err(|error| {
            match error {
                // Every UTF-16 unit is at least one byte of UTF-8.
                Lz64Error::TooLarge(_) => too_large_decompressed(),
                Lz64Error::Invalid => {
                    CaptureError::Malformed("body marked lz64 does not decompress".into())
                }
            }
        })?;
    String::from_utf16(&units)
        .map(String::into_bytes)
        .map_err(|_| CaptureError::Malformed("lz64 body decompresses to invalid UTF-16".into()))
}

fn too_large_decompressed() -> CaptureError {
    CaptureError::TooLarge(format!(
        "the decompressed payload exceeds {} MiB",
        MAX_DECOMPRESSED_BYTES / (1024 * 1024)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression as Level};
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Level::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    const JSON: &str = r#"{"token":"phc_k","distinct_id":"u"}"#;

    fn flags_body(transport: Transport<'_>) -> Result<String, CaptureError> {
        decode_flags_body(&transport).map(|text| String::from_utf8(text).unwrap())
    }

    #[test]
    fn flags_bodies_come_in_every_transport() {
        let plain = Transport {
            body: JSON.as_bytes(),
            ..Transport::default()
        };
        assert!(plain.is_cheap_to_decode());
        assert_eq!(flags_body(plain).unwrap(), JSON);

        let gzipped = gzip(JSON.as_bytes());
        let by_header = Transport {
            body: &gzipped,
            content_encoding: Some("gzip"),
            ..Transport::default()
        };
        assert!(!by_header.is_cheap_to_decode());
        assert_eq!(flags_body(by_header).unwrap(), JSON);

        let b64 = BASE64.encode(JSON);
        for body in [b64.clone(), BASE64.encode(&b64)] {
            let said = Transport {
                body: body.as_bytes(),
                ..Transport::default()
            };
            assert_eq!(flags_body(said).unwrap(), JSON);
        }

        let form = format!("data={}", b64.replace('+', " "));
        let form = Transport {
            body: form.as_bytes(),
            content_type: Some("application/x-www-form-urlencoded"),
            ..Transport::default()
        };
        assert_eq!(flags_body(form).unwrap(), JSON);

        let lz = lz_str::compress_to_base64(JSON);
        let lz = Transport {
            body: lz.as_bytes(),
            compression: Some("lz64"),
            ..Transport::default()
        };
        assert_eq!(flags_body(lz).unwrap(), JSON);
    }

    #[test]
    fn flags_bodies_do_not_come_in_the_query() {
        let from_query = Transport {
            data: Some(JSON),
            ..Transport::default()
        };
        assert_eq!(flags_body(from_query), Err(CaptureError::EmptyPayload));
    }
}

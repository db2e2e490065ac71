//! Image decoding: a file's bytes → upright RGB pixels. JPEG, PNG, WebP, GIF
//! (first frame) and BMP, recognised by content (the extension is only a
//! fallback); EXIF orientation applied; width, height and decoder memory
//! checked against [`DecodeLimits`] *before* pixels are allocated, so a
//! 30000×30000 header is refused instead of exhausting memory.

use std::io::{BufReader, Cursor};

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// Refuse images larger than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// Bytes the decoder may allocate, the decoded image included.
    pub max_alloc: u64,
}

/// A decoded image, upright.
#[derive(Debug)]
pub struct Decoded {
    pub rgb: RgbImage,
    /// Lower-case format name: jpeg, png, webp, gif, bmp.
    pub format: &'static str,
}

/// Why a file is not a usable image.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty file")]
    Empty,
    #[error("not an image in a supported format (JPEG, PNG, WebP, GIF, BMP)")]
    UnknownFormat,
    #[error("{width}×{height} pixels exceeds the limit of {max_width}×{max_height}")]
    TooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error("decoding would need {needed} bytes, over the limit of {limit}")]
    TooMuchMemory { needed: u64, limit: u64 },
    #[error("refused by the decoder's limits: {0}")]
    Limit(String),
    #[error("corrupt or truncated {format}: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },
}

/// Decodes `bytes` (the whole file) within `limits`.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = ImageReader::new(BufReader::new(Cursor::new(bytes)))
        .with_guessed_format()
        .map_err(|_| DecodeError::UnknownFormat)?;
    let format = match reader.format() {
        Some(image::ImageFormat::Jpeg) => "jpeg",
        Some(image::ImageFormat::Png) => "png",
        Some(image::ImageFormat::WebP) => "webp",
        Some(image::ImageFormat::Gif) => "gif",
        Some(image::ImageFormat::Bmp) => "bmp",
        _ => return Err(DecodeError::UnknownFormat),
    };
    let corrupt = |e: image::ImageError| DecodeError::Corrupt {
        format,
        reason: e.to_string(),
    };
    // Read the header with no limits (no pixels are allocated yet), check
    // it against ours, then decode under the decoder's own limits too.
    let mut reader = reader;
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if width > limits.max_width || height > limits.max_height {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    let needed = decoder.total_bytes();
    if needed > limits.max_alloc {
        return Err(DecodeError::TooMuchMemory {
            needed,
            limit: limits.max_alloc,
        });
    }
    let mut image_limits = Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_alloc);
    decoder
        .set_limits(image_limits)
        .map_err(|e| DecodeError::Limit(e.to_string()))?;
    // A broken EXIF block is not worth losing the picture over.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    Ok(Decoded {
        rgb: image.into_rgb8(),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    const LIMITS: DecodeLimits = DecodeLimits {
        max_width: 4096,
        max_height: 4096,
        max_alloc: 64 << 20,
    };

    /// A 40×20 image, red on the left half, blue on the right.
    fn sample() -> RgbImage {
        RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        })
    }

    fn encode(format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(sample())
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_every_supported_format() {
        use image::ImageFormat::*;
        for (format, name) in [
            (Png, "png"),
            (Jpeg, "jpeg"),
            (WebP, "webp"),
            (Gif, "gif"),
            (Bmp, "bmp"),
        ] {
            let decoded = decode(&encode(format), &LIMITS).unwrap();
            assert_eq!(decoded.format, name);
            assert_eq!(decoded.rgb.dimensions(), (40, 20), "{name}");
            let left = decoded.rgb.get_pixel(5, 10);
            assert!(left[0] > 200 && left[2] < 60, "{name}: {left:?}");
        }
    }

    /// A minimal little-endian EXIF block holding only an orientation tag.
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut exif = b"II*\0".to_vec();
        exif.extend(8u32.to_le_bytes()); // first IFD
        exif.extend(1u16.to_le_bytes()); // one entry
        exif.extend(0x0112u16.to_le_bytes()); // Orientation
        exif.extend(3u16.to_le_bytes()); // SHORT
        exif.extend(1u32.to_le_bytes()); // count
        exif.extend(value.to_le_bytes());
        exif.extend([0, 0]);
        exif.extend(0u32.to_le_bytes()); // no next IFD
        exif
    }

    #[test]
    fn applies_exif_orientation() {
        let mut bytes = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
        encoder.set_exif_metadata(exif_orientation(6)).unwrap(); // rotate 90° clockwise
        let img = sample();
        encoder
            .write_image(img.as_raw(), 40, 20, image::ExtendedColorType::Rgb8)
            .unwrap();
        let decoded = decode(&bytes, &LIMITS).unwrap();
        assert_eq!(decoded.rgb.dimensions(), (20, 40));
        // The red left half is now on top.
        assert!(decoded.rgb.get_pixel(10, 5)[0] > 200);
        assert!(decoded.rgb.get_pixel(10, 35)[2] > 200);
    }

    #[test]
    fn refuses_bad_input_with_reasons() {
        assert!(matches!(decode(b"", &LIMITS), Err(DecodeError::Empty)));
        assert!(matches!(
            decode(b"just some text, not a picture", &LIMITS),
            Err(DecodeError::UnknownFormat)
        ));
        let png = encode(image::ImageFormat::Png);
        let truncated = &png[..png.len() / 2];
        assert!(matches!(
            decode(truncated, &LIMITS),
            Err(DecodeError::Corrupt { format: "png", .. })
        ));
        let mut corrupt = png.clone();
        for b in corrupt.iter_mut().skip(40).take(30) {
            *b ^= 0x5a;
        }
        assert!(decode(&corrupt, &LIMITS).is_err());
    }

    /// A PNG that claims 30000×30000 pixels: a real header, an empty
    /// image-data chunk, the end chunk.
    fn bomb_header() -> Vec<u8> {
        let mut ihdr = 30000u32.to_be_bytes().to_vec();
        ihdr.extend(30000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &[]), (b"IEND", &[])] {
            png.extend((data.len() as u32).to_be_bytes());
            let mut chunk = kind.to_vec();
            chunk.extend(data);
            png.extend(&chunk);
            png.extend(crc32(&chunk).to_be_bytes());
        }
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn refuses_decompression_bombs_by_limits() {
        let err = decode(&bomb_header(), &LIMITS).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
        // Within the dimensions but over the memory limit.
        let small = DecodeLimits {
            max_width: 40_000,
            max_height: 40_000,
            max_alloc: 64 << 20,
        };
        let err = decode(&bomb_header(), &small).unwrap_err();
        assert!(matches!(err, DecodeError::TooMuchMemory { .. }), "{err}");
    }
}

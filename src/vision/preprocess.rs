//! BLIP's image processor, step for step as `transformers`'
//! `BlipImageProcessor` does it: resize to 384×384 with bicubic
//! interpolation (Catmull-Rom, a = −0.5, as PIL's BICUBIC; the filter widens
//! when shrinking, as PIL's does), rescale by 1/255, normalise with the
//! OpenAI CLIP mean and standard deviation, channels first.

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::RgbImage;

/// The side of BLIP's square input.
pub const IMAGE_SIZE: u32 = 384;
/// `OPENAI_CLIP_MEAN`.
pub const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// `OPENAI_CLIP_STD`, digits as transformers publishes them.
#[allow(clippy::excessive_precision)]
pub const STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The normalised pixels of `image` at `size`×`size`, channels first
/// (`[3 * size * size]`, red plane, green plane, blue plane).
pub fn pixel_values(image: &RgbImage, size: u32) -> Vec<f32> {
    let resized;
    let image = if image.dimensions() == (size, size) {
        image
    } else {
        resized = image::imageops::resize(image, size, size, FilterType::CatmullRom);
        &resized
    };
    let plane = (size * size) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(pixel[c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
    out
}

/// [`pixel_values`] as the `[1, 3, size, size]` tensor BLIP's vision model takes.
pub fn to_tensor(image: &RgbImage, size: u32, device: &Device) -> candle_core::Result<Tensor> {
    let s = size as usize;
    Tensor::from_vec(pixel_values(image, size), (1, 3, s, s), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn normalises_each_channel_with_clip_statistics() {
        let image = RgbImage::from_pixel(4, 4, Rgb([255, 0, 128]));
        let values = pixel_values(&image, 4);
        assert_eq!(values.len(), 48);
        let expect = |c: usize, v: f32| (v / 255.0 - MEAN[c]) / STD[c];
        assert!((values[0] - expect(0, 255.0)).abs() < 1e-6);
        assert!((values[16] - expect(1, 0.0)).abs() < 1e-6);
        assert!((values[47] - expect(2, 128.0)).abs() < 1e-6);
    }

    #[test]
    fn resizes_to_the_square_input_keeping_the_layout() {
        // Left half white, right half black, 100×50 → 384×384.
        let image = RgbImage::from_fn(
            100,
            50,
            |x, _| {
                if x < 50 {
                    Rgb([255; 3])
                } else {
                    Rgb([0; 3])
                }
            },
        );
        let t = to_tensor(&image, IMAGE_SIZE, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 3, 384, 384]);
        let values = pixel_values(&image, IMAGE_SIZE);
        let at = |c: usize, x: usize, y: usize| values[c * 384 * 384 + y * 384 + x];
        assert!((at(0, 10, 200) - (1.0 - MEAN[0]) / STD[0]).abs() < 1e-3);
        assert!((at(2, 370, 10) - (0.0 - MEAN[2]) / STD[2]).abs() < 1e-3);
    }
}

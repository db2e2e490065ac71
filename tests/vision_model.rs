//! The captioner end to end on a tiny random BLIP in the real Hugging Face
//! layout: loading, preprocessing and greedy generation must give exactly
//! the tokens transformers gives for the same files and images
//! (`tests/fixtures/vision/tiny_blip_reference.json`, made by
//! `scripts/blip_reference.py`). The real base model's test is ignored (and
//! listed as SKIPPED by `scripts/bootstrap.sh test`) unless run with
//! `--ignored` and `VOXD_BLIP_MODEL=/dir`: its weights cannot be fetched
//! from the package registries CI uses.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::tiny_blip;
use voxd::events::Events;
use voxd::vision::blip::{Blip, DEFAULT_MAX_LENGTH};
use voxd::vision::service::Settings;
use voxd::vision::{
    preprocess, CaptionDoc, CaptionOutcome, CaptionSink, Captioner, DecodeLimits, SinkError, Vision,
};

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vision/tiny_blip_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The reference's image `name`, regenerated exactly as the example wrote it.
fn reference_image(entry: &Value) -> image::RgbImage {
    let which: usize = entry["image"]
        .as_str()
        .unwrap()
        .trim_end_matches(".png")
        .parse()
        .unwrap();
    let (w, h) = (
        entry["width"].as_u64().unwrap() as u32,
        entry["height"].as_u64().unwrap() as u32,
    );
    // Round-trip through PNG like the files transformers read.
    let mut png = std::io::Cursor::new(Vec::new());
    tiny_blip::test_image(which, w, h)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    image::load_from_memory(png.get_ref()).unwrap().into_rgb8()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn tiny_blip_captions_exactly_as_transformers_does() {
    let dir = support::tiny_blip_model();
    let mut blip = Blip::load(&dir, DEFAULT_MAX_LENGTH).unwrap();
    let reference = reference();
    let entries = reference["captions"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let mut captions = Vec::new();
    for entry in entries {
        let image = reference_image(entry);
        let plain = blip.generate(&image, None).unwrap();
        assert_eq!(plain, ids(&entry["plain"]["ids"]), "{}", entry["image"]);
        let text = blip.caption(&image, None).unwrap();
        assert_eq!(text, entry["plain"]["caption"].as_str().unwrap());
        assert!(!text.is_empty());

        let prompt = entry["prompted"]["prompt"].as_str().unwrap();
        let prompted = blip.generate(&image, Some(prompt)).unwrap();
        assert_eq!(
            prompted,
            ids(&entry["prompted"]["ids"]),
            "{}",
            entry["image"]
        );
        let text = blip.caption(&image, Some(prompt)).unwrap();
        assert_eq!(text, entry["prompted"]["caption"].as_str().unwrap());
        assert!(text.starts_with("a photo of"), "{text}");
        captions.push(blip.caption(&image, None).unwrap());
    }
    // The picture steers the words: different images, different captions.
    assert_ne!(captions[0], captions[1]);
    assert_ne!(captions[1], captions[2]);
}

#[test]
fn preprocessing_matches_blips_processor() {
    // PIL's bicubic rounds to 8 bits between its two passes; ours keeps
    // floats: allow two grey levels (in normalised units) of difference.
    let tolerance = 2.0 / 255.0 / 0.26;
    for entry in reference()["captions"].as_array().unwrap() {
        let image = reference_image(entry);
        let values = preprocess::pixel_values(&image, preprocess::IMAGE_SIZE);
        let expected = entry["pixels_stride16"].as_array().unwrap();
        let side = 384 / 16;
        assert_eq!(expected.len(), 3 * side * side);
        let mut worst = 0f32;
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let ours = values[c * 384 * 384 + (y * 16) * 384 + x * 16];
                    let theirs = expected[(c * side + y) * side + x].as_f64().unwrap() as f32;
                    worst = worst.max((ours - theirs).abs());
                }
            }
        }
        assert!(worst <= tolerance, "{}: off by {worst}", entry["image"]);
    }
}

#[test]
fn a_broken_model_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Blip::load(dir.path(), 20).err().unwrap().to_string();
    assert!(err.contains("config.json"), "{err}");
    let tiny = support::tiny_blip_model();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(tiny.join(file), dir.path().join(file)).unwrap();
    }
    let err = Blip::load(dir.path(), 20).err().unwrap().to_string();
    assert!(err.contains("model.safetensors is missing"), "{err}");
    std::fs::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
    let err = Blip::load(dir.path(), 20).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

/// Every call the index would get.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl CaptionSink for Recorder {
    fn upsert(&self, doc: &CaptionDoc) -> Result<(), SinkError> {
        assert_eq!(doc.doc_id, CaptionDoc::id_for(&doc.path));
        self.0
            .lock()
            .unwrap()
            .push(format!("upsert {} {}", doc.path.display(), doc.text));
        Ok(())
    }

    fn remove(&self, doc_id: &str) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(format!("remove {doc_id}"));
        Ok(())
    }
}

#[test]
fn captions_reach_the_index_and_follow_their_files() {
    let home = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recorder::default());
    let vision = Vision::open(
        Settings {
            model_dir: support::tiny_blip_model(),
            prompt: None,
            max_length: DEFAULT_MAX_LENGTH,
            limits: DecodeLimits {
                max_width: 4096,
                max_height: 4096,
                max_alloc: 64 << 20,
            },
            sidecar: true,
            idle_unload: None,
            db: home.path().join("images.db"),
            folders: vec![home.path().to_path_buf()],
        },
        Events::new(64),
        Some(sink.clone()),
    )
    .unwrap();
    let a = home.path().join("a.png");
    tiny_blip::test_image(1, 64, 48).save(&a).unwrap();
    let CaptionOutcome::Captioned {
        caption, cached, ..
    } = vision.process(&a)
    else {
        panic!("a.png not captioned")
    };
    assert!(!cached);
    assert_eq!((caption.width, caption.height), (64, 48));
    assert_eq!(
        std::fs::read_to_string(home.path().join("a.png.txt")).unwrap(),
        format!("{}\n", caption.caption)
    );
    assert_eq!(vision.process(&a), CaptionOutcome::Unchanged);

    // Renamed: the new path reuses the caption, the old one leaves the index.
    let b: PathBuf = home.path().join("b.png");
    std::fs::rename(&a, &b).unwrap();
    let CaptionOutcome::Captioned { cached, .. } = vision.process(&b) else {
        panic!("b.png not recorded")
    };
    assert!(cached);
    vision.remove(&a);
    assert!(vision.forget(&b).unwrap());
    let calls = sink.0.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            format!("upsert {} {}", a.display(), caption.caption),
            format!("upsert {} {}", b.display(), caption.caption),
            format!("remove {}", CaptionDoc::id_for(&a)),
            format!("remove {}", CaptionDoc::id_for(&b)),
        ]
    );
    assert!(vision.list(None).unwrap().is_empty());
}

/// The one test not run by default: the real BLIP base model, where
/// installed. Ignored, so that `cargo test` counts and names it as not
/// run; with `--ignored` it needs `VOXD_BLIP_MODEL` (never a silent pass).
#[test]
#[ignore = "SKIPPED: real BLIP base weights; run with --ignored and \
            VOXD_BLIP_MODEL=/path/to/blip-image-captioning-base"]
fn real_blip_base_captions_generated_images() {
    let dir = std::env::var_os("VOXD_BLIP_MODEL").unwrap_or_else(|| {
        panic!("set VOXD_BLIP_MODEL=/path/to/blip-image-captioning-base to run BLIP base")
    });
    let mut blip = Blip::load(&PathBuf::from(dir), DEFAULT_MAX_LENGTH).unwrap();
    for which in 0..3 {
        let image = tiny_blip::test_image(which, 480, 360);
        let caption = blip.caption(&image, None).unwrap();
        eprintln!("image {which}: {caption}");
        assert!(caption.split_whitespace().count() >= 2, "{caption}");
        assert_eq!(blip.caption(&image, None).unwrap(), caption);
        let prompted = blip.caption(&image, Some("a photo of")).unwrap();
        assert!(prompted.starts_with("a photo of"), "{prompted}");
    }
}

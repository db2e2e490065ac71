//! Writes the tiny random BLIP the tests use (and the images they caption)
//! for the benchmark and for `scripts/blip_reference.py`:
//!
//!     cargo run --release --example tiny_blip -- OUT BERT_TOKENIZER_JSON
//!
//! gives `OUT/model/{config.json,model.safetensors,tokenizer.json}` and
//! `OUT/images/{0,1,2}.png` (0 and 1: 384×384, 2: 640×480).

#[path = "../tests/support/tiny_blip.rs"]
mod tiny_blip;

use std::path::PathBuf;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out, tokenizer] = args.as_slice() else {
        eprintln!("usage: tiny_blip OUT BERT_TOKENIZER_JSON");
        std::process::exit(2);
    };
    tiny_blip::write(&out.join("model"), tiny_blip::SEED, tokenizer);
    let images = out.join("images");
    std::fs::create_dir_all(&images).expect("create OUT/images");
    for (which, (w, h)) in [(384, 384), (384, 384), (640, 480)].into_iter().enumerate() {
        tiny_blip::test_image(which, w, h)
            .save(images.join(format!("{which}.png")))
            .expect("write a test image");
    }
    println!("{}", out.display());
}

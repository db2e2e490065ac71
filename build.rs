//! Build script of the `voxd` package.
//!
//! - espeak-ng (built by `espeak-rs-sys`) finds Debian's `libsonic-dev` but
//!   does not link it: link `libsonic.a` here. Without `libsonic-dev`,
//!   espeak-ng's configure would try to git-clone sonic (fails offline), so
//!   `scripts/bootstrap.sh` installs it.
//! - The default ONNX Runtime location (`src/onnx.rs`) is the cache the
//!   bootstrap fills, resolved against the building user's home so tests
//!   that run voxd with a private `$HOME` still find it.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    link_sonic();
    ort_cache_dir();
}

fn link_sonic() {
    println!("cargo:rerun-if-env-changed=SONIC_LIB_DIR");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let candidates = [
        env::var_os("SONIC_LIB_DIR").map(PathBuf::from),
        Some(PathBuf::from(format!("/usr/lib/{arch}-linux-gnu"))),
        Some(PathBuf::from("/usr/lib")),
        Some(PathBuf::from("/usr/local/lib")),
    ];
    match candidates
        .into_iter()
        .flatten()
        .find(|dir| dir.join("libsonic.a").is_file())
    {
        Some(dir) => {
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=static=sonic");
        }
        None => println!(
            "cargo:warning=libsonic.a not found (apt install libsonic-dev, or set SONIC_LIB_DIR): \
             espeak-ng may fail to link"
        ),
    }
}

fn ort_cache_dir() {
    println!("cargo:rerun-if-env-changed=XDG_CACHE_HOME");
    println!("cargo:rerun-if-env-changed=HOME");
    // Not VOXD_*: those are configuration keys at run time, and cargo
    // passes rustc-env variables to `cargo test` processes too.
    let dir = env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(|c| Path::new(&c).join("voxd/onnxruntime"))
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cache/voxd/onnxruntime")))
        .unwrap_or_default();
    println!("cargo:rustc-env=ORT_BUILD_CACHE_DIR={}", dir.display());
}

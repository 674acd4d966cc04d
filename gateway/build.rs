//! Builds the web client (gateway/web, TypeScript with Vite) into `OUT_DIR/web` and writes
//! `OUT_DIR/web_assets.rs`, the table of its files (with their gzip and brotli forms) that
//! `http::web` embeds in the binary. npm runs only when the client's sources change: `npm ci` when
//! `node_modules` is missing or older than the lockfile, then `npm run build`. Without npm (or when
//! the build fails) the binary embeds a one-page notice instead, and cargo prints a warning: the
//! server itself always builds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;
use std::{env, fs};

/// What changes the built client; cargo reruns this script only when one of them does.
const INPUTS: [&str; 8] = [
    "web/src",
    "web/index.html",
    "web/package.json",
    "web/package-lock.json",
    "web/vite.config.ts",
    "web/tsconfig.json",
    "web/scripts",
    "build.rs",
];

const FALLBACK_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>ExpressChat</title></head><body><h1>ExpressChat</h1>\
<p>This server was built without its web client: Node.js and npm were not available (or the \
client's build failed) when it was compiled. Install Node.js 20 or newer with npm and build \
again; the chat's API is served as usual.</p></body></html>";

fn main() {
    for input in INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }
    println!("cargo:rerun-if-env-changed=WEB_CLIENT_BUILD");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let web_src = manifest.join("web");
    let web_out = out.join("web");

    let built = if env::var("WEB_CLIENT_BUILD").as_deref() == Ok("skip") {
        Err("WEB_CLIENT_BUILD=skip".to_string())
    } else {
        build_client(&web_src, &web_out)
    };
    if let Err(reason) = built {
        println!("cargo:warning=the web client was not built ({reason}); the server embeds a page saying so");
        let _ = fs::remove_dir_all(&web_out);
        fs::create_dir_all(&web_out).expect("OUT_DIR is writable");
        fs::write(web_out.join("index.html"), FALLBACK_PAGE).expect("OUT_DIR is writable");
    }
    let table = asset_table(&web_out);
    fs::write(out.join("web_assets.rs"), table).expect("OUT_DIR is writable");
}

fn build_client(src: &Path, out: &Path) -> Result<(), String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    match Command::new(npm).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("npm not found".into()),
    }
    let stamp = src.join("node_modules/.package-lock.json");
    if modified(&stamp) < modified(&src.join("package-lock.json")) {
        run(Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(src))?;
    }
    run(Command::new(npm)
        .args(["run", "build"])
        .env("WEB_OUT_DIR", out)
        .current_dir(src))
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    for line in tail.iter().rev() {
        println!("cargo:warning={line}");
    }
    Err(format!("{command:?} failed"))
}

/// `pub static ASSETS: &[Asset]`, one entry per served file, sorted by path.
fn asset_table(root: &Path) -> String {
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort();
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for file in files {
        let name = file.to_string_lossy();
        if name.ends_with(".gz") || name.ends_with(".br") {
            continue;
        }
        let relative = file
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = fs::read(&file).expect("readable");
        let variant = |ext: &str| {
            let path = PathBuf::from(format!("{name}.{ext}"));
            if path.exists() {
                format!("Some(include_bytes!({:?}))", path.to_string_lossy())
            } else {
                "None".into()
            }
        };
        let _ = writeln!(
            table,
            "    Asset {{ path: {:?}, etag: \"\\\"{:016x}\\\"\", raw: include_bytes!({:?}), gzip: {}, brotli: {} }},",
            format!("/{}", relative.to_ascii_lowercase()),
            fnv1a(&bytes),
            name,
            variant("gz"),
            variant("br"),
        );
    }
    table.push_str("];\n");
    table
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// A content hash for the `ETag` (not a security property: it only has to change with the bytes).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

//! A book built into a website, whole process, by `copper-wasm call
//! markdown/build` (the sandboxed component) and by mdBook, alternately in one
//! run: the median of 5 each, their ratio, and each one's peak memory.
//!
//! `cargo bench -p copper-wasm --bench website`
//!
//! - `COPPER_BENCH_BOOK`: an mdBook book (a folder with `src/SUMMARY.md`), such
//!   as a clone of rust-lang/book. Without it, a book of the same shape is made:
//!   112 chapters, 2.6 MB of markdown, Rust code, includes with anchors.
//! - `COPPER_BENCH_MDBOOK`: the mdBook binary (else `mdbook` on the PATH, else
//!   `/var/tmp/copper-wasm-tools/bin/mdbook`); `cargo install mdbook --version
//!   0.5.4 --locked --root /var/tmp/copper-wasm-tools` builds it here.
//!
//! mdBook runs with its defaults (search index, highlight.js in the page) and
//! without the book's own preprocessors, which are not mdBook's.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::measure;

const RUNS: usize = 5;

/// A book like rust-lang/book in shape, made from nothing.
fn make_book(book: &Path) {
    let src = book.join("src");
    std::fs::create_dir_all(src.join("listings")).unwrap();
    let mut summary = String::from("# The Book\n\n[Foreword](foreword.md)\n\n");
    std::fs::write(
        src.join("foreword.md"),
        "# Foreword\n\nA book made for the bench.\n",
    )
    .unwrap();
    let paragraph = "Ownership is a set of rules that govern how a program manages memory. \
        Some languages have garbage collection that regularly looks for no-longer-used memory \
        as the program runs; in other languages, the programmer must explicitly allocate and \
        free the memory. See [the next part](#part-2) and `Vec<T>` for more.\n\n";
    for chapter in 1..=111 {
        let name = format!("ch{chapter:03}.md");
        summary.push_str(&format!("- [Chapter {chapter}]({name})\n"));
        let listing = format!("listings/l{chapter:03}.rs");
        std::fs::write(
            src.join(&listing),
            format!("use std::io;\n// ANCHOR: main\nfn main() {{\n    let x = {chapter};\n# let hidden = x;\n    println!(\"{{x}}\");\n}}\n// ANCHOR_END: main\n"),
        )
        .unwrap();
        let mut text = format!("# Chapter {chapter}\n\n");
        for part in 1..=6 {
            text.push_str(&format!("## Part {part}\n\n"));
            for _ in 0..10 {
                text.push_str(paragraph);
            }
            text.push_str(&format!(
                "```rust\n{{{{#rustdoc_include {listing}:main}}}}\n```\n\n```rust\nstruct Point {{ x: i32, y: i32 }}\n\nimpl Point {{\n    fn norm(&self) -> f64 {{\n        ((self.x * self.x + self.y * self.y) as f64).sqrt()\n    }}\n}}\n```\n\n```console\n$ cargo run\n   Compiling book v0.1.0\n```\n\n"
            ));
        }
        std::fs::write(src.join(&name), text).unwrap();
    }
    std::fs::write(src.join("SUMMARY.md"), summary).unwrap();
}

/// The same book for mdBook, with only mdBook's own settings.
fn for_mdbook(book: &Path, into: &Path) {
    copy_tree(book, into);
    std::fs::write(
        into.join("book.toml"),
        "[book]\ntitle = \"The book\"\nsrc = \"src\"\n\n[output.html]\n",
    )
    .unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if entry.file_name() == ".git" {
            continue;
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn mdbook() -> PathBuf {
    if let Some(path) = std::env::var_os("COPPER_BENCH_MDBOOK") {
        return path.into();
    }
    let on_path = Command::new("mdbook").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return "mdbook".into();
    }
    let built = PathBuf::from("/var/tmp/copper-wasm-tools/bin/mdbook");
    assert!(
        built.exists(),
        "no mdBook: cargo install mdbook --version 0.5.4 --locked --root /var/tmp/copper-wasm-tools"
    );
    built
}

fn main() {
    let copper = PathBuf::from(env!("CARGO_BIN_EXE_copper-wasm"));
    let mdbook = mdbook();
    let dir = tempfile::tempdir().unwrap();
    let given = std::env::var_os("COPPER_BENCH_BOOK").map(PathBuf::from);
    let book = match &given {
        Some(book) => book.clone(),
        None => {
            let book = dir.path().join("made");
            make_book(&book);
            book
        }
    };
    // copper-wasm reads the book where a fetch puts it; mdBook from its own copy.
    let work = dir.path().join("copper");
    copy_tree(&book, &work.join(".copper/fetch/book"));
    let theirs = dir.path().join("mdbook");
    for_mdbook(&book, &theirs);
    let (markdown, all) = sizes(&book.join("src"));
    let chapters = std::fs::read_to_string(book.join("src/SUMMARY.md"))
        .unwrap()
        .matches("](")
        .count();
    println!(
        "book: {} ({chapters} chapters, {:.1} MB of markdown, {:.1} MB in src/)",
        given
            .as_deref()
            .map_or("made by the bench".into(), |p| p.display().to_string()),
        markdown as f64 / 1e6,
        all as f64 / 1e6
    );
    let version = Command::new(&mdbook).arg("--version").output().unwrap();
    println!(
        "reference: {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );

    let ours = || {
        let mut command = Command::new(&copper);
        command.current_dir(&work).args([
            "call",
            "markdown/build",
            "--input",
            r#"{"path": "/fetch/book/src", "out": "/web/book", "title": "The book"}"#,
        ]);
        command
    };
    let reference = || {
        let mut command = Command::new(&mdbook);
        command
            .current_dir(&theirs)
            .args(["build", "--dest-dir"])
            .arg(dir.path().join("mdbook-out"));
        command
    };
    // Warm both (the compiled component, the page cache), then alternate.
    measure(&mut ours());
    measure(&mut reference());
    let (mut our_times, mut their_times) = (Vec::new(), Vec::new());
    let (mut our_peak, mut their_peak) = (0f64, 0f64);
    for _ in 0..RUNS {
        let (t, m) = measure(&mut ours());
        our_times.push(t);
        our_peak = our_peak.max(m);
        let (t, m) = measure(&mut reference());
        their_times.push(t);
        their_peak = their_peak.max(m);
    }
    let (ours_median, theirs_median) = (median(our_times), median(their_times));
    let site = work.join(".copper/web/book");
    let results = std::fs::read_to_string(site.join("_site/searchindex.js")).map(|s| s.len());
    println!(
        "copper-wasm markdown/build: {:>7.1} ms  peak {:>5.1} MB  ({} KB search index)",
        ours_median.as_secs_f64() * 1e3,
        our_peak,
        results.unwrap_or(0) / 1024
    );
    println!(
        "mdBook build:               {:>7.1} ms  peak {:>5.1} MB",
        theirs_median.as_secs_f64() * 1e3,
        their_peak
    );
    println!(
        "ratio (copper-wasm / mdBook): time {:.2}x, memory {:.2}x (median of {RUNS}, whole process)",
        ours_median.as_secs_f64() / theirs_median.as_secs_f64(),
        our_peak / their_peak
    );
}

/// The bytes of markdown under `dir`, and of all its files.
fn sizes(dir: &Path) -> (u64, u64) {
    let (mut markdown, mut all) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            let (m, a) = sizes(&entry.path());
            markdown += m;
            all += a;
        } else if kind.is_file() {
            let len = entry.metadata().unwrap().len();
            all += len;
            if entry.path().extension().is_some_and(|e| e == "md") {
                markdown += len;
            }
        }
    }
    (markdown, all)
}

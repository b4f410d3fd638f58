//! Embeds `migrations/clickhouse/V<n>__<name>.sql` into the binary (see `ch::migrate`), so a
//! new file is picked up without code changes.

use std::fmt::Write;

fn main() {
    // Read when the script runs, not when it was compiled: a build directory shared by two
    // checkouts reuses the compiled script.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest).join("../migrations/clickhouse");
    println!("cargo:rerun-if-changed={}", dir.display());
    // Postgres migrations are embedded by refinery's macro, which cargo does not watch.
    let pg = dir.with_file_name("postgres");
    println!("cargo:rerun-if-changed={}", pg.display());
    for entry in std::fs::read_dir(&pg).expect("migrations/postgres") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("dir entry").path().display()
        );
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("migrations/clickhouse") {
        let path = entry.expect("dir entry").path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        let (v, name) = stem
            .strip_prefix('V')
            .and_then(|s| s.split_once("__"))
            .unwrap_or_else(|| panic!("{file}: expected V<n>__<name>.sql"));
        let version: u32 = v.parse().unwrap_or_else(|_| panic!("{file}: bad version"));
        println!("cargo:rerun-if-changed={}", path.display());
        found.push((version, name.to_string(), path.canonicalize().unwrap()));
    }
    found.sort_by_key(|m| m.0);
    for w in found.windows(2) {
        assert!(
            w[0].0 != w[1].0,
            "duplicate ClickHouse migration V{}",
            w[0].0
        );
    }
    let mut out = String::from("&[\n");
    for (v, name, path) in &found {
        writeln!(
            out,
            "    ({v}, {name:?}, include_str!({:?})),",
            path.display()
        )
        .unwrap();
    }
    out.push(']');
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("ch_migrations.rs");
    std::fs::write(dest, out).unwrap();
}

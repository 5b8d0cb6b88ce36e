//! `scripts/ensure-deps` finds libclang where bindgen's loader (clang-sys)
//! finds it, not a look-alike: each case lays out a machine in a temp dir
//! (`SESSIONGATE_DEPS_ROOT`) and checks what the script would install.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A shared library as clang-sys checks one: a 64-bit ELF header.
const ELF64: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
const ELF32: &[u8] = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0";

struct Machine {
    root: PathBuf,
}

impl Machine {
    /// Debian bookworm's image as CI gets it: LLVM 14 with libclang-cpp and
    /// clang's headers, but no libclang.
    fn like_the_ci_image(name: &str) -> Self {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ensure-deps-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let machine = Machine { root };
        machine.file("usr/lib/llvm-14/lib/libclang-cpp.so.14", ELF64);
        machine.file("usr/lib/x86_64-linux-gnu/libclang-cpp.so.14", ELF64);
        machine.file("usr/lib/llvm-14/lib/libLLVM-14.so.1", ELF64);
        machine.file("usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h", b"");
        machine
    }

    fn file(&self, path: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, bytes).expect("write");
        path
    }

    /// With libclang1-14 installed, as Debian lays it out.
    fn with_libclang(self) -> Self {
        self.file("usr/lib/llvm-14/lib/libclang.so.1", ELF64);
        self.file("usr/lib/x86_64-linux-gnu/libclang-14.so.14.0.6", ELF64);
        self
    }

    /// The packages the script would install, for libclang and its headers.
    fn missing(&self, env: &[(&str, &Path)]) -> Vec<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-deps");
        let output = Command::new("bash")
            .arg(script)
            .arg("--dry-run")
            .env("SESSIONGATE_DEPS_ROOT", &self.root)
            .env_remove("LIBCLANG_PATH")
            .env_remove("LD_LIBRARY_PATH")
            .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
            .output()
            .expect("run scripts/ensure-deps");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "ensure-deps failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let listed = stdout
            .lines()
            .find_map(|line| line.strip_prefix("missing:"))
            .unwrap_or_else(|| panic!("no `missing:` line in {stdout:?}"));
        listed
            .split_whitespace()
            .filter(|p| p.starts_with("libclang"))
            .map(String::from)
            .collect()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[test]
fn the_ci_image_with_only_libclang_cpp_asks_for_libclang() {
    let machine = Machine::like_the_ci_image("image");
    assert_eq!(machine.missing(&[]), ["libclang1-14"]);
}

#[test]
fn a_machine_with_libclang_asks_for_nothing() {
    let machine = Machine::like_the_ci_image("libclang").with_libclang();
    assert!(machine.missing(&[]).is_empty());
}

#[test]
fn an_unversioned_libclang_in_usr_local_counts() {
    let machine = Machine::like_the_ci_image("local");
    machine.file("usr/local/lib/libclang.so", ELF64);
    assert!(machine.missing(&[]).is_empty());
}

#[test]
fn missing_headers_ask_for_libclang_common() {
    let machine = Machine::like_the_ci_image("headers").with_libclang();
    fs::remove_dir_all(machine.root.join("usr/lib/llvm-14/lib/clang")).expect("rm headers");
    assert_eq!(machine.missing(&[]), ["libclang-common-14-dev"]);
}

#[test]
fn files_clang_sys_would_not_load_do_not_count() {
    let machine = Machine::like_the_ci_image("not-elf");
    machine.file(
        "usr/lib/llvm-14/lib/libclang.so.1",
        b"INPUT(libclang-14.so)\n",
    );
    machine.file("usr/lib/libclang-14.so", ELF32);
    machine.file("usr/lib/llvm-14/lib/libclangBasic.so", ELF64);
    assert_eq!(machine.missing(&[]), ["libclang1-14"]);
}

#[test]
fn libclang_path_is_the_only_place_searched_when_set() {
    let machine = Machine::like_the_ci_image("env").with_libclang();
    let own = machine.file("opt/llvm/lib/libclang.so", ELF64);
    let dir = own.parent().expect("dir");
    assert!(machine.missing(&[("LIBCLANG_PATH", dir)]).is_empty());
    assert!(machine.missing(&[("LIBCLANG_PATH", &own)]).is_empty());
    // Set, but pointing at the look-alike: clang-sys looks nowhere else.
    let cpp_only = machine.root.join("usr/lib/x86_64-linux-gnu");
    assert_eq!(
        machine.missing(&[("LIBCLANG_PATH", &cpp_only)]),
        ["libclang1-14"]
    );
}

#[test]
fn ld_library_path_is_searched() {
    let machine = Machine::like_the_ci_image("ld");
    let own = machine.file("opt/clang/libclang-14.so.1", ELF64);
    let dirs = format!("/nonexistent::{}", own.parent().expect("dir").display());
    assert!(machine
        .missing(&[("LD_LIBRARY_PATH", Path::new(&dirs))])
        .is_empty());
}

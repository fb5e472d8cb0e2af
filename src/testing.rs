//! Helpers for bounded randomized tests of parsers of untrusted bytes: a seeded generator and
//! a mutator that turns a valid input into many broken ones. Deterministic, so a failure
//! reproduces from the printed seed.

pub(crate) use crate::xorshift::Rng;

/// One random corruption of `input`: flipped bytes, truncation, insertion, duplication or
/// pure noise.
pub(crate) fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(4) {
                if !out.is_empty() {
                    let i = rng.below(out.len());
                    out[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => out.truncate(rng.below(input.len() + 1)),
        2 => {
            let at = rng.below(out.len() + 1);
            let noise_len = 1 + rng.below(16);
            let noise = rng.bytes(noise_len);
            out.splice(at..at, noise);
        }
        3 => {
            if !out.is_empty() {
                let start = rng.below(out.len());
                let end = start + rng.below(out.len() - start) + 1;
                let copy = out[start..end].to_vec();
                out.splice(start..start, copy);
            }
        }
        _ => {
            let noise_len = rng.below(2 * input.len() + 8);
            out = rng.bytes(noise_len);
        }
    }
    out
}

/// Runs `check` on `rounds` mutations of `input`; `check` must not panic on any of them.
pub(crate) fn shake(seed: u64, rounds: usize, input: &[u8], mut check: impl FnMut(&[u8])) {
    let mut rng = Rng::new(seed);
    for _ in 0..rounds {
        let broken = mutate(&mut rng, input);
        check(&broken);
    }
}

/// A fresh, empty directory for one test, named after it and this process so parallel tests
/// and concurrent runs never share one.
pub(crate) fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Makes a FIFO at `path`: a file whose open or read blocks until a writer comes.
pub(crate) fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Runs `work` on its own thread and returns its result, failing the test if it takes longer
/// than `seconds`: a test of "does not block" must fail, not hang, when it does block.
pub(crate) fn within<T: Send + 'static>(
    seconds: u64,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(work());
    });
    result
        .recv_timeout(std::time::Duration::from_secs(seconds))
        .unwrap_or_else(|_| panic!("still blocked after {seconds} s"))
}

/// Decodes hex test vectors (white space between digits is skipped); panics on anything else,
/// since a vector is the test's own constant.
pub(crate) fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|byte| !byte.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Runs `body` on a thread of its own in a fresh network namespace (Linux namespaces are
/// per thread: the `ip` commands it starts change that namespace alone, and it vanishes
/// with the thread). When the namespace cannot be made (not root), or `body` says it
/// cannot run (no `ip`, a link type missing), the test prints why and passes, except under
/// `WEFT_LAB_REQUIRE=1` (as `make test` sets), where not running is a failure. Assertions
/// in `body` fail the test as usual.
#[cfg(target_os = "linux")]
pub(crate) fn in_new_network_namespace(
    test: &str,
    body: impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    let outcome = std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("unshare: {}", std::io::Error::last_os_error()));
        }
        body()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if let Err(reason) = outcome {
        if std::env::var("WEFT_LAB_REQUIRE").as_deref() == Ok("1") {
            panic!("the {test} namespace test cannot run: {reason}");
        }
        println!("skipping the {test} namespace test: {reason}");
    }
}

/// Runs `ip` with `args`; its complaint as the error.
#[cfg(target_os = "linux")]
pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    let out =
        std::process::Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

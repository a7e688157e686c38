//! Writing files and directories so that a crash or a failed write never
//! leaves half of one behind: everything is written beside its destination
//! first, then renamed into place (a rename within a directory is atomic).

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// An I/O failure, with what was being done and to which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {error}", path.display())]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    pub error: std::io::Error,
}

fn fail<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |error| FileError { action, path: path.to_path_buf(), error }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn create_parent(path: &Path) -> Result<(), FileError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => fs::create_dir_all(parent).map_err(fail("create", parent)),
        None => Ok(()),
    }
}

/// Per process, so two processes writing the same file never share a
/// temporary file (the last rename wins, whole).
fn temp_file(path: &Path) -> PathBuf {
    path.with_file_name(format!(".{}.{}.tmp", file_name(path), std::process::id()))
}

/// Runs `write` against a temporary sibling of `path`, then renames it over
/// `path`: a reader sees the old file or the new one, never part of one.
/// The temporary file is removed when `write` fails.
pub fn write_with<E: From<FileError>>(path: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E> {
    create_parent(path)?;
    remove_stale_temp_files(path);
    let tmp = temp_file(path);
    if let Err(e) = write(&tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(fs::rename(&tmp, path).map_err(fail("move into place", path))?)
}

/// Removes the temporary siblings of `path` that killed processes left
/// (`.NAME.PID.tmp` whose process is gone), so they do not pile up.
fn remove_stale_temp_files(path: &Path) {
    let (Some(parent), name) = (path.parent(), file_name(path)) else { return };
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    let Ok(entries) = fs::read_dir(parent) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let Ok(sibling) = entry.file_name().into_string() else { continue };
        let pid = sibling.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".tmp"));
        if pid.and_then(|p| p.parse::<u32>().ok()).is_some_and(|pid| !process_alive(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` still runs (where this cannot be told, it is
/// assumed to, and its temporary file is left alone).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Writes `bytes` to `path` atomically (see [`write_with`]).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_with(path, |tmp| fs::write(tmp, bytes).map_err(fail("write", tmp)))
}

/// Writes `value` as pretty JSON with a final newline, atomically.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), FileError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| fail("serialise", path)(e.into()))?;
    bytes.push(b'\n');
    write(path, &bytes)
}

/// Writes one compact JSON value per line, atomically.
pub fn write_json_lines<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> Result<(), FileError> {
    let mut bytes = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut bytes, &row).map_err(|e| fail("serialise", path)(e.into()))?;
        bytes.push(b'\n');
    }
    write(path, &bytes)
}

/// Where [`replace_dir`] builds the new directory, and where it parks the old
/// one during the swap. Fixed names, so the next write finds what a crash left.
fn swap_siblings(dir: &Path) -> (PathBuf, PathBuf) {
    let name = file_name(dir);
    (dir.with_file_name(format!(".{name}.tmp")), dir.with_file_name(format!(".{name}.old")))
}

fn remove_dir_if_present(dir: &Path) -> Result<(), FileError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fail("remove", dir)(e)),
        _ => Ok(()),
    }
}

/// Replaces the directory `dir` with one that `fill` writes into a fresh
/// temporary sibling. On Linux the two are exchanged in one atomic step
/// (`renameat2` with `RENAME_EXCHANGE`), so at every instant `dir` holds the
/// old directory or the new one, whole. Where that is not supported, two
/// renames (`dir` → `.NAME.old`, temporary → `dir`), and a crash between
/// them leaves the old one whole at `.NAME.old`, which [`last_whole_dir`]
/// finds. A failed `fill` leaves `dir` untouched. Leftovers of an
/// interrupted replacement are removed first.
pub fn replace_dir<E: From<FileError>>(dir: &Path, fill: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E> {
    create_parent(dir)?;
    let (tmp, old) = swap_siblings(dir);
    remove_dir_if_present(&tmp)?;
    fs::create_dir(&tmp).map_err(fail("create", &tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    remove_dir_if_present(&old)?;
    if dir.exists() {
        if exchange(&tmp, dir).is_ok() {
            // `tmp` now holds the old directory.
            return Ok(remove_dir_if_present(&tmp)?);
        }
        fs::rename(dir, &old).map_err(fail("move aside", dir))?;
    }
    fs::rename(&tmp, dir).map_err(fail("move into place", dir))?;
    Ok(remove_dir_if_present(&old)?)
}

/// Swaps two paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`);
/// an error where the kernel or file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (a, b) = (CString::new(a.as_os_str().as_bytes())?, CString::new(b.as_os_str().as_bytes())?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// The last complete version of a directory written by [`replace_dir`]:
/// `dir`, or its parked old version when a crash came between the two renames.
pub fn last_whole_dir(dir: &Path) -> Option<PathBuf> {
    let (_, old) = swap_siblings(dir);
    [dir.to_path_buf(), old].into_iter().find(|d| d.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_file_is_replaced_whole_and_a_failed_write_leaves_the_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("sub/report.json");
        write_json_lines(&f, [1, 2]).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "1\n2\n");
        write_json(&f, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "{\n  \"a\": 1\n}\n");
        let failed: Result<(), FileError> = write_with(&f, |t| {
            fs::write(t, "half").unwrap();
            Err(fail("write", t)(std::io::Error::other("disk full")))
        });
        assert!(failed.unwrap_err().to_string().contains("disk full"));
        assert_eq!(fs::read_to_string(&f).unwrap(), "{\n  \"a\": 1\n}\n");
        assert_eq!(names(&tmp.path().join("sub")), ["report.json"]);
    }

    #[test]
    fn a_directory_is_swapped_whole_and_stale_siblings_go() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("ckpt");
        replace_dir::<FileError>(&d, |t| write(&t.join("a"), b"1")).unwrap();
        // What a crash could leave: a half-written temporary directory.
        fs::create_dir(tmp.path().join(".ckpt.tmp")).unwrap();
        replace_dir::<FileError>(&d, |t| write(&t.join("b"), b"2")).unwrap();
        assert_eq!(names(&d), ["b"]);
        assert_eq!(names(tmp.path()), ["ckpt"]);
        let failed = replace_dir::<FileError>(&d, |t| Err(fail("write", t)(std::io::Error::other("no"))));
        assert!(failed.is_err());
        assert_eq!(names(&d), ["b"], "a failed fill leaves the directory as it was");
        assert_eq!(names(tmp.path()), ["ckpt"]);
    }

    #[test]
    fn temporary_files_of_dead_processes_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("m.json");
        // No process has pid 4294967295; pid 1 (init) always runs.
        fs::write(tmp.path().join(".m.json.4294967295.tmp"), "stale").unwrap();
        let live = ".m.json.1.tmp".to_string();
        fs::write(tmp.path().join(&live), "in progress").unwrap();
        write(&f, b"{}").unwrap();
        let mut want = vec!["m.json".to_string()];
        if !cfg!(target_os = "linux") {
            want.push(".m.json.4294967295.tmp".into());
        }
        want.push(live);
        want.sort();
        assert_eq!(names(tmp.path()), want);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_the_directory_is_exchanged_in_one_step() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::write(a.join("x"), "old").unwrap();
        fs::create_dir(&b).unwrap();
        exchange(&a, &b).unwrap();
        assert_eq!(names(&b), ["x"]);
        assert!(names(&a).is_empty());
    }

    #[test]
    fn after_a_crash_between_the_renames_the_old_directory_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("ckpt");
        assert_eq!(last_whole_dir(&d), None);
        fs::create_dir(tmp.path().join(".ckpt.old")).unwrap();
        assert_eq!(last_whole_dir(&d), Some(tmp.path().join(".ckpt.old")));
        fs::create_dir(&d).unwrap();
        assert_eq!(last_whole_dir(&d), Some(d));
    }
}

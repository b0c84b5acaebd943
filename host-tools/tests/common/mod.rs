//! What the integration tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a folder, unmounted when dropped: a small disk that fills, or one to remount
/// read-only.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`16m`) on `at`; `None`, after printing that `what` is skipped, without
    /// the rights to (mounting needs root).
    pub fn mount(at: &Path, size: &str, what: &str) -> Option<Tmpfs> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("SKIPPED: {what} needs root to mount a tmpfs");
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }

    /// Remounts it with `options` (`ro`, `rw`, `size=512m`).
    pub fn remount(&self, options: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.0).status();
        assert!(ok.is_ok_and(|s| s.success()), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

//! Finding manifest files: which files a list of paths names, in load order, and a cheap
//! fingerprint of them.
//!
//! Rules, chosen so that a ConfigMap volume and a hand-made directory behave the same:
//! - A path given explicitly is read whatever its name; inside directories only names
//!   ending `.yaml`, `.yml` or `.json` (any case) are read.
//! - Names starting with `.` are skipped below a given path. A ConfigMap mount keeps its
//!   data under `..data` and `..<timestamp>` and exposes each key as a visible symlink
//!   (`shop.yaml -> ..data/shop.yaml`), so following symlinks reads every key exactly once.
//! - Symlinks are followed; a directory reached twice (a symlink loop) and a file reached
//!   twice (two given paths that overlap, hard links) are read once, at the first place.
//! - Directories are walked in sorted name order, depth first, so the load order (and with
//!   it which of two duplicate objects wins) depends only on the names.
//! - A directory that cannot be listed is not taken to be empty: the files the previous
//!   load found under it are tried again, so their objects are not dropped by accident.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use mse_model::Diagnostic;

/// Extensions read inside directories.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Identity of a file or directory on disk, to notice the same one reached twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    #[cfg(unix)]
    pub(crate) fn of(meta: &Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_meta: &Metadata) -> Option<Self> {
        None
    }
}

/// What a `stat` says about a file: enough to notice most changes without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    id: Option<FileId>,
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            id: FileId::of(meta),
        }
    }
}

/// One file to read.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// The name used in diagnostics and [`mse_model::SourceRef`]s: the given path joined
    /// with the path below it.
    pub(crate) name: Arc<str>,
    /// Where to read it.
    pub(crate) path: PathBuf,
    /// Its `stat`, when that worked.
    pub(crate) stamp: Option<Stamp>,
    /// Not seen in a listing: it is tried again because the directory that held it last
    /// time could not be listed (that directory already has its diagnostic).
    pub(crate) retry: bool,
}

/// Every file a list of paths names, in load order, and the paths that could not be read.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// The files, in load order.
    pub(crate) files: Vec<Found>,
    /// One `unreadable-file` error per given path or directory that could not be read.
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// A cheap summary of a [`Listing`]: if it is unchanged, most likely no file changed.
///
/// Editors and the ConfigMap volume writer change length, modification time or inode
/// (rename-on-save, symlink swap) on every save, so this catches edits when file events are
/// lost; a same-length edit within the clock's granularity is left to the file events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    files: Vec<(Arc<str>, Option<Stamp>)>,
    errors: Vec<String>,
}

// === impl Listing ===

impl Listing {
    /// The fingerprint of this listing.
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            files: self
                .files
                .iter()
                .map(|f| (f.name.clone(), f.stamp.clone()))
                .collect(),
            errors: self.diagnostics.iter().map(|d| d.message.clone()).collect(),
        }
    }
}

/// Lists the files under `roots`, in load order.
///
/// `previous` is the load order of the last load (name and path): files from it that sit
/// under a directory that cannot be listed now are returned again with `retry` set.
pub(crate) fn discover(roots: &[PathBuf], previous: &[(Arc<str>, PathBuf)]) -> Listing {
    let mut walk = Walk {
        previous,
        listing: Listing::default(),
        seen_files: HashSet::new(),
        seen_dirs: HashSet::new(),
        seen_paths: HashSet::new(),
    };
    for root in roots {
        walk.root(root);
    }
    walk.listing
}

struct Walk<'p> {
    previous: &'p [(Arc<str>, PathBuf)],
    listing: Listing,
    seen_files: HashSet<FileId>,
    seen_dirs: HashSet<FileId>,
    seen_paths: HashSet<PathBuf>,
}

// === impl Walk ===

impl Walk<'_> {
    fn root(&mut self, root: &Path) {
        match fs::metadata(root) {
            Ok(meta) if meta.is_dir() => self.dir(root, &meta),
            Ok(meta) if meta.is_file() => self.file(root.to_path_buf(), Some(&meta)),
            Ok(_) => self.unreadable(
                root,
                &io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file or directory",
                ),
            ),
            Err(e) => self.unreadable(root, &e),
        }
    }

    fn dir(&mut self, dir: &Path, meta: &Metadata) {
        // A symlink loop, or a directory given twice: its files are already listed.
        if let Some(id) = FileId::of(meta)
            && !self.seen_dirs.insert(id)
        {
            return;
        }
        let mut entries = Vec::new();
        let listed = fs::read_dir(dir).and_then(|rd| {
            for entry in rd {
                let entry = entry?;
                let name = entry.file_name();
                if !is_hidden(&name) {
                    entries.push((name, entry.path()));
                }
            }
            Ok(())
        });
        // Sorted by name, so that the whole walk is in sorted path order.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, path) in entries {
            match fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => self.dir(&path, &meta),
                Ok(meta) if meta.is_file() && has_manifest_extension(&path) => {
                    self.file(path, Some(&meta));
                }
                // Sockets, FIFOs and the like are never read: reading a FIFO would block.
                Ok(_) => {}
                // A dangling symlink with a manifest name: reading it reports why.
                Err(_) if has_manifest_extension(&path) => self.file(path, None),
                Err(_) => {}
            }
        }
        if let Err(e) = listed {
            self.unreadable(dir, &e);
        }
    }

    fn file(&mut self, path: PathBuf, meta: Option<&Metadata>) {
        if let Some(id) = meta.and_then(FileId::of)
            && !self.seen_files.insert(id)
        {
            return;
        }
        if !self.seen_paths.insert(path.clone()) {
            return;
        }
        self.listing.files.push(Found {
            name: Arc::from(path.display().to_string()),
            stamp: meta.map(Stamp::of),
            path,
            retry: false,
        });
    }

    /// Records a path that could not be read, and tries again the files that the previous
    /// load found under it.
    fn unreadable(&mut self, path: &Path, error: &io::Error) {
        self.listing.diagnostics.push(Diagnostic::error(
            "unreadable-file",
            format!("cannot read {}: {error}", path.display()),
        ));
        for (name, prev) in self.previous {
            if prev.starts_with(path) && self.seen_paths.insert(prev.clone()) {
                self.listing.files.push(Found {
                    name: name.clone(),
                    path: prev.clone(),
                    stamp: fs::metadata(prev).ok().map(|m| Stamp::of(&m)),
                    retry: true,
                });
            }
        }
    }
}

fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .is_some_and(|ext| EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_start_with_a_dot() {
        assert!(is_hidden(OsStr::new("..data")));
        assert!(is_hidden(OsStr::new(".shop.yaml.swp")));
        assert!(!is_hidden(OsStr::new("shop.yaml")));
    }

    #[test]
    fn manifest_extensions_ignore_case() {
        assert!(has_manifest_extension(Path::new("a/shop.yaml")));
        assert!(has_manifest_extension(Path::new("shop.YML")));
        assert!(has_manifest_extension(Path::new("shop.json")));
        assert!(!has_manifest_extension(Path::new("shop.yaml~")));
        assert!(!has_manifest_extension(Path::new("README")));
    }
}

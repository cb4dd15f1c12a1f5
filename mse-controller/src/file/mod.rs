//! File mode: manifests on disk, read into snapshots and watched for changes.

mod discover;
mod merge;
mod watch;

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mse_model::{AnnotationLines, Diagnostic, Severity, Snapshot, SourceRef, load_manifests};

use self::discover::{Fingerprint, Found, discover};
use self::merge::{Entry, FileInput, assemble};

pub use self::watch::FileWatch;

/// Diagnostic codes of [`mse_model::load_manifests`] that mean a document was lost: the
/// file is then treated as half-written and its last good objects are kept.
const MALFORMED: [&str; 2] = ["malformed-yaml", "malformed-object"];

/// Reads Kubernetes manifests from files and directories into [`Snapshot`]s.
///
/// Each given path is a file (read whatever its name) or a directory (read recursively:
/// files ending `.yaml`, `.yml` or `.json`, names starting with `.` skipped, symlinks
/// followed, so a mounted ConfigMap works as is). Files are read in sorted path order, so
/// the same files always give the same snapshot. Objects carry their file name (the given
/// path joined with the path below it) and line.
///
/// Nothing on disk makes loading fail: an unreadable path is an `unreadable-file` error
/// diagnostic. Two rules keep a bad edit from taking routes down:
/// - **Last good wins.** When a file has a malformed document (`malformed-yaml`,
///   `malformed-object`) or cannot be read, the objects its last good version defined and
///   that are missing now are kept, each with a `kept-last-good` warning. A directory that
///   cannot be listed is not taken to be empty: the files read from it last time count as
///   unreadable. Deleting a file (a directory listing without it) does remove its objects.
/// - **First definition wins.** An object defined twice (same kind, namespace and name) is
///   taken from the first place in path and line order; the other gets a
///   `duplicate-object` warning.
///
/// Unchanged files are not parsed again, and their objects are shared with the previous
/// snapshot.
///
/// ```
/// use mse_controller::FileSource;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("svc.yaml"), "apiVersion: v1\nkind: Service\nmetadata: { name: web }\n")?;
///
/// let mut source = FileSource::new([dir.path()]);
/// let snapshot = source.load();
/// assert_eq!(snapshot.generation, 1);
/// assert_eq!(snapshot.services.len(), 1);
/// // Nothing changed: no new snapshot.
/// assert!(source.reload().is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileSource {
    roots: Vec<PathBuf>,
    debounce: Duration,
    poll_interval: Duration,
    generation: u64,
    /// The files of the last load, in load order.
    files: Vec<FileState>,
    /// Diagnostics of the last listing (paths that could not be read).
    listing: Vec<Diagnostic>,
    /// Fingerprint of the last listing, for [`FileSource::poll`].
    fingerprint: Option<Fingerprint>,
}

/// What the last load saw of one file.
#[derive(Clone, Debug)]
struct FileState {
    name: Arc<str>,
    path: PathBuf,
    /// A digest of the bytes read (the bytes themselves are not kept), or the OS error's
    /// text.
    content: Result<Digest, String>,
    /// The objects read now, in document order.
    entries: Arc<[Entry]>,
    /// Problems reading or parsing it now.
    diagnostics: Arc<[Diagnostic]>,
    /// Unreadable, or a malformed document.
    broken: bool,
    /// The objects of the last load in which it was not broken.
    last_good: Option<Arc<[Entry]>>,
    /// Where each annotation key is in the text read now.
    lines: Arc<AnnotationLines>,
}

/// Length and 64-bit SipHash of a file's bytes: enough to tell an edit from a rewrite of
/// the same bytes without keeping every file in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Digest {
    len: usize,
    hash: u64,
}

impl Digest {
    /// How much of a file is hashed at a time: a file is hashed as it is read, and its
    /// bytes are kept only if they changed.
    const CHUNK: usize = 64 * 1024;

    fn of(bytes: &[u8]) -> Self {
        let mut h = DigestWriter::default();
        bytes.chunks(Self::CHUNK).for_each(|c| h.add(c));
        h.finish()
    }

    /// The digest of a file's bytes, read in chunks: the same as [`Digest::of`] of the
    /// whole file, without holding it.
    fn of_file(path: &Path) -> std::io::Result<Self> {
        use std::io::Read;
        let mut file = fs::File::open(path)?;
        let mut buf = vec![0; Self::CHUNK];
        let mut h = DigestWriter::default();
        loop {
            // Fill the chunk whole (short reads happen), so that the hasher sees the same
            // chunks as `of`.
            let mut filled = 0;
            while filled < buf.len() {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            h.add(&buf[..filled]);
            if filled < buf.len() {
                return Ok(h.finish());
            }
        }
    }
}

#[derive(Default)]
struct DigestWriter {
    len: usize,
    hasher: std::hash::DefaultHasher,
}

impl DigestWriter {
    fn add(&mut self, chunk: &[u8]) {
        use std::hash::Hasher;
        self.len += chunk.len();
        self.hasher.write(chunk);
    }

    fn finish(self) -> Digest {
        use std::hash::Hasher;
        Digest {
            len: self.len,
            hash: self.hasher.finish(),
        }
    }
}

// === impl FileSource ===

impl FileSource {
    /// How long the watcher waits for file events to settle before reloading.
    pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

    /// How often the watcher checks file sizes and times, in case file events were lost.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

    /// A source reading these files and directories. Nothing is read until
    /// [`load`](Self::load), [`reload`](Self::reload) or [`watch`](Self::watch).
    pub fn new<P: Into<PathBuf>>(paths: impl IntoIterator<Item = P>) -> Self {
        Self {
            roots: paths.into_iter().map(Into::into).collect(),
            debounce: Self::DEFAULT_DEBOUNCE,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            generation: 0,
            files: Vec::new(),
            listing: Vec::new(),
            fingerprint: None,
        }
    }

    /// Sets how long [`watch`](Self::watch) waits for a burst of file events to end before
    /// reloading (default [`DEFAULT_DEBOUNCE`](Self::DEFAULT_DEBOUNCE)). The first finished
    /// change after a quiet spell does not wait.
    #[must_use]
    pub fn with_debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// Sets how often [`watch`](Self::watch) polls file sizes and times as a safety net
    /// for lost file events (default [`DEFAULT_POLL_INTERVAL`](Self::DEFAULT_POLL_INTERVAL)).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The paths this source reads, as given.
    pub fn paths(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The generation of the last snapshot built (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Reads every file now and returns a new snapshot, one generation after the last,
    /// whether or not anything changed.
    pub fn load(&mut self) -> Arc<Snapshot> {
        self.read_all();
        self.build()
    }

    /// Reads every file now and returns a new snapshot only if the set of files, a file's
    /// content or a read error changed since the last load.
    pub fn reload(&mut self) -> Option<Arc<Snapshot>> {
        self.read_all().then(|| self.build())
    }

    /// A cheap check for the watcher's safety net: lists the files and compares their
    /// sizes, modification times and inodes with the last load, and reloads only if they
    /// differ. Returns what [`reload`](Self::reload) returns, or `None` if nothing was read.
    pub fn poll(&mut self) -> Option<Arc<Snapshot>> {
        let fingerprint = discover(&self.roots, &self.previous()).fingerprint();
        if self.fingerprint.as_ref() == Some(&fingerprint) {
            return None;
        }
        self.reload()
    }

    fn previous(&self) -> Vec<(Arc<str>, PathBuf)> {
        self.files
            .iter()
            .map(|f| (f.name.clone(), f.path.clone()))
            .collect()
    }

    /// Lists and reads every file, parses those that changed, and says whether anything
    /// changed since the last read.
    fn read_all(&mut self) -> bool {
        let listing = discover(&self.roots, &self.previous());
        let mut changed = self.fingerprint.is_none()
            || listing.diagnostics != self.listing
            || listing.files.len() != self.files.len()
            || listing
                .files
                .iter()
                .zip(&self.files)
                .any(|(new, old)| new.name != old.name);
        let mut previous: HashMap<Arc<str>, FileState> =
            self.files.drain(..).map(|f| (f.name.clone(), f)).collect();
        for found in &listing.files {
            let content = Digest::of_file(&found.path).map_err(|e| e.to_string());
            let prev = previous.remove(&found.name);
            changed |= prev.as_ref().map(|p| &p.content) != Some(&content);
            let state = match prev {
                // Unchanged: no need to read or parse it again.
                Some(prev) if prev.content.is_ok() && prev.content == content => prev,
                prev => {
                    // What is parsed is what this read got, even if the file changed again
                    // since it was hashed.
                    let bytes = fs::read(&found.path).map_err(|e| e.to_string());
                    let content = bytes.as_deref().map(Digest::of).map_err(Clone::clone);
                    FileState::read(found, &bytes, content, prev.and_then(|p| p.last_good))
                }
            };
            self.files.push(state);
        }
        self.fingerprint = Some(listing.fingerprint());
        self.listing = listing.diagnostics;
        changed
    }

    /// Builds the next snapshot from what [`read_all`](Self::read_all) read.
    fn build(&mut self) -> Arc<Snapshot> {
        self.generation += 1;
        let inputs: Vec<FileInput<'_>> = self.files.iter().map(FileState::input).collect();
        Arc::new(assemble(self.generation, &self.listing, &inputs))
    }
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("paths", &self.roots)
            .field("generation", &self.generation)
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

// === impl FileState ===

impl FileState {
    /// Parses a file that is new or whose content changed.
    fn read(
        found: &Found,
        bytes: &Result<Vec<u8>, String>,
        content: Result<Digest, String>,
        last_good: Option<Arc<[Entry]>>,
    ) -> Self {
        let name = found.name.clone();
        let (entries, diagnostics, broken, lines) = match bytes {
            Ok(bytes) => parse(bytes, &name),
            // A file retried under a directory that could not be listed: the directory's
            // diagnostic already says why.
            Err(_) if found.retry => (Vec::new(), Vec::new(), true, AnnotationLines::default()),
            Err(e) => {
                let d = Diagnostic::error("unreadable-file", format!("cannot read {name}: {e}"));
                (Vec::new(), vec![d], true, AnnotationLines::default())
            }
        };
        let entries: Arc<[Entry]> = Arc::from(entries);
        let last_good = if broken {
            last_good
        } else {
            Some(entries.clone())
        };
        Self {
            name,
            path: found.path.clone(),
            content,
            entries,
            diagnostics: Arc::from(diagnostics),
            broken,
            last_good,
            lines: Arc::new(lines),
        }
    }

    fn input(&self) -> FileInput<'_> {
        FileInput {
            name: &self.name,
            entries: &self.entries,
            diagnostics: &self.diagnostics,
            broken: self.broken,
            last_good: self.last_good.as_deref(),
            lines: &self.lines,
        }
    }
}

/// Parses one file's bytes: its objects, its diagnostics, whether a document was lost, and
/// where its annotation keys are.
fn parse(bytes: &[u8], name: &Arc<str>) -> (Vec<Entry>, Vec<Diagnostic>, bool, AnnotationLines) {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            let d = Diagnostic::error(
                "malformed-yaml",
                format!("the file is not UTF-8 text (invalid byte at offset {at}); it was skipped"),
            )
            .source(Some(SourceRef {
                file: name.clone(),
                line: u32::try_from(line).unwrap_or(u32::MAX),
            }));
            return (Vec::new(), vec![d], true, AnnotationLines::default());
        }
    };
    // A byte order mark is allowed by YAML and written by some editors.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let loaded = load_manifests(text, Some(name));
    let broken = loaded
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error && MALFORMED.contains(&d.code));
    let mut entries: Vec<Entry> = loaded
        .objects
        .into_iter()
        .map(|(o, s)| Entry::new(o, s))
        .collect();
    Entry::share_namespaces(&mut entries);
    (
        entries,
        loaded.diagnostics,
        broken,
        AnnotationLines::scan(text),
    )
}

#[cfg(test)]
mod tests {
    use super::Digest;

    #[test]
    fn a_file_hashed_as_it_is_read_has_the_digest_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        let chunk = Digest::CHUNK;
        for len in [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 7] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(
                Digest::of_file(&path).unwrap(),
                Digest::of(&bytes),
                "{len} bytes"
            );
        }
        let mut bytes = vec![b'a'; 2 * chunk];
        let before = Digest::of(&bytes);
        bytes[chunk + 5] = b'b';
        std::fs::write(&path, &bytes).unwrap();
        assert_ne!(Digest::of_file(&path).unwrap(), before);
        assert!(Digest::of_file(&dir.path().join("missing.yaml")).is_err());
    }
}
